"""A gzip-compressed JSON-lines log that goes to S3 as it is written.

    python examples/jsonl_log.py s3://BUCKET/KEY.jsonl.gz [EVENTS]

Memory stays at one part however long the log grows; the object appears only when the log is
closed, and an exception inside the with block leaves no half-written log.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sys
import time
from types import TracebackType
from typing import Any

import cloudpipe


class JsonLinesLog:
    """Append JSON records, one a line, compressed, to one S3 object."""

    def __init__(self, url: str) -> None:
        self._writer = cloudpipe.open(
            url, "wb", extra_args={"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"}
        )
        self._gzip = gzip.GzipFile(fileobj=self._writer, mode="wb")

    def log(self, **record: Any) -> None:
        self._gzip.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def __enter__(self) -> JsonLinesLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self._gzip.close()
            self._writer.close()
        else:
            self._writer.abort()
            with contextlib.suppress(ValueError):  # its trailer cannot go to an aborted writer
                self._gzip.close()


if __name__ == "__main__":
    events = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    with JsonLinesLog(sys.argv[1]) as log:
        for number in range(events):
            log.log(seq=number, at=time.time(), level="info", message=f"event {number}")
    print(f"logged {events} events to {sys.argv[1]}")

"""A nightly tar.gz backup of a directory, reporting progress as each part is stored.

    python examples/nightly_backup.py DIRECTORY s3://BUCKET/PREFIX/

The object is named PREFIX/<directory name>-<YYYY-MM-DD>.tar.gz. If anything fails (a file
vanishes, the network drops for good, Ctrl-C) the upload is aborted: last night's backup is
never replaced by half of tonight's.
"""

from __future__ import annotations

import datetime
import sys
import tarfile
import time
from pathlib import Path

import cloudpipe

MiB = 2**20


def backup(directory: Path, prefix_url: str) -> str:
    url = f"{prefix_url.rstrip('/')}/{directory.name}-{datetime.date.today():%Y-%m-%d}.tar.gz"
    started = time.monotonic()
    stored = 0

    def drained(part_number: int, nbytes: int) -> None:
        nonlocal stored
        stored += nbytes
        rate = stored / MiB / max(time.monotonic() - started, 1e-6)
        print(f"part {part_number} stored: {stored / MiB:.1f} MiB so far, {rate:.1f} MiB/s")

    def ended(completed: bool) -> None:
        print("backup complete" if completed else "backup aborted: nothing was stored")

    with (
        cloudpipe.open(
            url,
            "wb",
            extra_args={"ContentType": "application/gzip"},
            on_drained=drained,
            on_end=ended,
        ) as writer,
        tarfile.open(fileobj=writer, mode="w|gz") as archive,
    ):
        archive.add(directory, arcname=directory.name)
    print(f"{url}: {writer.part_count} parts, ETag {writer.etag}")
    return url


if __name__ == "__main__":
    backup(Path(sys.argv[1]), sys.argv[2])

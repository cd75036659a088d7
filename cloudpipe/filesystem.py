"""The ``cloudpipe://`` fsspec protocol: write-only, one streaming upload per file.

Registered through the ``fsspec.specs`` entry point, so that pandas, pyarrow, dask and any
fsspec user write ``cloudpipe://bucket/key`` URLs through cloudpipe's writer::

    df.to_csv("cloudpipe://bucket/key.csv.gz", storage_options={"endpoint_url": ...})

``storage_options`` take cloudpipe.open's keyword arguments by the same names (endpoint_url,
profile, region, session, client, part_size, max_concurrency, checksum, extra_args...).

fsspec files commit on close, and pandas closes the handles it opened in a ``finally`` even
while an exception propagates: a file closed while an exception is in flight is therefore
aborted, never completed, so a DataFrame write that fails midway leaves no object.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]
except ImportError as missing:  # pragma: no cover - the entry point is only used with fsspec
    raise ImportError("cloudpipe:// needs fsspec: pip install fsspec") from missing

from cloudpipe.s3 import default_client, with_client
from cloudpipe.writer import S3MultipartWriter

READ_ELSEWHERE = "read s3://BUCKET/KEY with s3fs (pip install s3fs)"


class FsspecWriter(S3MultipartWriter):
    """An S3MultipartWriter that, closed while an exception propagates (a ``finally`` or an
    ``__exit__`` that closes it), aborts instead of completing: fsspec's commit-on-close,
    made safe for pandas."""

    def close(self) -> None:
        """Complete the object, unless an exception is in flight: then abort (the caller's
        exception goes on propagating; a failed abort is a note on it)."""
        in_flight = sys.exc_info()[1]
        if in_flight is not None and not self.closed:
            self.__exit__(type(in_flight), in_flight, in_flight.__traceback__)
            return
        super().close()


class CloudpipeFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec has no types
    """``cloudpipe://bucket/key``: each file opened for writing streams into one object."""

    protocol = "cloudpipe"
    root_marker = ""

    def __init__(self, **options: Any) -> None:
        if "compression" in options:
            raise ValueError(
                "cloudpipe:// leaves compression to fsspec and pandas: pass compression= to "
                "to_csv() or fsspec.open(), not in storage_options"
            )
        super().__init__(**options)
        self.writer_args = with_client(dict(options))
        if self.writer_args.get("client") is None:  # one client for all its files
            self.writer_args["client"] = default_client()

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> str | list[str]:
        if isinstance(path, list):
            return [str(cls._strip_protocol(p)) for p in path]
        return path.removeprefix("cloudpipe://").removeprefix("s3://").lstrip("/")

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> FsspecWriter:
        if mode != "wb":
            raise ValueError(
                f"cloudpipe:// opens files for writing only ('wb'), not {mode!r}: {READ_ELSEWHERE}"
            )
        if not autocommit:
            raise NotImplementedError(
                "cloudpipe:// files complete on close: fsspec transactions are not supported"
            )
        bucket, _, key = str(self._strip_protocol(path)).partition("/")
        return FsspecWriter(bucket, key, **(self.writer_args | kwargs))

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Not known here: cloudpipe only writes (a write never needs it)."""
        raise NotImplementedError(f"cloudpipe:// cannot look objects up: {READ_ELSEWHERE}")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        raise NotImplementedError(f"cloudpipe:// cannot list: {READ_ELSEWHERE}")

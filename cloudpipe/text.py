"""``cloudpipe.open``: s3:// URLs, and text mode that aborts like the binary writer does.

``io.TextIOWrapper`` closes the file it wraps when its ``with`` block ends, even on an
exception, and when it is garbage collected: over an S3MultipartWriter either would
complete a partial object. TextWriter aborts instead.
"""

from __future__ import annotations

import io
import warnings
from types import TracebackType
from typing import Any, Literal, overload

from cloudpipe.writer import S3MultipartWriter

_TEXT_MODES = ("w", "wt")
_BINARY_MODES = ("wb",)


class TextWriter(io.TextIOWrapper):
    """A text file over an S3MultipartWriter (``.buffer``) that aborts it on an exception."""

    buffer: S3MultipartWriter

    def abort(self) -> None:
        """Discard everything written and abort the upload: no object appears."""
        self.buffer.abort()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if self.closed:
            return
        warnings.warn(
            f"{self.buffer.name} was garbage collected while open: its upload is aborted, "
            "not completed (close it, or use a with block)",
            ResourceWarning,
            stacklevel=1,
            source=self,
        )
        self.abort()


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` as ``(bucket, key)``; a ValueError naming what is wrong otherwise."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme != "s3" or not sep or not bucket or not key:
        raise ValueError(f"expected an s3://BUCKET/KEY URL, got {url!r}")
    return bucket, key


@overload
def open(  # noqa: A001 - mirrors the builtin, as gzip.open does
    url: str,
    mode: Literal["w", "wt"],
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    **writer_args: Any,
) -> TextWriter: ...


@overload
def open(  # noqa: A001
    url: str,
    mode: Literal["wb"] = "wb",
    **writer_args: Any,
) -> S3MultipartWriter: ...


def open(  # noqa: A001
    url: str,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    **writer_args: Any,
) -> S3MultipartWriter | TextWriter:
    """Open ``s3://bucket/key`` for writing, in binary (``"wb"``) or text (``"w"``) mode.

    Text mode encodes as UTF-8 unless ``encoding`` says otherwise. ``writer_args`` are
    S3MultipartWriter's keyword arguments (client, part_size, extra_args, the callbacks...).
    """
    if mode not in _TEXT_MODES + _BINARY_MODES:
        raise ValueError(f"mode {mode!r} is not supported: cloudpipe writes, with 'wb' or 'w'")
    if mode in _BINARY_MODES and (encoding, errors, newline) != (None, None, None):
        raise ValueError("binary mode takes no encoding, errors or newline argument")
    bucket, key = parse_url(url)
    writer = S3MultipartWriter(bucket, key, **writer_args)
    if mode in _BINARY_MODES:
        return writer
    return TextWriter(writer, encoding=encoding or "utf-8", errors=errors, newline=newline)

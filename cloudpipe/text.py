"""``cloudpipe.open``: s3:// URLs, and text mode that aborts like the binary writer does.

``io.TextIOWrapper`` closes the file it wraps when its ``with`` block ends, even on an
exception, and when it is garbage collected: over an S3MultipartWriter either would
complete a partial object. TextWriter aborts instead.
"""

from __future__ import annotations

import codecs
import io
from types import TracebackType
from typing import Any, Literal, overload

from cloudpipe.s3 import with_client
from cloudpipe.writer import S3MultipartWriter

_TEXT_MODES = ("w", "wt")
_BINARY_MODES = ("wb",)
_NEWLINES = (None, "", "\n", "\r", "\r\n")


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
        if exc is None:
            self.close()
        else:  # the text not yet encoded is dropped with the rest
            self.buffer.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        """Never close (and so complete) when collected, as TextIOWrapper would: the writer
        beneath, collected next, aborts itself and warns. After ``detach()`` it is the
        caller's."""


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
    S3MultipartWriter's keyword arguments (client, part_size, extra_args, the callbacks...);
    instead of ``client``, ``endpoint_url``, ``profile``, ``region`` or a boto3 ``session``
    name the store (a MinIO, R2 or Ceph user needs no hand-built client).
    """
    if mode not in _TEXT_MODES + _BINARY_MODES:
        raise ValueError(f"mode {mode!r} is not supported: cloudpipe writes, with 'wb' or 'w'")
    if mode in _BINARY_MODES and (encoding, errors, newline) != (None, None, None):
        raise ValueError("binary mode takes no encoding, errors or newline argument")
    bucket, key = parse_url(url)
    if mode in _TEXT_MODES:  # checked before a writer exists, so that none is left open
        codecs.lookup(encoding or "utf-8")
        if newline not in _NEWLINES:
            raise ValueError(f"illegal newline value: {newline!r}")
    writer = S3MultipartWriter(bucket, key, **with_client(writer_args))
    if mode in _BINARY_MODES:
        return writer
    try:
        return TextWriter(writer, encoding=encoding or "utf-8", errors=errors, newline=newline)
    except BaseException:
        writer.abort()  # nothing was sent: this sends nothing either
        raise

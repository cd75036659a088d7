"""CompressedWriter: a binary file that compresses into an S3MultipartWriter, and aborts
it like the writer itself does (``cloudpipe.open(..., compression=...)``).

``gzip.GzipFile`` and its kin write their trailer and stop on close(), leaving the file they
wrap open, and on an exception in a ``with`` block they close all the same: over a writer,
either would complete an object whose compressed stream is cut short, or leave it to the
garbage collector. CompressedWriter completes the writer only after a clean close of the
compressor, and aborts it on an exception, without a trailer.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

EXTENSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
CODECS = ("gzip", "bz2", "xz", "zstd")


class _Stream(Protocol):
    """What a compressor is to CompressedWriter."""

    def write(self, data: ReadableBuffer, /) -> object: ...

    def close(self) -> None: ...


def _open(codec: str, target: S3MultipartWriter) -> _Stream:
    """A compressor writing ``codec``'s format into ``target``, which it never closes."""
    sink = cast(IO[bytes], target)
    if codec == "gzip":
        return gzip.GzipFile(fileobj=sink, mode="wb", mtime=0)
    if codec == "bz2":
        return bz2.BZ2File(sink, "wb")
    if codec == "xz":
        return lzma.LZMAFile(sink, "wb")
    try:
        import zstandard
    except ImportError:
        raise ValueError("compression='zstd' needs the zstandard package") from None
    return cast(_Stream, zstandard.ZstdCompressor().stream_writer(sink, closefd=False))


def codec_for(compression: str | None, key: str) -> str | None:
    """The codec ``compression`` names (``"infer"``: from the key's extension, else none)."""
    if compression is None:
        return None
    if compression == "infer":
        lowered = key.lower()  # .GZ as .gz, as fsspec and pandas infer it
        return next((name for end, name in EXTENSIONS.items() if lowered.endswith(end)), None)
    if compression not in CODECS:
        raise ValueError(
            f"compression={compression!r} is not one of {', '.join(map(repr, CODECS))}, "
            "'infer' or None"
        )
    return compression


class CompressedWriter(io.BufferedIOBase):
    """Bytes written are compressed with ``codec`` into ``writer`` (``.writer``)."""

    def __init__(self, writer: S3MultipartWriter, codec: str) -> None:
        self.writer = writer
        self.codec = codec
        self._compressor = _open(codec, writer)
        self._written = 0

    def writable(self) -> bool:
        return not self.closed

    def write(self, b: ReadableBuffer, /) -> int:
        """Compress ``b`` into the writer (whose part uploads happen as they fill)."""
        if self.closed:
            raise ValueError(f"I/O operation on closed file {self.name}")
        if isinstance(b, str):
            raise TypeError("write() argument must be a bytes-like object, not 'str'")
        count = memoryview(b).nbytes
        try:
            self._compressor.write(b)
        except BaseException as error:
            self.writer._abandon_for(error)
            raise
        self._written += count
        return count

    def tell(self) -> int:
        """Uncompressed bytes written so far."""
        return self._written

    def close(self) -> None:
        """Finish the compressed stream and complete the object."""
        if self.closed:
            return
        try:
            self._compressor.close()
        except BaseException as error:
            self.writer._abandon_for(error)
            raise
        finally:
            super().close()
        self.writer.close()

    def abort(self) -> None:
        """Drop the rest of the stream and abort the upload: no object appears."""
        super().close()
        self.writer.abort()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:  # no trailer: the writer aborts, with ``exc`` as the cause
            super().close()
            self.writer.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        """Never finish the stream (and so complete a cut one) when collected: the writer,
        collected next, aborts itself and warns."""

    def __getattr__(self, name: str) -> Any:
        """The writer's properties: name, mode, etag, upload_id, part_count, checksum..."""
        if name == "writer":  # not set yet
            raise AttributeError(name)
        return getattr(self.writer, name)

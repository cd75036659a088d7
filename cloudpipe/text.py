"""``cloudpipe.open``: s3:// URLs, and text mode that aborts like the binary writer does.

``io.TextIOWrapper`` closes the file it wraps when its ``with`` block ends, even on an
exception, and when it is garbage collected: over an S3MultipartWriter either would
complete a partial object. TextWriter aborts instead.
"""

from __future__ import annotations

import codecs
import errno
import io
from types import TracebackType
from typing import Any, Literal, overload

from cloudpipe.clients import object_exists, with_client
from cloudpipe.compression import CompressedWriter, codec_for
from cloudpipe.writer import S3MultipartWriter

_TEXT_MODES = ("w", "wt", "x", "xt")
_BINARY_MODES = ("wb", "xb")
_NEWLINES = (None, "", "\n", "\r", "\r\n")


class TextWriter(io.TextIOWrapper):
    """A text file over an S3MultipartWriter (``.buffer``) that aborts it on an exception."""

    buffer: S3MultipartWriter

    def __init__(
        self, buffer: S3MultipartWriter | CompressedWriter, *, mode: str = "w", **text_args: Any
    ) -> None:
        super().__init__(buffer, **text_args)
        self._mode = mode

    @property
    def mode(self) -> str:
        """``"w"`` (``"x"`` for an exclusive write), as for a text file from the builtin open."""
        return self._mode

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


def parse_url(url: str, *, prefix: bool = False) -> tuple[str, str]:
    """``s3://bucket/key`` as ``(bucket, key)``; a ValueError naming what is wrong otherwise.
    An access point's ARN may stand for the bucket (``s3://arn:aws:s3:REGION:ACCOUNT:
    accesspoint/NAME/KEY``): botocore takes the ARN as the Bucket. With ``prefix``, the key
    is a prefix, and may be empty (``s3://bucket``)."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    point = rest.find("accesspoint/") if rest.startswith("arn:") else -1  # Outposts' too
    split = rest.find("/", point + len("accesspoint/")) if point >= 0 else rest.find("/")
    bucket, key = (rest[:split], rest[split + 1 :]) if split >= 0 else (rest, "")
    if scheme != "s3" or not sep or not bucket or not (key or prefix):
        form = "s3://BUCKET[/PREFIX]" if prefix else "s3://BUCKET/KEY"
        raise ValueError(f"expected an {form} URL, got {url!r}")
    return bucket, key


@overload
def open(  # noqa: A001 - mirrors the builtin, as gzip.open does
    url: str,
    mode: Literal["w", "wt", "x", "xt"],
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    compression: str | None = None,
    **writer_args: Any,
) -> TextWriter: ...


@overload
def open(  # noqa: A001
    url: str,
    mode: Literal["wb", "xb"] = "wb",
    *,
    compression: None = None,
    **writer_args: Any,
) -> S3MultipartWriter: ...


@overload
def open(  # noqa: A001
    url: str,
    mode: Literal["wb", "xb"] = "wb",
    *,
    compression: str,
    **writer_args: Any,
) -> S3MultipartWriter | CompressedWriter: ...


def open(  # noqa: A001
    url: str,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    compression: str | None = None,
    **writer_args: Any,
) -> S3MultipartWriter | CompressedWriter | TextWriter:
    """Open ``s3://bucket/key`` for writing, in binary (``"wb"``) or text (``"w"``) mode.

    ``"xb"`` and ``"x"`` create the object only if the key is free (``IfNoneMatch="*"``):
    a key found taken raises FileExistsError at open, before anything is sent, or at close,
    when the store refuses the write (``cloudpipe.ObjectExistsError``, a FileExistsError and
    an UploadError); the object there stays as it was. Text mode encodes as UTF-8 unless
    ``encoding`` says otherwise. ``compression``: ``"gzip"``, ``"bz2"``, ``"xz"``, ``"zstd"``
    (with the zstandard package), or ``"infer"`` from the key's extension (``.gz``...); the
    compressed stream is completed only on a clean close, aborted like the rest.

    ``writer_args`` are S3MultipartWriter's keyword arguments (client, part_size, extra_args,
    the callbacks...); instead of ``client``, ``endpoint_url``, ``profile``, ``region`` or a
    boto3 ``session`` name the store (a MinIO, R2 or Ceph user needs no hand-built client).
    An access point's ARN may stand for the bucket:
    ``s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/KEY``.
    """
    if mode not in _TEXT_MODES + _BINARY_MODES:
        raise ValueError(
            f"mode {mode!r} is not supported: cloudpipe writes, with 'wb', 'w', 'xb' or 'x'"
        )
    if mode in _BINARY_MODES and (encoding, errors, newline) != (None, None, None):
        raise ValueError("binary mode takes no encoding, errors or newline argument")
    bucket, key = parse_url(url)
    codec = codec_for(compression, key)
    if mode in _TEXT_MODES:  # checked before a writer exists, so that none is left open
        codecs.lookup(encoding or "utf-8")
        if newline not in _NEWLINES:
            raise ValueError(f"illegal newline value: {newline!r}")
    if mode.startswith("x"):
        writer_args = exclusive(writer_args)
    writer = S3MultipartWriter(bucket, key, **with_client(writer_args))
    try:
        if mode.startswith("x") and object_exists(writer.client, bucket, key):
            raise FileExistsError(errno.EEXIST, "the key holds an object already", url)
        binary: S3MultipartWriter | CompressedWriter = (
            writer if codec is None else CompressedWriter(writer, codec)
        )
        if mode in _BINARY_MODES:
            return binary
        return TextWriter(
            binary, mode=mode[0], encoding=encoding or "utf-8", errors=errors, newline=newline
        )
    except BaseException:
        writer.abort()  # nothing was sent: this sends nothing either
        raise


def exclusive(writer_args: dict[str, Any]) -> dict[str, Any]:
    """``writer_args`` with ``IfNoneMatch="*"`` added to extra_args."""
    extra = dict(writer_args.get("extra_args") or {})
    if extra.setdefault("IfNoneMatch", "*") != "*":
        raise ValueError(f"mode 'x' sends IfNoneMatch='*', not {extra['IfNoneMatch']!r}")
    return writer_args | {"extra_args": extra}

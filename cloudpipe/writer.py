"""S3MultipartWriter: a binary file object that streams into one S3 object, one part at a time.

The writer keeps three invariants:

* at most one part is buffered: a part is uploaded as soon as its buffer fills, before
  ``write()`` returns;
* nothing is sent before the first part fills (the multipart upload is created lazily), and a
  stream shorter than one part is sent with a single PutObject at ``close()``;
* a writer ends exactly once, either completed by ``close()`` or aborted (by ``abort()``, an
  exception in its ``with`` block, a failed request, a callback that raised, or garbage
  collection), and an aborted writer leaves neither an object nor stored parts behind.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cloudpipe.buffer import PartBuffer
from cloudpipe.checksums import quoted
from cloudpipe.errors import UploadError
from cloudpipe.partsize import DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, PartSizeSchedule
from cloudpipe.pipeline import PartPipeline
from cloudpipe.s3 import ObjectRequests, default_client

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_KEY_BYTES = 1024
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # what botocore itself lets through


class S3MultipartWriter(io.BufferedIOBase):
    """A write-only binary file that becomes one S3 object when closed.

    ``write()`` buffers up to one part and uploads it, synchronously, when the buffer is full.
    ``close()`` uploads the rest and completes the object; ``abort()``, an exception in a
    ``with`` block, a failed request or garbage collection discards everything instead, so a
    partial object never appears.

    Args:
        bucket: The bucket's name.
        key: The object's key, at most 1,024 bytes in UTF-8.
        client: A boto3 S3 client. By default ``boto3.client("s3")`` with botocore's own
            retries off, so that ``max_attempts`` counts every request.
        part_size: Bytes per part, 5 MiB to 5 GiB. After 1,250 parts it doubles every 1,000
            parts, so that a stream of unknown length can reach 6.8 TiB with the default 8 MiB.
        expected_size: The total, when known: fixes the part size up front, at least
            ``expected_size / 10,000``.
        max_attempts: Tries per request, the first included.
        extra_args: Arguments for the requests, such as ContentType, Metadata or
            ServerSideEncryption; each goes to the requests that take it.
        checksum: ``"crc32"`` (default): each part's CRC32 is verified by the server and
            compared with what it reports, and so is the object's; ``"md5"``: also each
            part's MD5 (Content-MD5) and the object's MD5-based ETag; ``"none"``: only
            botocore's own defaults.
        max_concurrency: Parts uploading at once. 1 (the default) uploads each part before
            ``write()`` returns; N > 1 uploads up to N parts from a thread pool while
            ``write()`` fills the next buffer, in at most N + 1 parts of memory.
        on_ready: ``on_ready(upload_id)``, once the multipart upload is created.
        on_drained: ``on_drained(part_number, nbytes)``, as each part is stored.
        on_error: ``on_error(exc)``, when a request failed for good (already aborted).
        on_end: ``on_end(completed)``, once, last.

    Raises:
        TypeError: An argument of the wrong type.
        ValueError: An argument out of range, or an unknown ``extra_args`` key.
    """

    _ready = False  # True once __init__ has built the writer: __del__ leaves half-built ones

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        client: S3Client | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        expected_size: int | None = None,
        max_attempts: int = 3,
        extra_args: Mapping[str, Any] | None = None,
        checksum: str = "crc32",
        max_concurrency: int = 1,
        on_ready: Callable[[str], object] | None = None,
        on_drained: Callable[[int, int], object] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
        on_end: Callable[[bool], object] | None = None,
    ) -> None:
        super().__init__()
        _check_bucket(bucket)
        _check_key(key)
        _check_int("part_size", part_size, MIN_PART_SIZE, MAX_PART_SIZE, "5 MiB to 5 GiB")
        if expected_size is not None:
            _check_int("expected_size", expected_size, 0, None, "0 or more")
        _check_int("max_attempts", max_attempts, 1, None, "1 or more")
        _check_int("max_concurrency", max_concurrency, 1, 64, "1 to 64")
        if not isinstance(checksum, str):
            raise TypeError(f"checksum must be a str, not {type(checksum).__name__}")
        if extra_args is not None and not isinstance(extra_args, Mapping):
            raise TypeError(f"extra_args must be a dict, not {type(extra_args).__name__}")
        callbacks: dict[str, object] = {"on_ready": on_ready, "on_drained": on_drained}
        callbacks |= {"on_error": on_error, "on_end": on_end}
        for name, callback in callbacks.items():
            if callback is not None and not callable(callback):
                raise TypeError(f"{name} must be callable or None, not {type(callback).__name__}")

        self._schedule = PartSizeSchedule.choose(part_size, expected_size)
        self._requests = ObjectRequests(
            default_client() if client is None else client,
            bucket,
            key,
            extra_args or {},
            max_attempts,
            checksum,
        )
        self._on_ready = on_ready
        self._on_drained = on_drained
        self._on_error = on_error
        self._on_end = on_end
        self._buffer = PartBuffer()
        self._concurrency = max_concurrency
        self._pipeline: PartPipeline | None = None
        self._submitted = 0
        self._position = 0
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._result: dict[str, Any] = {}
        self._ending = "open"
        self._ready = True

    # -- what the object became ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._requests.url

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id once created; None for an object sent with one PutObject."""
        return self._upload_id

    @property
    def part_count(self) -> int:
        """Parts stored so far (0 for an object sent with one PutObject)."""
        return len(self._parts)

    @property
    def etag(self) -> str | None:
        """The object's ETag, as S3 quotes it, once ``close()`` has returned."""
        etag = self._result.get("ETag")
        return None if etag is None else quoted(str(etag))

    @property
    def version_id(self) -> str | None:
        """The object's version after ``close()``; None when the bucket is unversioned."""
        version = self._result.get("VersionId")
        return None if version in (None, "null") else str(version)

    # -- the io protocol -------------------------------------------------------------------

    def writable(self) -> bool:
        self._check_open()
        return True

    def write(self, b: ReadableBuffer, /) -> int:
        """Take all of ``b``; upload each part that fills before returning."""
        self._check_open()
        if isinstance(b, str):
            raise TypeError("write() argument must be a bytes-like object, not 'str'")
        try:
            view = memoryview(b)
        except TypeError:
            raise TypeError(
                f"write() argument must be a bytes-like object, not {type(b).__name__!r}"
            ) from None
        with view:
            if view.c_contiguous:
                with view.cast("B") as data:
                    self._take(data)
            else:
                self._take(memoryview(view.tobytes()))
            return view.nbytes

    def writelines(self, lines: Iterable[ReadableBuffer], /) -> None:
        """Write each buffer in turn, as ``write`` does."""
        self._check_open()
        for line in lines:
            self.write(line)

    def tell(self) -> int:
        """Bytes accepted so far."""
        self._check_open()
        return self._position

    def flush(self) -> None:
        """Do nothing: a part goes up only when full (text and zip writers flush often)."""
        self._check_open()

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        raise io.UnsupportedOperation(f"{self.name} is written front to back: no seek")

    def truncate(self, size: int | None = None, /) -> int:
        raise io.UnsupportedOperation(f"{self.name} is written front to back: no truncate")

    def close(self) -> None:
        """Upload what is buffered and complete the object; do nothing if already closed."""
        if self.closed:
            return
        try:
            if self._upload_id is None:
                self._result = self._requests.put_object(self._buffer.contents())
            else:
                if self._buffer.filled:
                    self._send_part()
                self._land(all_parts=True)
                self._result = self._requests.complete(self._upload_id, self._parts)
        except BaseException as error:
            self._abandon_once(error)
            raise
        self._end("completed")
        if self._on_end is not None:
            self._on_end(True)

    def abort(self) -> None:
        """Discard the buffer and abort the upload: no object appears. Idempotent."""
        if not self.closed:
            self._abandon(None)

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
        if not self._ready or self.closed:
            return
        warnings.warn(
            f"{self.name} was garbage collected while open: its upload is aborted, "
            "not completed (close it, or use a with block)",
            ResourceWarning,
            stacklevel=1,
            source=self,
        )
        self.abort()

    def __repr__(self) -> str:
        return (
            f"<cloudpipe.S3MultipartWriter {self.name!r} {self._ending}, "
            f"{self._position} bytes, {len(self._parts)} parts>"
        )

    # -- parts -----------------------------------------------------------------------------

    def _take(self, data: memoryview) -> None:
        try:
            self._land()
            while data:
                if self._buffer.filled == 0:
                    self._start_part()
                taken = self._buffer.fill(data)
                self._position += taken
                data = data[taken:]
                if self._buffer.full:
                    self._send_part()
        except BaseException as error:
            self._abandon_once(error)
            raise

    def _start_part(self) -> None:
        number = self._submitted + 1
        if number > self._schedule.max_parts:
            raise self._requests.error(
                f"the stream needs part {number} but S3 allows {self._schedule.max_parts} "
                f"parts ({self._position} bytes so far); pass expected_size or a larger part_size",
                self._upload_id,
                number,
            )
        self._buffer.prepare(self._schedule.size_of(number))

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._requests.create()
            if self._concurrency > 1:
                self._pipeline = PartPipeline(self._requests, self._concurrency)
            if self._on_ready is not None:
                self._on_ready(self._upload_id)
        self._submitted += 1
        if self._pipeline is None:
            nbytes = self._buffer.filled
            part = self._requests.upload_part(
                self._upload_id, self._submitted, self._buffer.contents()
            )
            self._buffer.clear()
            self._stored(self._submitted, nbytes, part)
        else:
            self._land()  # waits while max_concurrency parts are in flight
            self._pipeline.submit(self._upload_id, self._submitted, self._buffer)
            self._buffer = self._pipeline.free_buffer()

    def _land(self, *, all_parts: bool = False) -> None:
        """Take back the parts the pipeline has stored (all of them, or enough to go on)."""
        if self._pipeline is not None and self._pipeline.due(all_parts=all_parts):
            for number, nbytes, part in self._pipeline.landed(all_parts=all_parts):
                self._stored(number, nbytes, part)

    def _stored(self, number: int, nbytes: int, part: CompletedPartTypeDef) -> None:
        self._parts.append(part)
        if self._on_drained is not None:
            self._on_drained(number, nbytes)

    # -- ending ----------------------------------------------------------------------------

    def _abandon_once(self, error: BaseException) -> None:
        if not self.closed:  # a callback may have aborted already
            self._abandon(error)

    def _abandon(self, cause: BaseException | None) -> None:
        """Abort after ``cause`` (None: the caller asked), then tell the callbacks."""
        abort_failure: UploadError | None = None
        if self._pipeline is not None:
            self._pipeline.cancel()  # no part may land after the abort
        if self._upload_id is not None:
            try:
                self._requests.abort(self._upload_id)
            except UploadError as error:
                abort_failure = error
                if cause is not None:
                    cause.add_note(f"and the abort failed too, leaving parts stored: {error}")
        self._end("aborted" if cause is None else f"aborted after {_summary(cause)}")
        try:
            if isinstance(cause, UploadError) and self._on_error is not None:
                self._on_error(cause)
        finally:
            if self._on_end is not None:
                self._on_end(False)
        if abort_failure is not None and cause is None:
            raise abort_failure

    def _end(self, how: str) -> None:
        self._ending = how
        if self._pipeline is not None:
            self._pipeline.close()
        self._buffer.release()
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed writer {self.name} ({self._ending})")


def _summary(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_int(name: str, value: object, low: int, high: int | None, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}={value} is out of range: it must be {allowed}")


def _check_bucket(bucket: object) -> None:
    if not isinstance(bucket, str):
        raise TypeError(f"bucket must be a str, not {type(bucket).__name__}")
    if not (_BUCKET_NAME.fullmatch(bucket) or bucket.startswith("arn:")):
        hint = " (cloudpipe.open takes s3:// URLs)" if "/" in bucket else ""
        raise ValueError(f"bucket {bucket!r} is not a valid bucket name{hint}")


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"key {key!r} is not valid Unicode text") from None
    if size > MAX_KEY_BYTES:
        raise ValueError(f"key is {size} bytes in UTF-8; S3 allows at most {MAX_KEY_BYTES}")

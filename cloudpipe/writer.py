"""S3MultipartWriter: a binary file object that streams into one S3 object, one part at a time.

At most one part is buffered (with ``max_concurrency`` 1); nothing is sent before the first
part fills, and a shorter stream is one PutObject at ``close()``; a writer ends exactly once,
its ``ending`` saying what the store then holds, the store asked first when a request's
outcome is unknown. docs/architecture.md follows a byte and a failure through it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from cloudpipe import lifetime
from cloudpipe.arguments import WriterArguments, check_arguments
from cloudpipe.buffer import PartBuffer
from cloudpipe.calls import Calls
from cloudpipe.checksums import quoted, stored_crc32
from cloudpipe.ending import OPEN, Ending, State, shown
from cloudpipe.errors import UploadError
from cloudpipe.journal import Journal, NoJournal
from cloudpipe.partsize import MiB, PartPolicy
from cloudpipe.upload import LeftOpen, Upload

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
Bytes = bytes | memoryview  # what a write hands on: bytes as they came, else a view of bytes


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
        max_attempts: Tries per request, the first included. By default the user's AWS
            configuration decides (``AWS_MAX_ATTEMPTS``, a profile's ``max_attempts``), else
            3; the tries are spaced to ride out an outage of 5 s (3 tries) or a minute (10).
        extra_args: Arguments for the requests, such as ContentType, Metadata or
            ServerSideEncryption; each goes to the requests that take it.
        checksum: ``"crc32"`` (default): each part's CRC32 is verified by the server and
            compared with what it reports, and so is the object's; ``"md5"``: also each
            part's MD5 (Content-MD5) and the object's MD5-based ETag; ``"none"``: only
            botocore's own defaults.
        max_concurrency: Parts uploading at once. "auto": as many as raise the measured
            throughput (starting at 1, halving on throttling), within ``max_memory``. 1 (the
            default) uploads each part before ``write()`` returns; N > 1 uploads up to N
            parts from a thread pool while ``write()`` fills the next buffer, in at most
            N + 1 parts of memory.
        max_memory: The memory budget of "auto", in bytes, at least two parts: by default
            70 MiB (14 parts of 5 MiB, or 8 of 8 MiB), or two parts when parts are larger.
        on_ready: ``on_ready(upload_id)``, once the multipart upload is created.
        on_drained: ``on_drained(part_number, nbytes)``, as each part is stored.
        on_error: ``on_error(exc)``, when a request failed for good (already aborted).
        on_end: ``on_end(completed)``, once, last.
        journal: A file to record the upload in, part by part, so that it can be resumed
            with ``cloudpipe.resume(journal)`` after a crash. It must not exist; it is
            removed when the writer completes or is aborted. With a journal, a request
            that fails for good, an interrupt (KeyboardInterrupt, SystemExit), or a writer
            left open at exit or garbage collected keep the upload stored for a resume
            rather than abort it; ``abort()`` and an exception of the caller's own code in
            the ``with`` block abort it as without one. Needs checksum "crc32" or "md5".
        part_policy: What the store allows of parts (``cloudpipe.PartPolicy``): by default
            known from the client's endpoint (Cloudflare R2: parts of one size; Scaleway:
            1,000 parts), else S3's rules.

    Raises:
        TypeError: An argument of the wrong type.
        ValueError: An argument out of range, or an unknown ``extra_args`` key.

    A writer may be shared by threads: each call runs whole, one at a time. Callbacks run on
    the thread whose call fired them, and may not call the writer back (but ``tell()``).
    """

    _ready = False  # True once __init__ has built the writer: __del__ leaves half-built ones

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        client: S3Client | None = None,
        part_size: int = 8 * MiB,  # DEFAULT_PART_SIZE, spelled out for the API reference
        expected_size: int | None = None,
        max_attempts: int | None = None,
        extra_args: Mapping[str, Any] | None = None,
        checksum: str = "crc32",
        max_concurrency: int | str = 1,
        max_memory: int | None = None,
        on_ready: Callable[[str], object] | None = None,
        on_drained: Callable[[int, int], object] | None = None,
        on_error: Callable[[BaseException], object] | None = None,
        on_end: Callable[[bool], object] | None = None,
        journal: str | os.PathLike[str] | None = None,
        part_policy: PartPolicy | None = None,
    ) -> None:
        arguments = check_arguments(
            bucket,
            key,
            client=client,
            part_size=part_size,
            expected_size=expected_size,
            max_attempts=max_attempts,
            extra_args=extra_args,
            checksum=checksum,
            max_concurrency=max_concurrency,
            max_memory=max_memory,
            callbacks={"on_ready": on_ready, "on_drained": on_drained}
            | {"on_error": on_error, "on_end": on_end},
            journal=journal,
            part_policy=part_policy,
        )
        self._setup(arguments, None)

    @classmethod
    def _continuing(cls, arguments: WriterArguments, journal: Journal) -> S3MultipartWriter:
        """A writer that takes up the upload ``journal`` records, whose parts
        cloudpipe.resume found stored: the next byte written goes after them. When resume
        found the object completed already (``journal.completed``), it ends at once, as if
        it had closed."""
        writer = cls.__new__(cls)
        writer._setup(arguments, journal)
        if journal.completed is not None:
            writer._result = journal.completed
            writer._completed()
        return writer

    def _setup(self, arguments: WriterArguments, journal: NoJournal | None) -> None:
        """Build the writer from checked arguments, new or (``journal``) taking one up."""
        super().__init__()
        self._name = f"s3://{arguments.bucket}/{arguments.key}"
        self._shown = shown(self._name)  # as messages show it: a repr if not printable
        self._upload = Upload.from_arguments(arguments, journal)
        self._on_error = arguments.callbacks["on_error"]
        self._on_end = arguments.callbacks["on_end"]
        self._started = time.monotonic()
        self._buffer = PartBuffer(self._upload.crc32)
        self._position = self._upload.stored_bytes
        self._result: dict[str, Any] = {}
        self._ending = OPEN
        self._wrapper_finalizing = False  # see _dealloc_warn
        self._calls = Calls(self._shown)
        lifetime.track(self)
        self._ready = True

    # -- what the object became ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client the writer sends its requests with."""
        return self._upload.requests.client

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id once created; None for an object sent with one PutObject."""
        return self._upload.upload_id

    @property
    def part_count(self) -> int:
        """Parts stored so far (0 for an object sent with one PutObject)."""
        return len(self._upload.parts)

    @property
    def etag(self) -> str | None:
        """The object's ETag, as S3 quotes it, once ``close()`` has returned."""
        etag = self._result.get("ETag")
        return None if etag is None else quoted(str(etag))

    @property
    def ending(self) -> Ending:
        """What the store holds of this writer's upload (``cloudpipe.Ending``): its ``state``
        is OPEN while writing, then COMPLETED, ABORTED (nothing left), KEPT (for a resume
        from ``ending.journal``) or PENDING (the abort failed: ``ending.upload_id`` stays
        stored). Every report the writer makes is derived from it."""
        return self._ending

    @property
    def concurrency(self) -> int:
        """Parts that may upload at once now: 1 when synchronous, ``max_concurrency``, or
        what "auto" has found pays."""
        return self._upload.concurrency

    @property
    def checksum(self) -> dict[str, str] | None:
        """The object's checksum as the store keeps it, once ``close()`` has returned:
        ``{"algorithm": "CRC32", "type": "FULL_OBJECT", "value": ...}``, the CRC32 of every
        byte (base64), which a reader can check without knowing the part sizes; ``"type":
        "COMPOSITE"`` (a CRC32 of the parts' CRC32s, ``-N`` after it) from a store that keeps
        only that; None with ``checksum="none"`` or from a store that keeps no checksum."""
        return stored_crc32(self._result)

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
        return self._write(b, self._take)

    def _write(self, b: ReadableBuffer, take: Callable[[Bytes], bool], *, wait: bool = True) -> int:
        """Check ``b`` and hand its bytes to ``take`` as one call: its length, or -1 if
        ``take`` declined them (or, without ``wait``, if another call was running)."""
        self._check_open()
        if type(b) is bytes or (  # the most common: no view of ours to make and release
            isinstance(b, memoryview) and b.ndim == 1 and b.format == "B" and b.c_contiguous
        ):
            nbytes, taken = len(b), self._run("write", take, b, wait=wait)
        else:
            if isinstance(b, str):
                raise TypeError("write() argument must be a bytes-like object, not 'str'")
            try:
                view = memoryview(b)
            except TypeError:
                raise TypeError(
                    f"write() argument must be a bytes-like object, not {type(b).__name__!r}"
                ) from None
            with view, view.cast("B") if view.c_contiguous else memoryview(view.tobytes()) as data:
                nbytes, taken = view.nbytes, self._run("write", take, data, wait=wait)
        if taken is None:
            self._check_open()  # it ended while this call waited
        return nbytes if taken else -1

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
        """Upload what is buffered and complete the object; do nothing if already closed.

        If the completing request is interrupted (KeyboardInterrupt, a signal handler's
        exception) or its answer is lost, the store is asked what it holds: the writer ends
        completed if the object is there, aborted otherwise, and an interrupt is raised again
        after that.
        """
        if self._wrapper_finalizing:
            self._abandon_unclosed("was garbage collected while open, inside a wrapper")
            return
        self._run("close", self._finish)

    def _dealloc_warn(self, source: object) -> None:
        """Called by an io wrapper (TextIOWrapper, BufferedWriter) being garbage collected
        while open, just before it closes this writer: that close must not complete a
        partial object, so it aborts instead, as collecting the writer itself would."""
        if not self.closed:
            self._wrapper_finalizing = True

    def start(self) -> None:
        """Create the multipart upload now, before any data, rather than when the first part
        fills: a wrong bucket, bad credentials or a missing write permission then fail here,
        with no permission asked beyond the upload's own. The object becomes a multipart
        object even if the stream turns out shorter than a part. Does nothing once started.

        Raises:
            UploadError: CreateMultipartUpload failed; the writer is closed.
        """
        self._run("start", self._upload.create)

    def abort(self) -> None:
        """Discard the buffer and abort the upload: no object appears. Idempotent.

        Raises:
            UploadError: The abort request failed (``aborted`` is False): the upload's parts
                stay stored until it is aborted.
        """
        self._run("abort", self._abandon, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._abandon_for(exc)

    def _abandon_for(self, error: BaseException) -> None:
        """End because of ``error``, raised around the writer (its ``with`` block, a
        wrapper's compressor, a task's cancellation): abort, or keep the upload where the
        journal may; a failed abort is a note on ``error``, never raised in its place."""
        self._run("abort", self._abandon, error)

    def __del__(self) -> None:
        if self._ready and not self.closed:
            self._abandon_unclosed("was garbage collected while open")

    def _abandon_at_exit(self) -> None:
        """Called at interpreter exit for a writer still open (see cloudpipe.lifetime)."""
        if not self.closed:
            self._abandon_unclosed("was still open at interpreter exit")

    def _abandon_unclosed(self, how: str) -> None:
        """End a writer nobody closed (abort it, or keep it with a journal), and warn with
        what the store holds (nothing from a forked child)."""
        if not self._calls.forked:
            self._run("abort", self._abandon, LeftOpen(how))  # a failed abort: in the warning
            self._ending.warn_unclosed(how, self)

    def __repr__(self) -> str:
        return (
            f"<cloudpipe.S3MultipartWriter {self.name!r} {self._ending.summary()}, "
            f"{self._position} bytes, {len(self._upload.parts)} parts>"
        )

    # -- parts -----------------------------------------------------------------------------

    def _take(self, data: Bytes) -> bool:
        upload = self._upload
        upload.land()
        while data:
            buffer = self._buffer
            if buffer.filled == 0:
                buffer.prepare(upload.next_part_size(self._position))
            if len(data) > buffer.capacity - buffer.filled:
                data = memoryview(data)  # cut at the part's end without a copy
            taken = buffer.fill(data)
            self._position += taken
            data = data[taken:]
            if buffer.full:
                self._buffer = upload.send(buffer)
        return True

    def _fill_only(self, data: Bytes) -> bool:
        """Copy ``data`` into the part buffer if that is all it takes: no request, no journal
        line, no event, and so nothing that blocks (the asyncio writer does this on its event
        loop). False, with nothing taken, when it would fill the part or must start one."""
        if not 0 < self._buffer.filled < self._buffer.filled + len(data) < self._buffer.capacity:
            return not data  # nothing to take is taken; a part to start or send is declined
        self._position += self._buffer.fill(data)
        return True

    # -- ending ----------------------------------------------------------------------------

    def _run(self, what: str, step: Callable[..., T], *args: Any, wait: bool = True) -> T | None:
        """``step(*args)`` as one call of the writer's: refused from another process or a
        callback, run alone (None at once, without ``wait``, if another call runs), skipped
        once the writer has ended (None). A step that raises ends the writer because of its
        error, unless it ended it. In a forked child, an abort forgets the parent's upload
        without a request, and anything else is refused."""
        if self.closed:
            return None
        if self._calls.forked:
            self._end(self._upload.ending(State.FORKED), forked=True)
            if what != "abort":
                self._calls.refuse(what)
            return None
        if not self._calls.enter(what, wait):
            return None
        try:
            return None if self.closed else step(*args)
        except BaseException as error:
            self._abandon(error)
            raise
        finally:
            self._calls.leave()

    def _finish(self) -> None:
        """Upload the rest and complete the object, finding out any unknown outcome."""
        self._result, interrupt = self._upload.finish(self._buffer)
        self._completed()
        if interrupt is not None:
            raise interrupt  # stored, and the caller still hears of the interrupt

    def _completed(self) -> None:
        self._end(self._upload.ending(State.COMPLETED))
        if self._on_end is not None:
            self._on_end(True)

    def _abandon(self, cause: BaseException | None) -> None:
        """End without completing, because of ``cause`` (None: the caller asked): keep the
        upload or abort it, record what the store then holds, say it on ``cause``, and tell
        the callbacks. The first interrupt that came meanwhile is raised at the end (unless
        ``cause`` is itself one), as is a failed abort that the caller asked for."""
        if self.closed:  # a callback may have ended the writer already
            return
        upload = self._upload
        interrupts: list[BaseException] = []
        ending = None
        try:
            ending = upload.abandon(cause, interrupts)
        finally:
            self._end(ending or upload.unfinished(cause))
        ending = self._ending
        if isinstance(cause, UploadError):
            cause.ending = ending
        elif cause is not None and not (ending.aborted and not ending.why):
            cause.add_note(f"cloudpipe: {self._shown}: {ending.outcome()}")
        try:
            if isinstance(cause, UploadError) and self._on_error is not None:
                self._on_error(cause)
        finally:
            if self._on_end is not None:
                self._on_end(False)
        if upload.abort_failure is not None and cause is None:
            raise upload.abort_failure
        if interrupts and (cause is None or isinstance(cause, Exception)):  # not an interrupt
            raise interrupts[0]

    def _end(self, ending: Ending, *, forked: bool = False) -> None:
        self._ending = ending
        ending.log(self._position, len(self._upload.parts), time.monotonic() - self._started)
        self._upload.close(kept=ending.state is State.KEPT, forked=forked)
        self._buffer.release()
        lifetime.untrack(self)
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(
                f"I/O operation on closed writer {self._shown} ({self._ending.summary()})"
            )

"""S3MultipartWriter: a binary file object that streams into one S3 object, one part at a time.

The writer keeps three invariants:

* at most one part is buffered: a part is uploaded as soon as its buffer fills, before
  ``write()`` returns;
* nothing is sent before the first part fills (the multipart upload is created lazily), and a
  stream shorter than one part is sent with a single PutObject at ``close()``;
* a writer ends exactly once, either completed by ``close()`` or aborted (by ``abort()``, an
  exception in its ``with`` block, a failed request, a callback that raised, garbage
  collection, or interpreter exit), and an aborted writer leaves neither an object nor stored
  parts behind; when the completing request's outcome is unknown (an interrupt, a lost
  answer), the store is asked before the ending is reported. A writer with a journal ends a
  third way after a failed request, an interrupt or being left open: its upload is kept, as
  the journal records it, for ``cloudpipe.resume``;
* one call at a time: a lock makes each ``write()`` whole, whatever the threads, and a call
  from one of the writer's own callbacks is refused rather than run inside the call that
  fired it;
* a writer belongs to the process that made it: a forked child, which inherits its upload id
  and buffered bytes, never sends a request for it.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cloudpipe import lifetime
from cloudpipe.arguments import WriterArguments, check_arguments
from cloudpipe.buffer import PartBuffer
from cloudpipe.checksums import quoted
from cloudpipe.ending import OPEN, Ending, State, shown
from cloudpipe.errors import UploadError
from cloudpipe.journal import NO_JOURNAL, Journal, NoJournal, new_state
from cloudpipe.partsize import (
    MiB,
    PartPolicy,
)
from cloudpipe.s3 import LOG, ObjectRequests
from cloudpipe.upload import Upload, despite_interrupts

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from mypy_boto3_s3 import S3Client


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
            throughput (starting at 1, halving on throttling), within ``max_memory``.
            1 (the default) uploads each part before
            ``write()`` returns; N > 1 uploads up to N parts from a thread pool while
            ``write()`` fills the next buffer, in at most N + 1 parts of memory.
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
            with writer._lock:
                writer._result = journal.completed
                writer._completed()
        return writer

    def _setup(self, arguments: WriterArguments, journal: NoJournal | None) -> None:
        """Build the writer from checked arguments, new or (``journal``) taking one up."""
        super().__init__()
        bucket, key = arguments.bucket, arguments.key
        schedule = (journal and journal.schedule) or arguments.schedule
        self._name = f"s3://{bucket}/{key}"
        requests = ObjectRequests(
            arguments.client,
            bucket,
            key,
            arguments.extra_args,
            arguments.max_attempts,
            arguments.checksum,
        )
        if journal is None and arguments.journal is not None:
            journal = Journal.create(
                new_state(
                    arguments.journal,
                    bucket,
                    key,
                    schedule,
                    arguments.checksum,
                    arguments.extra_args,
                )
            )
        callbacks = arguments.callbacks
        crc32 = arguments.checksum != "none"  # each part's CRC32, as it is filled
        self._upload = Upload(
            requests,
            schedule,
            arguments.pace,
            crc32,
            NO_JOURNAL if journal is None else journal,
            callbacks["on_ready"],
            callbacks["on_drained"],
        )
        self._on_error = callbacks["on_error"]
        self._on_end = callbacks["on_end"]
        self._started = time.monotonic()
        self._buffer = PartBuffer(crc32)
        self._position = self._upload.stored_bytes
        self._result: dict[str, Any] = {}
        self._ending = OPEN
        self._wrapper_finalizing = False  # see _dealloc_warn
        self._lock = threading.Lock()
        self._caller: int | None = None  # the thread inside a call (its callbacks included)
        self._pid = os.getpid()
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
        value = self._result.get("ChecksumCRC32") if self.etag is not None else None
        if not value:
            return None
        kind = "COMPOSITE" if "-" in str(value) else "FULL_OBJECT"
        return {"algorithm": "CRC32", "type": kind, "value": str(value)}

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

    def _write(
        self, b: ReadableBuffer, take: Callable[[memoryview], bool], *, wait: bool = True
    ) -> int:
        """Check ``b`` and hand it to ``take`` under the lock: its length, or -1 if ``take``
        declined it (or, without ``wait``, if another call holds the lock)."""
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
            self._enter("write")
            if not self._lock.acquire(wait):
                return -1
            try:
                self._caller = threading.get_ident()
                self._check_open()
                if view.c_contiguous:
                    with view.cast("B") as data:
                        taken = take(data)
                else:
                    taken = take(memoryview(view.tobytes()))
            finally:
                self._caller = None
                self._lock.release()
            return view.nbytes if taken else -1

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
        self._run("start", self._start)

    def _start(self) -> None:
        try:
            self._upload.create()
        except BaseException as error:
            self._abandon(error)
            raise

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
        if os.getpid() != self._pid:
            return
        self._run("abort", self._abandon, LeftOpen(how))  # a failed abort: in the warning
        ending = self._ending
        if ending.state is State.ABORTED:
            message = (
                f"{self._shown} {how}: its upload was aborted, not completed "
                "(close it, or use a with block)"
            )
            warnings.warn(message, ResourceWarning, stacklevel=2, source=self)
        elif ending.state is State.PENDING:
            message = f"{self._shown} {how}, and its abort failed {ending.leftover()}"
            warnings.warn(message, RuntimeWarning, stacklevel=2, source=self)
        elif ending.state is State.KEPT:
            message = f"{self._shown} {how}: its upload is kept: {ending.resume_hint()}"
            warnings.warn(message, RuntimeWarning, stacklevel=2, source=self)

    def __repr__(self) -> str:
        return (
            f"<cloudpipe.S3MultipartWriter {self.name!r} {self._ending.summary()}, "
            f"{self._position} bytes, {len(self._upload.parts)} parts>"
        )

    # -- parts -----------------------------------------------------------------------------

    def _take(self, data: memoryview) -> bool:
        upload = self._upload
        try:
            upload.land()
            while data:
                if self._buffer.filled == 0:
                    self._buffer.prepare(upload.next_part_size(self._position))
                taken = self._buffer.fill(data)
                self._position += taken
                data = data[taken:]
                if self._buffer.full:
                    self._buffer = upload.send(self._buffer)
        except BaseException as error:
            self._abandon(error)
            raise
        return True

    def _fill_only(self, data: memoryview) -> bool:
        """Copy ``data`` into the part buffer if that is all it takes: no request, no journal
        line, no event, and so nothing that blocks (the asyncio writer does this on its event
        loop). False, with nothing taken, when it would fill the part or must start one."""
        if not 0 < self._buffer.filled < self._buffer.filled + len(data) < self._buffer.capacity:
            return not data  # nothing to take is taken; a part to start or send is declined
        self._position += self._buffer.fill(data)
        return True

    # -- ending ----------------------------------------------------------------------------

    def _enter(self, what: str) -> None:
        """Refuse a call from another process or from one of this writer's callbacks."""
        if os.getpid() != self._pid:
            raise RuntimeError(
                f"{self._shown}: {what}() in a forked child: the writer belongs to "
                f"process {self._pid}, and no other process may send its requests"
            )
        if self._caller == threading.get_ident():
            raise RuntimeError(
                f"{self._shown}: {what}() called from one of the writer's own callbacks, "
                "inside the call that fired it: not allowed (raise an exception to abort)"
            )

    def _run(self, what: str, step: Callable[..., None], *args: Any) -> None:
        """Run a step that may end the writer, unless it has ended; in a forked child, an
        abort forgets the parent's upload without a request, and anything else is refused."""
        if self.closed:
            return
        if os.getpid() != self._pid:
            self._end(self._upload.ending(State.FORKED), forked=True)
            if what != "abort":
                self._enter(what)
            return
        self._enter(what)
        with self._lock:
            self._caller = threading.get_ident()
            try:
                if not self.closed:
                    step(*args)
            finally:
                self._caller = None

    def _finish(self) -> None:
        """Upload the rest and complete the object, finding out any unknown outcome."""
        upload = self._upload
        try:
            body = upload.last(self._buffer)
        except BaseException as error:
            self._abandon(error)
            raise
        try:
            self._result = upload.complete(body, self._buffer.crc)
        except BaseException as error:
            find_out = functools.partial(upload.find_out, body, error)
            found = despite_interrupts(find_out, [], upload.hurry)
            if found is None:
                self._abandon(error)
                raise
            self._result = found
            self._completed()
            if not isinstance(error, UploadError):
                raise  # stored, and the caller still hears of the interrupt
            return
        self._completed()

    def _completed(self) -> None:
        if LOG.isEnabledFor(logging.INFO):
            upload_id = self._upload.upload_id
            how = f"upload {upload_id}" if upload_id else "one PutObject"
            LOG.info(
                "%s: completed (%s): %d bytes, %d parts, %.1f s",
                self._shown,
                how,
                self._position,
                len(self._upload.parts) or 1,
                time.monotonic() - self._started,
            )
        self._end(self._upload.ending(State.COMPLETED))
        if self._on_end is not None:
            self._on_end(True)

    def _abandon(self, cause: BaseException | None) -> None:
        """End without completing, because of ``cause`` (None: the caller asked): keep the
        upload for a resume if the journal may, else abort it; record what the store then
        holds, say it on ``cause``, and tell the callbacks.

        Interrupts that come meanwhile (a second Ctrl-C, a signal handler's exception) do
        not cut this short, since a report would then say aborted of an upload still
        stored: each makes the requests stop retrying, and the first is raised at the end
        (unless ``cause`` is itself one)."""
        if self.closed:  # a callback may have ended the writer already
            return
        upload = self._upload
        said = None if isinstance(cause, LeftOpen) else cause  # nobody's failure: as asked
        interrupts: list[BaseException] = []
        ending = None
        try:
            cancel = functools.partial(upload.cancel, *upload.keeps(cause))
            keep, why_not = despite_interrupts(cancel, interrupts, upload.hurry)
            if keep:
                ending = upload.ending(State.KEPT, said)
            else:
                despite_interrupts(upload.abort, interrupts, upload.hurry)
                ending = upload.after_abort(said, why_not)
        finally:
            self._end(ending or upload.unfinished(said))
        self._report(cause)
        failure = upload.abort_failure
        if failure is not None and cause is None:
            raise failure
        if interrupts and (cause is None or isinstance(cause, Exception)):  # not an interrupt
            raise interrupts[0]

    def _report(self, cause: BaseException | None) -> None:
        """Say on ``cause`` and in the log what the store holds, then call the callbacks."""
        ending = self._ending
        if isinstance(cause, UploadError):
            cause.ending = ending
        elif cause is not None and not (ending.aborted and not ending.why):
            cause.add_note(f"cloudpipe: {self._shown}: {ending.outcome()}")
        if ending.state is State.KEPT:
            LOG.info("%s: upload %s kept: %s", self._shown, ending.upload_id, ending.outcome())
        elif ending.state is State.PENDING:
            LOG.warning("%s: the abort failed %s", self._shown, ending.leftover())
        elif ending.upload_id is not None:
            LOG.info(
                "%s: upload %s aborted: %d bytes written, %d stored parts discarded",
                self._shown,
                ending.upload_id,
                self._position,
                len(self._upload.parts),
            )
        try:
            if isinstance(cause, UploadError) and self._on_error is not None:
                self._on_error(cause)
        finally:
            if self._on_end is not None:
                self._on_end(False)

    def _end(self, ending: Ending, *, forked: bool = False) -> None:
        self._ending = ending
        self._upload.close(kept=ending.state is State.KEPT, forked=forked)
        self._buffer.release()
        lifetime.untrack(self)
        super().close()

    @property
    def _shown(self) -> str:
        return shown(self._name)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(
                f"I/O operation on closed writer {self._shown} ({self._ending.summary()})"
            )


class LeftOpen(BaseException):
    """The cause of ending a writer nobody closed (garbage collected, or open at exit)."""

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
import operator
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from cloudpipe import lifetime
from cloudpipe.autoconcurrency import MAX_CONCURRENCY, AutoPace, FixedPace
from cloudpipe.buffer import PartBuffer
from cloudpipe.checksums import quoted
from cloudpipe.clients import configured_attempts, default_client
from cloudpipe.ending import OPEN, Ending, State, shown
from cloudpipe.errors import MemoryBudgetError, UploadError, describe
from cloudpipe.journal import NO_JOURNAL, Journal, NoJournal, new_state
from cloudpipe.parts import StoredParts
from cloudpipe.partsize import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    MiB,
    PartPolicy,
    PartSizeSchedule,
)
from cloudpipe.pipeline import PartPipeline
from cloudpipe.s3 import LOG, ObjectRequests

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
        super().__init__()
        _check_bucket(bucket)
        _check_key(key)
        part_size = _check_int(
            "part_size", part_size, MIN_PART_SIZE, MAX_PART_SIZE, "5 MiB to 5 GiB"
        )
        if expected_size is not None:
            expected_size = _check_int("expected_size", expected_size, 0, None, "0 or more")
        if max_attempts is None:
            max_attempts = configured_attempts()
        max_attempts = _check_int("max_attempts", max_attempts, 1, None, "1 or more")
        if isinstance(max_concurrency, str) and max_concurrency != "auto":
            raise ValueError(
                f"max_concurrency={max_concurrency!r}: an int 1 to {MAX_CONCURRENCY}, or 'auto'"
            )
        if max_concurrency != "auto":
            max_concurrency = _check_int(
                "max_concurrency",
                max_concurrency,
                1,
                MAX_CONCURRENCY,
                f"1 to {MAX_CONCURRENCY}, or 'auto'",
            )
            if max_memory is not None:
                raise ValueError("max_memory applies to max_concurrency='auto' only")
        elif max_memory is not None:
            max_memory = _check_int("max_memory", max_memory, 1, None, "1 or more")
        if not isinstance(checksum, str):
            raise TypeError(f"checksum must be a str, not {type(checksum).__name__}")
        if extra_args is not None and not isinstance(extra_args, Mapping):
            raise TypeError(f"extra_args must be a dict, not {type(extra_args).__name__}")
        callbacks: dict[str, object] = {"on_ready": on_ready, "on_drained": on_drained}
        callbacks |= {"on_error": on_error, "on_end": on_end}
        for name, callback in callbacks.items():
            if callback is not None and not callable(callback):
                raise TypeError(f"{name} must be callable or None, not {type(callback).__name__}")
        if part_policy is not None and not isinstance(part_policy, PartPolicy):
            raise TypeError(
                f"part_policy must be a cloudpipe.PartPolicy or None, not "
                f"{type(part_policy).__name__}"
            )
        if journal is not None and not isinstance(journal, (str, os.PathLike)):
            raise TypeError(f"journal must be a path or None, not {type(journal).__name__}")
        if journal is not None and checksum == "none":
            raise ValueError(
                "journal needs checksum 'crc32' or 'md5': it records each part's CRC32"
            )

        client = default_client() if client is None else client
        if part_policy is None:
            part_policy = PartPolicy.for_endpoint(client.meta.endpoint_url)
        self._schedule = PartSizeSchedule.choose(part_size, expected_size, part_policy)
        connections = getattr(client.meta.config, "max_pool_connections", MAX_CONCURRENCY)
        self._pace = _pace(max_concurrency, max_memory, self._schedule.base, connections)
        self._name = f"s3://{bucket}/{key}"
        self._requests = ObjectRequests(
            client,
            bucket,
            key,
            extra_args or {},
            max_attempts,
            checksum,
        )
        self._started = time.monotonic()
        self._on_ready = on_ready
        self._on_drained = on_drained
        self._on_error = on_error
        self._on_end = on_end
        self._crc32 = checksum != "none"  # each part's CRC32, as it is filled
        self._buffer = PartBuffer(self._crc32)
        self._pipeline: PartPipeline | None = None
        self._submitted = 0
        self._position = 0
        self._upload_id: str | None = None
        self._parts = StoredParts()
        self._result: dict[str, Any] = {}
        self._ending = OPEN
        self._abort_done = False  # the abort request was answered (or failed for good)
        self._abort_failure: UploadError | None = None
        self._wrapper_finalizing = False  # see _dealloc_warn
        self._lock = threading.Lock()
        self._caller: int | None = None  # the thread inside a call (its callbacks included)
        self._pid = os.getpid()
        self._journal: NoJournal = NO_JOURNAL
        if journal is not None:
            state = new_state(
                os.fspath(journal), bucket, key, self._schedule, checksum, extra_args or {}
            )
            self._journal = Journal.create(state)
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
        return self._requests.client

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
        return 1 if self._pipeline is None else self._pipeline.limit

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
            self._create()
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
        else:  # abort; a failed abort is a note on ``exc``, never raised in its place
            self._run("abort", self._abandon, exc)

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
            f"{self._position} bytes, {len(self._parts)} parts>"
        )

    # -- resuming (see cloudpipe.resume) ---------------------------------------------------

    def _continue(self, journal: Journal) -> None:
        """Take up the upload ``journal`` records, whose parts resume() found stored: the
        next byte written goes after them."""
        self._journal = journal
        self._schedule = journal.state.schedule
        self._upload_id = journal.state.upload_id
        self._parts = StoredParts()
        for part in journal.state.parts:
            self._parts.add(part.entry(), part.size)
        self._submitted = len(self._parts)
        self._position = journal.state.stored_bytes

    def _found_completed(self, head: dict[str, Any]) -> None:
        """The upload was completed before the crash: the writer ends as if it had closed."""
        with self._lock:
            self._result = head
            self._completed()

    # -- parts -----------------------------------------------------------------------------

    def _take(self, data: memoryview) -> bool:
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

    def _start_part(self) -> None:
        number = self._submitted + 1
        if number > self._schedule.max_parts:
            schedule = self._schedule
            error = self._requests.error(
                f"the stream needs part {number} but {schedule.store} allows "
                f"{schedule.max_parts} parts, {schedule.capacity()} bytes at this part size "
                f"({self._position} bytes so far); pass expected_size or a larger part_size",
                self._upload_id,
                number,
            )
            error.resumable = False
            raise error
        self._buffer.prepare(self._schedule.size_of(number))

    def _create(self) -> str:
        if self._upload_id is None:
            self._upload_id = self._created()
            LOG.info("%s: multipart upload %s created", self._shown, self._upload_id)
            self._journal.upload_started(self._upload_id)
            if self._on_ready is not None:
                self._on_ready(self._upload_id)
        if self._pace is not None and self._pipeline is None:
            self._pipeline = PartPipeline(self._requests, self._pace, self._crc32)
        return self._upload_id

    def _created(self) -> str:
        """CreateMultipartUpload, sent from a thread of its own: an interrupt in the caller's
        thread cannot cut it short and lose its answer (an upload stored that nobody knows
        of, so that nobody aborts). An interrupt makes it stop retrying; once it has
        answered, its upload id is recorded (for the abort) and the interrupt raised."""
        answer: list[str | BaseException] = []
        answered = threading.Event()  # not Thread.join, which an interrupt leaves unreliable

        def create() -> None:
            try:
                answer.append(self._requests.create())
            except BaseException as error:  # handed to the caller's thread
                answer.append(error)
            finally:
                answered.set()

        threading.Thread(target=create, name="cloudpipe-create", daemon=True).start()
        interrupts: list[BaseException] = []
        self._despite_interrupts(answered.wait, interrupts)
        (created,) = answer
        if isinstance(created, str):
            self._upload_id = created
        if interrupts:
            raise interrupts[0]
        if isinstance(created, BaseException):
            raise created
        return created

    def _send_part(self) -> None:
        upload_id = self._create()
        self._submitted += 1
        if self._pipeline is None:
            nbytes = self._buffer.filled
            body, crc = self._buffer.contents(), self._buffer.crc
            part = self._requests.upload_part(upload_id, self._submitted, body, crc)
            self._buffer.clear()
            self._stored(self._submitted, nbytes, part)
        else:
            self._land()  # waits while as many parts as allowed are in flight
            self._pipeline.submit(upload_id, self._submitted, self._buffer)
            size = self._schedule.size_of(self._submitted + 1)
            self._land(filling=size)  # and while the next would not fit the memory budget
            self._buffer = self._pipeline.free_buffer(size)

    def _land(self, *, all_parts: bool = False, filling: int = 0) -> None:
        """Take back the parts the pipeline has stored (all of them, or enough to go on)."""
        pipeline = self._pipeline
        if pipeline is not None and pipeline.due(all_parts=all_parts, filling=filling):
            for number, nbytes, part in pipeline.landed(all_parts=all_parts, filling=filling):
                self._stored(number, nbytes, part)

    def _stored(self, number: int, nbytes: int, part: CompletedPartTypeDef) -> None:
        self._journal.part_stored(number, nbytes, part)
        self._parts.add(part, nbytes)
        if self._on_drained is not None:
            self._on_drained(number, nbytes)

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
            self._end(self._ended(State.FORKED), forked=True)
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
        try:
            if self._upload_id is not None:
                if self._buffer.filled or not self._submitted:  # started() with nothing sent
                    self._send_part()
                self._land(all_parts=True)
                # the part buffers are done with: Complete's request, which grows with the
                # part count, takes their place rather than adding to the peak
                self._buffer.release()
                if self._pipeline is not None:
                    self._pipeline.close()
            body = self._buffer.contents() if self._upload_id is None else None
        except BaseException as error:
            self._abandon(error)
            raise
        try:
            if body is not None:
                self._result = self._requests.put_object(body, self._buffer.crc)
            else:
                assert self._upload_id is not None
                whole = self._parts.whole_crc32()
                parts = self._parts.entries()
                self._result = self._requests.complete(self._upload_id, parts, whole)
        except BaseException as error:
            found = self._despite_interrupts(functools.partial(self._find_out, body, error), [])
            if found is None:
                self._abandon(error)
                raise
            self._result = found
            self._completed()
            if not isinstance(error, UploadError):
                raise  # stored, and the caller still hears of the interrupt
            return
        self._completed()

    def _find_out(self, body: bytearray | None, error: BaseException) -> dict[str, Any] | None:
        """What the store holds after the completing request failed or was interrupted: the
        object's HeadObject answer if it is this one, else None. A multipart upload not yet
        completed is aborted before the last look, so that the answer is final, unless the
        journal keeps it for a resume (which finds out again)."""
        parts = None if body is not None else self._parts.entries()
        whole = None if body is not None else self._parts.whole_crc32()
        found = self._requests.stored(parts, body, whole)
        if found is None and self._upload_id is not None and not self._keeps(error)[0]:
            self._abort_upload()
            found = self._requests.stored(parts, body, whole)
        return found

    def _completed(self) -> None:
        if LOG.isEnabledFor(logging.INFO):
            how = f"upload {self._upload_id}" if self._upload_id else "one PutObject"
            LOG.info(
                "%s: completed (%s): %d bytes, %d parts, %.1f s",
                self._shown,
                how,
                self._position,
                len(self._parts) or 1,
                time.monotonic() - self._started,
            )
        self._end(self._ended(State.COMPLETED))
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
        keep, why_not = self._keeps(cause)
        interrupts: list[BaseException] = []
        ending = None
        try:
            if self._pipeline is not None:
                stored = self._despite_interrupts(self._pipeline.cancel, interrupts)
                if keep:  # stored before the failure: not to be sent again at the resume
                    keep, why_not = self._journaled(stored)
            if keep:
                ending = self._ended(State.KEPT, cause, journal=self._journal.path)
            else:
                self._despite_interrupts(self._abort_upload, interrupts)
                ending = self._aborted(cause, why_not)
        finally:
            self._end(ending or self._aborted(cause, "the writer failed while ending"))
        self._report(cause)
        failure = self._abort_failure
        if failure is not None and cause is None:
            raise failure
        if interrupts and not (cause is not None and _is_interrupt(cause)):
            raise interrupts[0]

    def _keeps(self, cause: BaseException | None) -> tuple[bool, str]:
        """Whether the journal keeps the upload ended by ``cause`` for a resume, and, when it
        would but cannot, why: only an upload that exists is kept, and only while its
        journal is there to resume it from."""
        if self._upload_id is None or not self._journal.keeps(cause):
            return False, ""
        lost = self._journal.lost()
        return (False, f"not kept: {lost}") if lost else (True, "")

    def _journaled(self, stored: list[tuple[int, int, CompletedPartTypeDef]]) -> tuple[bool, str]:
        """Record the parts that landed before the failure, for the resume; if the journal
        cannot take them, it cannot keep the upload."""
        try:
            for number, nbytes, part in stored:
                self._journal.part_stored(number, nbytes, part)
        except OSError as error:
            return False, f"not kept: {error}"
        return True, ""

    def _aborted(self, cause: BaseException | None, why_not: str) -> Ending:
        """The ending after the abort was tried (or with nothing to abort)."""
        failure = self._abort_failure
        if failure is None:
            return self._ended(State.ABORTED, cause, why=why_not)
        reason = describe(failure.__cause__) if failure.__cause__ else str(failure)
        failure.ending = self._ended(State.PENDING, why=reason)
        return self._ended(State.PENDING, cause, why=reason)

    def _ended(
        self,
        state: State,
        cause: BaseException | None = None,
        *,
        journal: str | None = None,
        why: str = "",
    ) -> Ending:
        """The Ending of this writer in ``state``, ended by ``cause`` (None: as asked)."""
        said = cause is not None and not isinstance(cause, LeftOpen)
        return Ending(
            state,
            url=self._shown,
            upload_id=self._upload_id,
            journal=journal,
            cause=_summary(cause) if cause is not None and said else "",
            why=why,
        )

    def _report(self, cause: BaseException | None) -> None:
        """Say on ``cause`` and in the log what the store holds, then call the callbacks."""
        ending = self._ending
        if isinstance(cause, UploadError):
            cause.ending = ending
        elif cause is not None and not (ending.aborted and not ending.why):
            cause.add_note(f"cloudpipe: {self._shown}: {ending.outcome()}")
        if ending.state is State.KEPT:
            LOG.info("%s: upload %s kept: %s", self._shown, self._upload_id, ending.outcome())
        elif ending.state is State.PENDING:
            LOG.warning("%s: the abort failed %s", self._shown, ending.leftover())
        elif self._upload_id is not None:
            LOG.info(
                "%s: upload %s aborted: %d bytes written, %d stored parts discarded",
                self._shown,
                self._upload_id,
                self._position,
                len(self._parts),
            )
        try:
            if isinstance(cause, UploadError) and self._on_error is not None:
                self._on_error(cause)
        finally:
            if self._on_end is not None:
                self._on_end(False)

    def _abort_upload(self) -> None:
        """Abort the multipart upload until the store has answered once; a failure is kept
        in ``_abort_failure``. Called again after an interrupt, it sends the abort again."""
        if self._upload_id is None or self._abort_done:
            return
        try:
            self._requests.abort(self._upload_id)
        except UploadError as error:
            self._abort_failure = error
        self._abort_done = True

    def _despite_interrupts(self, step: Callable[[], T], interrupts: list[BaseException]) -> T:
        """``step()`` run to its end even if interrupts come meanwhile (KeyboardInterrupt, a
        signal handler's exception: any BaseException that is not an Exception): each is
        added to ``interrupts``, makes the requests stop retrying, and ``step`` is called
        again (it must be safe to)."""
        while True:
            try:
                return step()
            except Exception:
                raise
            except BaseException as interrupt:
                interrupts.append(interrupt)
                self._requests.tries.hurry()

    def _end(self, ending: Ending, *, forked: bool = False) -> None:
        self._ending = ending
        if self._pipeline is not None and not forked:
            self._pipeline.close()
        self._buffer.release()
        if ending.state is not State.KEPT and not forked:
            self._journal.remove()
        self._journal.close()
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


T = TypeVar("T")


def _is_interrupt(error: BaseException) -> bool:
    """KeyboardInterrupt, SystemExit, a signal handler's own BaseException: not a failure
    of the upload but the program being stopped."""
    return not isinstance(error, Exception)


DEFAULT_AUTO_MEMORY = 72 * 2**20
"""max_memory for max_concurrency="auto" when not given: 9 parts of 8 MiB, 8 in flight; raised
to two parts (one uploading, one filling) when parts are larger than half of it."""


def _pace(
    concurrency: int | str, memory: int | None, part_size: int, connections: int
) -> FixedPace | None:
    """How many parts fly at once; None: synchronous, one part, uploaded in ``write()``.
    Auto stays within the client's ``connections`` (more would open a connection per part)."""
    if concurrency != "auto":
        return FixedPace(int(concurrency)) if int(concurrency) > 1 else None
    if memory is None:
        memory = max(DEFAULT_AUTO_MEMORY, 2 * part_size)
        if memory > DEFAULT_AUTO_MEMORY:
            LOG.info(
                "max_memory for max_concurrency='auto' is %d MiB, two parts of %d MiB "
                "(the default, 72 MiB, holds fewer)",
                memory // MiB,
                part_size // MiB,
            )
    elif memory < 2 * part_size:
        raise MemoryBudgetError(memory, part_size)
    return AutoPace(memory, part_size, connections)


def _summary(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_int(name: str, value: object, low: int, high: int | None, allowed: str) -> int:
    """``value`` as an int (any integer type: NumPy's too), checked against its range."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name}={number} is out of range: it must be {allowed}")
    return number


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

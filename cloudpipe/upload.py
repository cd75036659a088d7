"""Upload: the multipart upload behind one writer, kept apart from the file object.

The writer (writer.py) fills part buffers and decides when and how it ends; the Upload
sends what it is handed: it creates the multipart upload when the first part is full, sends
each part (at once, or in flight on a PartPipeline), records each stored part (the journal
first, then the part list, then ``on_drained``), completes the object (or sends a short
stream with one PutObject), finds out what the store holds when the completing request's
outcome is unknown, and, when the writer is abandoned, cancels the parts in flight and keeps
the upload for a resume or aborts it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cloudpipe.buffer import PartBuffer
from cloudpipe.ending import Ending, State
from cloudpipe.errors import UploadError, describe
from cloudpipe.journal import NO_JOURNAL, Journal, NoJournal, new_state
from cloudpipe.parts import StoredParts
from cloudpipe.pipeline import PartPipeline
from cloudpipe.s3 import ObjectRequests

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from cloudpipe.arguments import WriterArguments
    from cloudpipe.autoconcurrency import FixedPace
    from cloudpipe.partsize import PartSizeSchedule

LOG = logging.getLogger("cloudpipe")
T = TypeVar("T")


def despite_interrupts(
    step: Callable[[], T], interrupts: list[BaseException], hurry: Callable[[], None]
) -> T:
    """``step()`` run to its end even if interrupts come meanwhile (KeyboardInterrupt, a
    signal handler's exception: any BaseException that is not an Exception): each is added
    to ``interrupts`` and calls ``hurry`` (requests stop retrying), and ``step`` is called
    again (it must be safe to)."""
    while True:
        try:
            return step()
        except Exception:
            raise
        except BaseException as interrupt:
            interrupts.append(interrupt)
            hurry()


class Upload:
    """One writer's multipart upload: created lazily, its parts sent and recorded, then
    completed, kept or aborted."""

    def __init__(
        self,
        requests: ObjectRequests,
        schedule: PartSizeSchedule,
        pace: FixedPace | None,
        crc32: bool,
        journal: NoJournal,
        on_ready: Callable[[str], object] | None,
        on_drained: Callable[[int, int], object] | None,
    ) -> None:
        self.requests = requests
        self.schedule = schedule
        self.journal = journal
        self.pipeline: PartPipeline | None = None
        self._pace = pace
        self.crc32 = crc32
        self._on_ready = on_ready
        self._on_drained = on_drained
        self.upload_id, stored = journal.recorded()  # a resumed upload goes on after these
        self.parts = StoredParts()
        for part in stored:
            self.parts.add(part.entry(), part.size)
        self.submitted = len(stored)
        self._handed: tuple[int, int] = (0, 0)  # a part's number and the size of its buffer
        self.stored_bytes = stored[-1].end if stored else 0
        self.abort_done = False  # the abort request was answered (or failed for good)
        self.abort_failure: UploadError | None = None

    @classmethod
    def from_arguments(cls, arguments: WriterArguments, journal: NoJournal | None) -> Upload:
        """The upload of a writer made from checked ``arguments``: a new one (recorded in a
        new journal when they name one), or the one ``journal`` records, taken up."""
        schedule = (journal and journal.schedule) or arguments.schedule
        if journal is None and arguments.journal is not None:
            journal = Journal.create(
                new_state(
                    arguments.journal,
                    arguments.bucket,
                    arguments.key,
                    schedule,
                    arguments.checksum,
                    arguments.extra_args,
                )
            )
        requests = ObjectRequests(
            arguments.client,
            arguments.bucket,
            arguments.key,
            arguments.extra_args,
            arguments.max_attempts,
            arguments.checksum,
        )
        return cls(
            requests,
            schedule,
            arguments.pace,
            arguments.checksum != "none",  # each part's CRC32, as it is filled
            NO_JOURNAL if journal is None else journal,
            arguments.callbacks["on_ready"],
            arguments.callbacks["on_drained"],
        )

    @property
    def concurrency(self) -> int:
        return 1 if self.pipeline is None else self.pipeline.limit

    def hurry(self) -> None:
        """An interrupt came while the writer ends: no request is tried again."""
        self.requests.tries.hurry()

    # -- sending ---------------------------------------------------------------------------

    def next_part_size(self, position: int) -> int:
        """The size of the part to fill next (``position``: bytes written so far): the size
        its buffer was handed out at, within the memory budget, even if auto has changed its
        mind since; an UploadError, not resumable, when the store allows no more parts."""
        number = self.submitted + 1
        schedule = self.schedule
        if number > schedule.max_parts:
            error = self.requests.error(
                f"the stream needs part {number} but {schedule.store} allows "
                f"{schedule.max_parts} parts, {schedule.capacity()} bytes at this part size "
                f"({position} bytes so far); pass expected_size or a larger part_size",
                self.upload_id,
                number,
            )
            error.resumable = False
            raise error
        return self._handed[1] if self._handed[0] == number else self._size_of(number)

    def _size_of(self, number: int) -> int:
        """Part ``number``'s size: as scheduled, or smaller where auto spends its memory
        budget on more parts in flight (only while the schedule may vary sizes)."""
        scheduled = self.schedule.size_of(number)
        if self._pace is None or not self.schedule.grows:
            return scheduled
        return self._pace.part_size(scheduled)

    def create(self) -> str:
        """The multipart upload's id, created now if it was not (then ``on_ready``)."""
        if self.upload_id is None:
            self.upload_id = self._created()
            LOG.info("%s: multipart upload %s created", self.requests.url, self.upload_id)
            self.journal.upload_started(self.upload_id)
            if self._on_ready is not None:
                self._on_ready(self.upload_id)
        if self._pace is not None and self.pipeline is None:
            self.pipeline = PartPipeline(self.requests, self._pace, self.crc32)
        return self.upload_id

    def _created(self) -> str:
        """CreateMultipartUpload, sent from a thread of its own: an interrupt in the caller's
        thread cannot cut it short and lose its answer (an upload stored that nobody knows
        of, so that nobody aborts). An interrupt makes it stop retrying; once it has
        answered, its upload id is recorded (for the abort) and the interrupt raised."""
        answer: list[str | BaseException] = []
        answered = threading.Event()  # not Thread.join, which an interrupt leaves unreliable

        def create() -> None:
            try:
                answer.append(self.requests.create())
            except BaseException as error:  # handed to the caller's thread
                answer.append(error)
            finally:
                answered.set()

        threading.Thread(target=create, name="cloudpipe-create", daemon=True).start()
        interrupts: list[BaseException] = []
        despite_interrupts(answered.wait, interrupts, self.hurry)
        (created,) = answer
        if isinstance(created, str):
            self.upload_id = created
        if interrupts:
            raise interrupts[0]
        if isinstance(created, BaseException):
            raise created
        return created

    def send(self, buffer: PartBuffer) -> PartBuffer:
        """Send ``buffer`` as the next part: stored before this returns (synchronous), or in
        flight; the buffer to fill next."""
        upload_id = self.create()
        self.submitted += 1
        if self.pipeline is None:
            nbytes = buffer.filled
            part = self.requests.upload_part(
                upload_id, self.submitted, buffer.contents(), buffer.crc
            )
            buffer.clear()
            self._stored(self.submitted, nbytes, part)
            return buffer
        self.land()  # waits while as many parts as allowed are in flight
        self.pipeline.submit(upload_id, self.submitted, buffer)
        size = self._size_of(self.submitted + 1)
        self.land(filling=size)  # waits while the next part would not fit the memory budget
        while (now := self._size_of(self.submitted + 1)) != size:  # auto changed its mind
            size = now
            self.land(filling=size)
        self._handed = (self.submitted + 1, size)
        return self.pipeline.free_buffer(size)

    def land(self, *, all_parts: bool = False, filling: int = 0) -> None:
        """Take back the parts the pipeline has stored (all of them, or enough to go on)."""
        pipeline = self.pipeline
        if pipeline is not None and pipeline.due(all_parts=all_parts, filling=filling):
            for number, nbytes, part in pipeline.landed(all_parts=all_parts, filling=filling):
                self._stored(number, nbytes, part)

    def _stored(self, number: int, nbytes: int, part: CompletedPartTypeDef) -> None:
        self.journal.part_stored(number, nbytes, part)
        self.parts.add(part, nbytes)
        if self._on_drained is not None:
            self._on_drained(number, nbytes)

    # -- completing ------------------------------------------------------------------------

    def last(self, buffer: PartBuffer) -> bytearray | None:
        """Send the rest and take every part back; the body of a single PutObject when no
        multipart upload exists (the stream was shorter than a part), else None."""
        if self.upload_id is None:
            return buffer.contents()
        if buffer.filled or not self.submitted:  # started() with nothing sent
            self.send(buffer)
        self.land(all_parts=True)
        # the part buffers are done with: Complete's request, which grows with the part
        # count, takes their place rather than adding to the peak
        buffer.release()
        if self.pipeline is not None:
            self.pipeline.close()
        return None

    def finish(self, buffer: PartBuffer) -> tuple[dict[str, Any], BaseException | None]:
        """Send the rest and complete the object: the store's answer, and an interrupt that
        came while completing, for the writer to raise once it has ended. When the
        completing request failed or was interrupted, the store is asked whether it holds
        the object; the request's error is raised if it does not."""
        body = self.last(buffer)
        try:
            return self.complete(body, buffer.crc), None
        except BaseException as error:
            found = despite_interrupts(
                functools.partial(self.find_out, body, error), [], self.hurry
            )
            if found is None:
                raise
            return found, None if isinstance(error, UploadError) else error

    def complete(self, body: bytearray | None, crc: int | None) -> dict[str, Any]:
        """PutObject ``body`` (with its CRC32), or CompleteMultipartUpload: the answer."""
        if body is not None:
            return self.requests.put_object(body, crc)
        assert self.upload_id is not None
        whole = self.parts.whole_crc32()
        return self.requests.complete(self.upload_id, self.parts.entries(), whole)

    def find_out(self, body: bytearray | None, error: BaseException) -> dict[str, Any] | None:
        """What the store holds after the completing request failed or was interrupted: the
        object's HeadObject answer if it is this one, else None. A multipart upload not yet
        completed is aborted before the last look, so that the answer is final, unless the
        journal keeps it for a resume (which finds out again)."""
        parts = None if body is not None else self.parts.entries()
        whole = None if body is not None else self.parts.whole_crc32()
        found = self.requests.stored(parts, body, whole)
        if found is None and self.upload_id is not None and not self.keeps(error)[0]:
            self.abort()
            found = self.requests.stored(parts, body, whole)
        return found

    # -- abandoning ------------------------------------------------------------------------

    def abandon(self, cause: BaseException | None, interrupts: list[BaseException]) -> Ending:
        """Keep the upload for a resume if the journal may, else abort it: the Ending, after
        ``cause`` (None: as asked). Interrupts that come meanwhile (a second Ctrl-C, a signal
        handler's exception) do not cut this short, since a report would then say aborted
        of an upload still stored: each is added to ``interrupts`` and makes the requests
        stop retrying."""
        cancel = functools.partial(self.cancel, *self.keeps(cause))
        keep, why_not = despite_interrupts(cancel, interrupts, self.hurry)
        if keep:
            return self.ending(State.KEPT, cause)
        despite_interrupts(self.abort, interrupts, self.hurry)
        return self.after_abort(cause, why_not)

    def keeps(self, cause: BaseException | None) -> tuple[bool, str]:
        """Whether the journal keeps the upload ended by ``cause`` for a resume, and, when it
        would but cannot, why: only an upload that exists is kept, and only while its
        journal is there to resume it from."""
        if self.upload_id is None or not self.journal.keeps(cause):
            return False, ""
        lost = self.journal.lost()
        return (False, f"not kept: {lost}") if lost else (True, "")

    def cancel(self, keep: bool, why_not: str) -> tuple[bool, str]:
        """Stop the parts in flight (waiting for those running); when the upload is kept,
        journal the ones that were stored, so that the resume does not send them again. The
        upload is kept only if the journal takes them: ``(keep, why_not)``."""
        if self.pipeline is None:
            return keep, why_not
        stored = self.pipeline.cancel()
        if not keep:
            return keep, why_not
        try:
            for number, nbytes, part in stored:
                self.journal.part_stored(number, nbytes, part)
        except OSError as error:
            return False, f"not kept: {error}"
        return True, ""

    def abort(self) -> None:
        """Abort the multipart upload until the store has answered once; a failure is kept
        in ``abort_failure``. Called again after an interrupt, it sends the abort again."""
        if self.upload_id is None or self.abort_done:
            return
        try:
            self.requests.abort(self.upload_id)
        except UploadError as error:
            self.abort_failure = error
        self.abort_done = True

    # -- what the store holds --------------------------------------------------------------

    def ending(self, state: State, cause: BaseException | None = None, why: str = "") -> Ending:
        """The writer's Ending in ``state``, after ``cause`` (None: as asked; LeftOpen:
        nobody's failure, as if asked)."""
        return Ending(
            state,
            url=self.requests.url,
            upload_id=self.upload_id,
            journal=self.journal.path if state is State.KEPT else None,
            cause=_summary(cause) if cause and not isinstance(cause, LeftOpen) else "",
            why=why,
        )

    def after_abort(self, cause: BaseException | None, why_not: str) -> Ending:
        """The Ending once the abort was tried (or with nothing to abort): PENDING when it
        failed (the failure's own ending says so too), else ABORTED."""
        failure = self.abort_failure
        if failure is None:
            return self.ending(State.ABORTED, cause, why_not)
        reason = describe(failure.__cause__) if failure.__cause__ else str(failure)
        failure.ending = self.ending(State.PENDING, None, reason)
        return self.ending(State.PENDING, cause, reason)

    def unfinished(self, cause: BaseException | None) -> Ending:
        """The Ending when ending itself failed (a bug, not a fault of the store): an upload
        whose abort was not answered is reported as left pending, never aborted."""
        if self.upload_id is None or self.abort_done:
            return self.after_abort(cause, "")
        return self.ending(State.PENDING, cause, "the writer failed before its abort")

    def close(self, *, kept: bool, forked: bool) -> None:
        """The writer has ended: let the threads go and the journal (removed unless the
        upload is kept, or belongs to the parent process)."""
        if self.pipeline is not None and not forked:
            self.pipeline.close()
        if not (kept or forked):
            self.journal.remove()
        self.journal.close()


def _summary(error: BaseException) -> str:
    """``Type: first line`` of an error, as an Ending's cause."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class LeftOpen(BaseException):
    """The cause of ending a writer nobody closed (garbage collected, or open at exit)."""

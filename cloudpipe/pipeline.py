"""PartPipeline: with ``max_concurrency`` above 1 (or "auto"), parts upload on a thread pool
while the caller fills the next one.

At most as many parts are in flight as the pace allows (a fixed number, or what
cloudpipe.autoconcurrency measures pays); the caller waits (back-pressure) before filling
another buffer when that many are busy, so memory stays at that number plus one buffers,
reused. A part that is stored gives its buffer and its place back at once, even while an
earlier one is still on its way (a slow connection does not hold the others up); parts are
reported back in part order, on the caller's thread, so the writer's events and the journal
keep their order; the first failure among the finished parts is raised there too.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloudpipe.autoconcurrency import FixedPace
from cloudpipe.buffer import PartBuffer, give_back_freed

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from cloudpipe.s3 import ObjectRequests


@dataclass
class _Flight:
    number: int
    nbytes: int
    buffer: PartBuffer | None  # None once stored: given back for the next part
    in_flight: int  # parts in flight when it was sent, itself included
    epoch: int  # the pace's epoch when it was sent
    future: Future[tuple[CompletedPartTypeDef, float]]  # the part's entry, seconds it took


class PartPipeline:
    """Parts in flight on a thread pool, taken back in part order."""

    def __init__(self, requests: ObjectRequests, pace: FixedPace, crc32: bool) -> None:
        self._requests = requests
        self._pace = pace
        self._crc32 = crc32
        self._pool = ThreadPoolExecutor(pace.most, thread_name_prefix="cloudpipe-part")
        self._flying: deque[_Flight] = deque()  # sent, not yet reported back
        self._uploading = 0  # of those, the parts whose buffer is held (not stored yet)
        self._flying_bytes = 0  # and their buffers' bytes
        self._spare: list[PartBuffer] = []
        self._filling = 0  # the capacity of the buffer being filled now (or just sent)
        self._news = False  # a part finished since landed() last looked

    def submit(self, upload_id: str, number: int, buffer: PartBuffer) -> None:
        """Start uploading ``buffer`` as part ``number``; it is not touched until it lands."""
        self._filling = buffer.capacity
        future = self._pool.submit(self._upload, upload_id, number, buffer.contents(), buffer.crc)
        future.add_done_callback(self._finished)
        self._uploading += 1
        flight = _Flight(number, buffer.filled, buffer, self._uploading, self._pace.epoch, future)
        self._flying.append(flight)
        self._flying_bytes += buffer.capacity

    @property
    def limit(self) -> int:
        """Parts that may be in flight now."""
        return self._pace.allowed(self._filling)

    def due(self, *, all_parts: bool = False, filling: int = 0) -> bool:
        """Whether landed() has anything to do: cheap enough to ask on every write."""
        return all_parts or self._news or self._busy(filling)

    def landed(
        self, *, all_parts: bool = False, filling: int = 0
    ) -> Iterator[tuple[int, int, CompletedPartTypeDef]]:
        """``(number, nbytes, part)`` of the parts stored, in part order.

        Yields those already done; then waits for the oldest while all workers are busy or
        a buffer of ``filling`` bytes would not fit the memory budget beside the parts in
        flight (or, with ``all_parts``, until none is left in flight). Raises the first
        failure.
        """
        self._news = False
        if filling:
            self._fill_at(filling)
        self._raise_first_failure()
        while self._flying:
            self._give_back_stored()
            while self._flying and self._flying[0].future.done():
                head = self._flying[0]
                part, seconds = head.future.result()  # a failed part's UploadError, in order,
                self._flying.popleft()  # and the part stays for cancel() to stop at
                retries = self._requests.retries
                self._pace.stored(head.nbytes, seconds, head.in_flight, retries, head.epoch)
                yield head.number, head.nbytes, part
                self._raise_first_failure()
            if not self._flying or not (all_parts or self._busy(filling)):
                return
            running = [flight.future for flight in self._flying if not flight.future.done()]
            patience = self._pace.patience()
            done, _ = wait(running, timeout=patience, return_when=FIRST_COMPLETED)
            if not done and patience is not None:
                self._pace.overdue()

    def _give_back_stored(self) -> None:
        """Take back the buffers of the parts done, whether or not earlier ones are: for
        the next parts, or let go at once if the parts being filled now have another size."""
        let_go = False
        for flight in self._flying:
            if flight.buffer is not None and flight.future.done():
                self._uploading -= 1
                self._flying_bytes -= flight.buffer.capacity
                if flight.buffer.capacity == self._filling:
                    flight.buffer.clear()
                    self._spare.append(flight.buffer)
                else:
                    let_go = True
                flight.buffer = None
        if let_go:
            give_back_freed()

    def _busy(self, filling: int) -> bool:
        """All the parts allowed are in flight (or as many again wait, stored, for an earlier
        one to be reported); or, asked with ``filling``, one more buffer of that many bytes
        would not fit the budget beside them (a part size grown past half the budget: then
        each part lands before the next fills)."""
        if filling:
            return bool(self._uploading) and self._flying_bytes + filling > self._pace.budget
        return self._uploading >= self.limit or len(self._flying) >= 2 * self.limit

    def free_buffer(self, size: int) -> PartBuffer:
        """A buffer to fill next with up to ``size`` bytes: a landed one, or a new one while
        fewer exist. Landed buffers of another size (the part size grew, or auto tried or gave
        up smaller parts) are let go, their pages with them, so that they do not stay beside
        the new ones."""
        self._fill_at(size)
        return self._spare.pop() if self._spare else PartBuffer(self._crc32)

    def _fill_at(self, size: int) -> None:
        """The next parts are ``size`` bytes: spare buffers of another size are let go."""
        self._filling = size
        kept = [buffer for buffer in self._spare if buffer.capacity == size]
        if len(kept) != len(self._spare):
            self._spare = kept
            give_back_freed()

    def cancel(self) -> list[tuple[int, int, CompletedPartTypeDef]]:
        """Drop the parts not started, wait for those running, and stop the threads.

        Returns ``(number, nbytes, part)`` of the parts not landed yet that were stored, in
        part order, up to the first that failed or was dropped (for a journal to record).
        """
        self._requests.tries.stop_parts()  # a part of an abandoned upload is not worth a retry
        for flight in self._flying:
            flight.future.cancel()
        wait([flight.future for flight in self._flying])
        stored = []
        for flight in self._flying:
            if flight.future.cancelled() or flight.future.exception() is not None:
                break
            stored.append((flight.number, flight.nbytes, flight.future.result()[0]))
        self.close()
        self._flying.clear()  # last: an interrupted cancel() is called again, and waits again
        return stored

    def close(self) -> None:
        self._spare.clear()
        self._pool.shutdown(wait=True)

    def _upload(
        self, upload_id: str, number: int, body: bytearray, crc: int | None
    ) -> tuple[CompletedPartTypeDef, float]:
        started = time.monotonic()
        part = self._requests.upload_part(upload_id, number, body, crc)
        return part, time.monotonic() - started

    def _finished(self, future: Future[tuple[CompletedPartTypeDef, float]]) -> None:
        self._news = True  # runs on a worker thread; landed() reads it on the caller's

    def _raise_first_failure(self) -> None:
        for flight in self._flying:
            if flight.future.done() and flight.future.exception() is not None:
                flight.future.result()

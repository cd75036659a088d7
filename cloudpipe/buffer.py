"""PartBuffer: one part's bytes, filled in place, sent without a copy."""

from __future__ import annotations


class PartBuffer:
    """One part's bytes, filled in place and handed to botocore without a copy.

    botocore sends a bytearray body straight to the socket (a memoryview it refuses, and a
    file object costs a read call per 16 KiB), so a full buffer goes out as it is and the
    last, partly filled one is shrunk in place, since nothing is written after it.

    Memory follows the data: a buffer grows as it fills, up to its capacity, and keeps that
    size once reached, so that a stream shorter than a part costs about its own size (a
    5-byte stream with 5 GiB parts allocates bytes, not gigabytes) while the parts after the
    first are filled without a single allocation.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._view = memoryview(self._data)  # valid once the buffer has reached its capacity
        self.capacity = 0
        self.filled = 0

    @property
    def full(self) -> bool:
        return self.filled == self.capacity

    def prepare(self, capacity: int) -> None:
        """Make the empty buffer hold up to ``capacity`` bytes (freeing it if that changes)."""
        if capacity != self.capacity:
            self._replace(bytearray())  # free the old buffer before the next one grows
            self.capacity = capacity
        self.filled = 0

    def fill(self, data: memoryview) -> int:
        """Copy as much of ``data`` as fits and return how many bytes that was."""
        count = min(len(data), self.capacity - self.filled)
        end = self.filled + count
        if len(self._data) == self.capacity:
            self._view[self.filled : end] = data[:count]
        else:  # still growing: the data ends where the buffer does
            self._view.release()
            self._data += data[:count]
            if len(self._data) == self.capacity:
                self._view = memoryview(self._data)
        self.filled = end
        return count

    def contents(self) -> bytearray:
        """The filled bytes, as a body for botocore."""
        if len(self._data) != self.filled:
            self._view.release()
            del self._data[self.filled :]
        return self._data

    def clear(self) -> None:
        self.filled = 0

    def release(self) -> None:
        """Give the memory back; the buffer is empty afterwards."""
        self._replace(bytearray())
        self.capacity = 0
        self.filled = 0

    def _replace(self, data: bytearray) -> None:
        self._view.release()
        self._data = data
        self._view = memoryview(data)

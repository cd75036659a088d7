"""PartBuffer: one part's bytes, preallocated, filled in place, sent without a copy."""

from __future__ import annotations


class PartBuffer:
    """One part's bytes, filled in place and handed to botocore without a copy.

    botocore sends a bytearray body straight to the socket (a memoryview it refuses, and a
    file object costs a read call per 16 KiB), so a full buffer goes out as it is and the
    last, partly filled one is shrunk in place, since nothing is written after it.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._view = memoryview(self._data)
        self.filled = 0

    @property
    def full(self) -> bool:
        return self.filled == len(self._data)

    def prepare(self, capacity: int) -> None:
        """Make the empty buffer hold ``capacity`` bytes, allocating only when that changes."""
        if capacity != len(self._data):
            self._reallocate(capacity)

    def fill(self, data: memoryview) -> int:
        """Copy as much of ``data`` as fits and return how many bytes that was."""
        count = min(len(data), len(self._data) - self.filled)
        self._view[self.filled : self.filled + count] = data[:count]
        self.filled += count
        return count

    def contents(self) -> bytearray:
        """The filled bytes, as a body for botocore."""
        if not self.full:
            self._view.release()
            del self._data[self.filled :]
            self._view = memoryview(self._data)
        return self._data

    def clear(self) -> None:
        self.filled = 0

    def release(self) -> None:
        """Give the memory back; the buffer is empty afterwards."""
        self._reallocate(0)

    def _reallocate(self, capacity: int) -> None:
        self._view.release()
        self._data = bytearray()  # free the old buffer before the new one exists
        self._data = bytearray(capacity)
        self._view = memoryview(self._data)
        self.filled = 0

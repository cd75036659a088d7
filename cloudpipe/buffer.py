"""PartBuffer: one part's bytes, filled in place, sent without a copy."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

from cloudpipe.checksums import update_crc32

GROW_LIMIT = 256 * 1024
"""Bytes a buffer grows to with the data before it takes its whole capacity at once."""
GROW_ABOVE = 32 * 2**20
"""Capacities above this keep growing with the data (the allocator moves the pages of blocks
this large rather than copying them, so growing costs neither time nor a second copy)."""


class PartBuffer:
    """One part's bytes, filled in place and handed to botocore without a copy.

    botocore sends a bytearray body straight to the socket (a memoryview it refuses, and a
    file object costs a read call per 16 KiB), so a full buffer goes out as it is and the
    last, partly filled one is shrunk in place, since nothing is written after it.

    Memory follows the data: a buffer grows as it fills, so that a stream shorter than
    GROW_LIMIT costs its own size (a 5-byte stream with 5 GiB parts allocates bytes, not
    gigabytes). Past GROW_LIMIT it takes its whole capacity at once, since growing a block
    the allocator keeps on its heap copies it, and the copy would double the peak; a capacity
    over GROW_ABOVE keeps growing instead, which such blocks do in place. Once full-size, a
    buffer is filled without a single allocation, part after part.

    With ``crc32``, the part's CRC32 is computed as its bytes are copied in, while they are
    still in the processor's cache, rather than in a second pass over the whole part.
    """

    def __init__(self, crc32: bool = False) -> None:
        self._data = bytearray()
        self._view = memoryview(self._data)  # valid once the buffer has reached its capacity
        self.capacity = 0
        self.filled = 0
        self._crc32 = crc32
        self.crc: int | None = 0 if crc32 else None
        """The CRC32 of the filled bytes (None without ``crc32``)."""

    @property
    def full(self) -> bool:
        return self.filled == self.capacity

    def prepare(self, capacity: int) -> None:
        """Make the empty buffer hold up to ``capacity`` bytes (freeing it if that changes)."""
        if capacity != self.capacity:
            self._replace(bytearray())  # free the old buffer before the next one grows
            self.capacity = capacity
        self.clear()

    def fill(self, data: bytes | memoryview) -> int:
        """Copy as much of ``data`` as fits and return how many bytes that was."""
        count = min(len(data), self.capacity - self.filled)
        if self.crc is not None:
            self.crc = update_crc32(data[:count], self.crc)
        end = self.filled + count
        if len(self._data) != self.capacity:  # still growing: the data ends where it does
            if end <= GROW_LIMIT or self.capacity > GROW_ABOVE:
                self._view.release()
                self._data += data[:count]
                if len(self._data) == self.capacity:
                    self._view = memoryview(self._data)
                self.filled = end
                return count
            whole = bytearray(self.capacity)
            whole[: self.filled] = self._data
            self._replace(whole)
        self._view[self.filled : end] = data[:count]
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
        self.crc = 0 if self._crc32 else None

    def release(self) -> None:
        """Give the memory back; the buffer is empty afterwards."""
        self._replace(bytearray())
        self.capacity = 0
        self.clear()

    def _replace(self, data: bytearray) -> None:
        self._view.release()
        self._data = data
        self._view = memoryview(data)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, where the C library is glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # another C library (musl has no malloc_trim)
        return None
    return trim


_TRIM = _malloc_trim()


def give_back_freed() -> None:
    """Hand the pages of freed buffers back to the system now.

    glibc takes blocks smaller than its mmap threshold from its heap, and raises that
    threshold to the size of any mapped block freed: once parts of 8 MiB have been let go,
    parts of 5 MiB come from the heap, and when those are let go in turn their pages stay
    with the process, beside the buffers that replace them (measured: 87 MiB peak for a
    budget of 72 MiB when auto went back from 5 MiB parts to 8 MiB). Called only when buffers
    of another size are let go, which happens a few times in an upload.
    """
    if _TRIM is not None:
        _TRIM(0)

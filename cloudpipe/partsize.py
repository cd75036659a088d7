"""How large each part is: S3's limits, and a schedule that grows parts as a stream grows.

S3 takes at most 10,000 parts of 5 MiB to 5 GiB each (the last part may be smaller). A fixed
8 MiB part would cap a stream at 78 GiB, so for a stream of unknown length the part size stays
for the first 1,250 parts (9.8 GiB at the default 8 MiB, so memory is flat for the streams most
people send), then doubles every 1,000 parts, up to 5 GiB: 6.8 TiB in all at 8 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 2**20
GiB = 2**30
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
DEFAULT_PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
FIRST_GROWTH = 1_250
"""Parts sent at the initial size before it first doubles, for a stream of unknown length."""
GROWTH_INTERVAL = 1_000
"""Parts between two doublings after that."""


@dataclass(frozen=True)
class PartSizeSchedule:
    """The size of every part of one upload.

    ``grows`` is False when the caller gave the expected size: the part size is then fixed
    up front, large enough for that size to fit in ``max_parts`` parts.
    """

    base: int
    grows: bool
    max_parts: int

    @classmethod
    def choose(cls, part_size: int, expected_size: int | None) -> PartSizeSchedule:
        """The schedule for ``part_size`` (already validated) and an optional size hint."""
        if expected_size is None:
            return cls(part_size, grows=True, max_parts=MAX_PARTS)
        per_part = -(-expected_size // MAX_PARTS)
        per_part = -(-per_part // MiB) * MiB  # whole MiB read better in logs and listings
        base = max(part_size, per_part)
        if base > MAX_PART_SIZE:
            raise ValueError(
                f"expected_size={expected_size} is larger than S3 allows for one object "
                f"({MAX_PARTS} parts of at most {MAX_PART_SIZE} bytes)"
            )
        return cls(base, grows=False, max_parts=MAX_PARTS)

    def size_of(self, part_number: int) -> int:
        """Bytes in part ``part_number`` (1-based) unless it is the last one."""
        if not self.grows or part_number <= FIRST_GROWTH:
            return self.base
        doublings = (part_number - FIRST_GROWTH - 1) // GROWTH_INTERVAL + 1
        return min(MAX_PART_SIZE, self.base << doublings)

    def capacity(self) -> int:
        """The largest stream this schedule fits in ``max_parts`` parts."""
        return sum(self.size_of(number) for number in range(1, self.max_parts + 1))

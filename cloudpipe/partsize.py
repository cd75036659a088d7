"""How large each part is: S3's limits, and a schedule that grows parts as a stream grows.

S3 takes at most 10,000 parts of 5 MiB to 5 GiB each (the last part may be smaller). A fixed
8 MiB part would cap a stream at 78 GiB, so for a stream of unknown length the part size stays
for the first 1,250 parts (9.8 GiB at the default 8 MiB, so memory is flat for the streams most
people send), then doubles every 1,000 parts, up to 5 GiB: 6.8 TiB in all at 8 MiB.

Some stores differ (a PartPolicy): Cloudflare R2 refuses, at CompleteMultipartUpload and so
only after the whole stream, parts that are not all the same size but the last, so there the
part size never grows; Scaleway takes 1,000 parts, so there the growth comes ten times sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

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
class PartPolicy:
    """What a store allows of one upload's parts.

    Attributes:
        uniform: Every part but the last must have the same size (Cloudflare R2): the part
            size is fixed up front and never grows.
        max_parts: Parts an upload may have; None for S3's 10,000.
        store: The store's name, for messages.
    """

    uniform: bool = False
    max_parts: int | None = None
    store: str = "S3"

    @property
    def part_limit(self) -> int:
        return MAX_PARTS if self.max_parts is None else self.max_parts

    @classmethod
    def for_endpoint(cls, endpoint_url: str | None) -> PartPolicy:
        """The policy of the store at ``endpoint_url``, known from its host name."""
        host = (urlsplit(endpoint_url or "").hostname or "").lower()
        if host.endswith(".r2.cloudflarestorage.com"):
            return R2
        if host.startswith("s3.") and host.endswith(".scw.cloud"):
            return SCALEWAY
        return S3


S3 = PartPolicy()
R2 = PartPolicy(uniform=True, store="Cloudflare R2")
SCALEWAY = PartPolicy(max_parts=1_000, store="Scaleway")


@dataclass(frozen=True)
class PartSizeSchedule:
    """The size of every part of one upload.

    ``grows`` is False when the caller gave the expected size: the part size is then fixed
    up front, large enough for that size to fit in ``max_parts`` parts.
    """

    base: int
    grows: bool
    max_parts: int
    store: str = "S3"

    @classmethod
    def choose(
        cls, part_size: int, expected_size: int | None, policy: PartPolicy = S3
    ) -> PartSizeSchedule:
        """The schedule for ``part_size`` (already validated), an optional size hint, and
        what the store allows."""
        limit = policy.part_limit
        if expected_size is None:
            return cls(part_size, not policy.uniform, limit, policy.store)
        per_part = -(-expected_size // limit)
        per_part = -(-per_part // MiB) * MiB  # whole MiB read better in logs and listings
        base = max(part_size, per_part)
        if base > MAX_PART_SIZE:
            raise ValueError(
                f"expected_size={expected_size} is larger than {policy.store} allows for one "
                f"object ({limit} parts of at most {MAX_PART_SIZE} bytes)"
            )
        return cls(base, False, limit, policy.store)

    def size_of(self, part_number: int) -> int:
        """Bytes in part ``part_number`` (1-based) unless it is the last one."""
        first = FIRST_GROWTH * self.max_parts // MAX_PARTS  # sooner where parts are fewer
        if not self.grows or part_number <= first:
            return self.base
        interval = max(1, GROWTH_INTERVAL * self.max_parts // MAX_PARTS)
        doublings = (part_number - first - 1) // interval + 1
        return min(MAX_PART_SIZE, self.base << doublings)

    def capacity(self) -> int:
        """The largest stream this schedule fits in ``max_parts`` parts."""
        return sum(self.size_of(number) for number in range(1, self.max_parts + 1))

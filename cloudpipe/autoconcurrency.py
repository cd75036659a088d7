"""How many parts upload at once: a fixed number, or ``max_concurrency="auto"``.

On a real network one connection rarely fills the link: latency and per-connection rate caps
leave most of it idle, and how many connections fill it depends on the path, which nobody
knows in advance. Auto starts with one part in flight and adds one each time the measured
throughput rises, holds when it stops rising, steps back when it falls, and halves on
throttling (a request that had to be retried). It never has more parts in flight than a
memory budget holds: ``max_memory // part_size - 1`` (one more buffer is being filled).
"""

from __future__ import annotations

RISE = 1.05
"""Throughput must rise by this factor over the best seen for one more part in flight."""
FALL = 0.85
"""Throughput below this share of the best seen takes one part in flight away."""
PROBE_AFTER = 8
"""Windows at a plateau after which one more part in flight is tried again (paths change)."""


class FixedPace:
    """``max_concurrency=N``: always N parts in flight."""

    def __init__(self, parts: int) -> None:
        self.ceiling = parts
        self._parts = parts

    def allowed(self, part_size: int) -> int:
        """Parts that may be in flight now, for parts of ``part_size`` bytes."""
        return self._parts

    def stored(self, nbytes: int, finished: float, retries: int) -> None:
        """A part of ``nbytes`` finished at ``finished`` (monotonic seconds); ``retries``:
        the requests retried so far."""


class AutoPace(FixedPace):
    """``max_concurrency="auto"``: as many parts in flight as raise the throughput, within
    ``budget`` bytes of part buffers."""

    def __init__(self, budget: int, part_size: int) -> None:
        super().__init__(max(1, budget // part_size - 1))
        self.budget = budget
        self.limit = 1
        self._best = 0.0
        self._start: float | None = None
        self._bytes = 0
        self._parts_seen = 0
        self._retries = 0
        self._plateaus = 0

    def allowed(self, part_size: int) -> int:
        fits = self.budget // part_size - 1 if part_size else self.ceiling
        return max(1, min(self.limit, fits))

    def stored(self, nbytes: int, finished: float, retries: int) -> None:
        if retries > self._retries:  # throttled, or failing: back off at once
            self._retries = retries
            self.limit = max(1, self.limit // 2)
            self._best = 0.0
            self._restart(finished)
            return
        if self._start is None:
            self._restart(finished)
            return
        self._bytes += nbytes
        self._parts_seen += 1
        elapsed = finished - self._start
        if self._parts_seen < max(2, self.limit) or elapsed <= 0:
            return
        rate = self._bytes / elapsed
        if rate > self._best * RISE:
            self._best = rate
            self._plateaus = 0
            self.limit = min(self.ceiling, self.limit + 1)
        elif rate < self._best * FALL:
            self.limit = max(1, self.limit - 1)
            self._best = rate
        else:
            self._plateaus += 1
            if self._plateaus >= PROBE_AFTER:
                self._plateaus = 0
                self.limit = min(self.ceiling, self.limit + 1)
        self._restart(finished)

    def _restart(self, now: float) -> None:
        self._start = now
        self._bytes = 0
        self._parts_seen = 0

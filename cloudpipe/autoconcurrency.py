"""How many parts upload at once: a fixed number, or ``max_concurrency="auto"``.

On a real network one connection rarely fills the link: latency and per-connection rate caps
leave most of it idle, and how many connections fill it depends on the path, which nobody knows
in advance. Auto starts with one part in flight (or, when the next part is ready and the first
has not landed within a tenth of a second, longer than a part takes to a store nearby, eight,
or what the budget holds: a far store's first step is not kept waiting for a whole part's time)
and measures each part as it lands: the throughput it stands for is the parts in flight when it
was sent, times its size, over the time it took. While that rises, auto multiplies the parts in
flight by eight (a part takes a while to land, so every step up costs one part's time: three
steps to reach 8 by doubling would cost a 512 MiB upload a quarter of its time on a distant
store); once it has stopped rising, it adds one at a time. When it falls it takes one away, and
it halves them on throttling (a request that had to be retried). Only parts sent at the current
number count, so each change is judged on its own effect. It never has more parts in flight
than a memory budget holds: ``max_memory // part_size - 1`` (one more buffer is being filled).

When the budget, not the link, stops the climb (the step that reached what the budget holds
raised the throughput nearly as much as the parts in flight: a step to eight parts that
carries less than six parts' worth has met the link's or the store's own limit), auto tries
the same memory on smaller parts: S3's smallest, 5 MiB, where the part-size schedule allows
(a stream of unknown length, on a store that takes parts of several sizes), so that 13 fly
in the default 70 MiB where 7 of 8 MiB did. It keeps them only if four of them, on average,
raise the throughput by a fifth over the best of the larger parts landing meanwhile (not only
the first ones at that number, which also paid for opening connections): where the link is
already full they would only cost requests, and the parts go back to the schedule's size
(and number, if that step paid; else halfway back). When the first part is overdue and the
first step already reaches what the budget holds, that step's parts are smaller ones (as
many as the schedule's would be: the step is the same, its buffers smaller), and when the
first part to land took half a second or more (a far store: that part did not fly alone,
and cannot measure the step), the trial does not wait for the step to be judged: the parts
that refill its places as they land are as many as the budget holds of the smaller size,
judged against the step's own parts (sent together, each stands for all of them), since a
second round at the step's number would cost a far store a part's time. A first part that
landed sooner leaves the next parts at the schedule's size, judged as on a store nearby.
The trial is made again, as one more part is tried, when the throughput has held a while.
Only parts of the schedule's first size shrink: the schedule still grows as before, and
reaches its capacity but for the few GiB the smaller parts give up.
"""

from __future__ import annotations

MAX_CONCURRENCY = 64
"""The most parts in flight a writer takes (its thread pool and the client's connections)."""
START_GROWTH = 8
"""Factor by which the parts in flight grow while every step has raised the throughput."""
HALFWAY = 4
"""After a step that overshot (no rise), the parts in flight are the number before it times
this, about halfway on the scale the steps take; then, if no better, that number again."""
RISE = 1.05
"""Throughput must rise by this factor over the best seen for more parts in flight."""
FALL = 0.85
"""Throughput below this share of the best seen takes one part in flight away."""
IN_PROPORTION = 0.75
"""Share of a climbing step's factor in parts that its throughput must rise by for the budget,
not the link, to be what stopped the climb (and smaller parts worth trying at once)."""
SMALLER_RISE = 1.2
"""Throughput smaller parts must reach over the best of the larger ones to stay: they cost
more requests (5 MiB for 8 MiB: 1.6 times as many), which a small rise does not pay for."""
SMALLER_JUDGED = 4
"""Smaller parts whose average judges them: a store whose processors are the limit lands
parts of one size in a third of a second or in twice that, and two of them, both quick, kept
5 MiB parts there in 1 run of 3 (the local server over TLS, 1024 MiB: 202 requests for 130)."""
PROBE_AFTER = 8
"""Parts at a plateau after which one more part in flight is tried again (paths change)."""
PATIENCE = 0.1
"""Seconds the next part waits for the first to land before auto takes its first step
without it: a part to a store nearby takes less (8 MiB, about 0.05 s here), one to a far
store a second or more (each tenth of a second alone costs a far store's link most of it)."""

FAR = 0.5
"""Seconds the first part to land after an overdue first part's step must take for the
step's trial of smaller parts to go on: one that lands sooner flew nearly alone, and judges
the step as on a store nearby. Measured: 0.84 to 1.1 s on profiles A and B, 2 s on C; 0.06 s
to the local server over TLS, 0.3 to 0.52 s (once 1.1 s) for a fresh server's first upload
(the rare one over FAR is tried on four parts, and given up)."""


class FixedPace:
    """``max_concurrency=N``: always N parts in flight."""

    budget: float = float("inf")
    """Bytes the part buffers may hold (in flight, and the one being filled)."""
    epoch: int = 0
    """Changes when the parts sent from then on are judged apart from those sent before."""

    def __init__(self, parts: int) -> None:
        self.ceiling = parts
        self.most = parts
        """The most parts ever in flight (threads to upload them)."""
        self._parts = parts

    def allowed(self, part_size: int) -> int:
        """Parts that may be in flight now, for parts of ``part_size`` bytes."""
        return self._parts

    def part_size(self, scheduled: int) -> int:
        """The size of the next part, which the schedule makes ``scheduled`` bytes."""
        return scheduled

    def stored(
        self, nbytes: int, seconds: float, in_flight: int, retries: int, epoch: int | None = None
    ) -> None:
        """A part of ``nbytes`` took ``seconds``, sent with ``in_flight`` parts in flight
        (itself included) in ``epoch`` (None: this one); ``retries``: the requests retried so
        far."""

    def patience(self) -> float | None:
        """Seconds to wait for a part before calling overdue(); None: as long as it takes."""
        return None

    def overdue(self) -> None:
        """The first part has not landed within patience() while the next is ready."""


class AutoPace(FixedPace):
    """``max_concurrency="auto"``: as many parts in flight as raise the throughput, within
    ``budget`` bytes of part buffers and ``connections`` (the client's connection pool)."""

    def __init__(
        self,
        budget: int,
        part_size: int,
        connections: int = MAX_CONCURRENCY,
        smallest: int | None = None,
    ) -> None:
        self.budget: float = budget
        self._connections = connections
        super().__init__(self._holds(part_size))
        self._base = part_size  # the schedule's first size: the parts that may shrink
        self._smallest = smallest or part_size  # what they may shrink to
        self.most = self._holds(self._smallest)  # once parts have shrunk
        self._shrunk = False
        self._trying_smaller = False  # shrunk, and not yet judged
        self.limit = 1
        self._best = 0.0
        self._starting = True
        self._before = 1  # the number before the last increase
        self._trial_due = False  # a far store's first step took all the budget: try smaller
        # parts as soon as a part lands
        self._step_seen = True  # the step's parts the trial's are judged against have landed
        self._prior = (1, 0.0)  # the number and best throughput before the trial's step
        self._below = (1, 0.0)  # and before the step to the number now, as the climb judged it
        self._rates: list[float] = []  # of the parts landed at the current number
        self._retries = 0
        self._plateau = 0
        self._waiting = True  # no part has landed yet, nor has auto stopped waiting for one

    def allowed(self, part_size: int) -> int:
        return min(self.limit, self._holds(part_size) if part_size else self.ceiling)

    def part_size(self, scheduled: int) -> int:
        return self._smallest if self._shrunk and scheduled == self._base else scheduled

    def patience(self) -> float | None:
        return PATIENCE if self._waiting else None

    def overdue(self) -> None:
        self._waiting = False
        self.limit = min(self.ceiling, START_GROWTH)
        # a far store: if this step reaches the budget, its parts are already smaller ones,
        # and those that refill its places as they land are more of them, tried at once
        self._trial_due = self._shrunk = self._may_shrink()

    def stored(
        self, nbytes: int, seconds: float, in_flight: int, retries: int, epoch: int | None = None
    ) -> None:
        self._waiting = False
        if retries > self._retries:  # throttled, or failing: back off at once
            self._retries = retries
            self.limit = max(1, self.limit // 2)
            self._best = 0.0
            self._starting = self._trying_smaller = False
            self._shrunk = self._shrunk and not self._trial_due  # the step's parts grow back
            self._trial_due = False
            self._rates.clear()
            return
        due = self._trial_due
        if seconds > 0:
            self._measure(nbytes, seconds, in_flight, self.epoch if epoch is None else epoch)
        if due and self._trial_due:
            # the first part to land since a far store's first step, and it did not settle
            # that step: more smaller parts refill its places from now on, unless this part
            # took under FAR (then it flew nearly alone, and judges the step as on a store
            # nearby, whose next parts are the schedule's)
            self._trial_due = False
            self._shrunk = False
            if seconds >= FAR and self._starting and self._may_shrink():
                self._smaller(judged=False)

    def _measure(self, nbytes: int, seconds: float, in_flight: int, epoch: int) -> None:
        """Judge the parts in flight by a part that took ``seconds``."""
        if in_flight != self.limit:  # sent before the last change: not a measure of it
            if in_flight == 1 and not self._best:  # but the first part, landed after
                self._best = nbytes / seconds  # overdue(), is what the step is judged by
            elif self._trying_smaller and epoch < self.epoch and 1 < in_flight <= self._before:
                # and the step's parts landing while the trial's fly (sent with the others of
                # their step, each stands for all of them): what the trial's must beat
                self._best = max(self._best, self._before * nbytes / seconds)
                self._step_seen = True
            return
        self._rates.append(in_flight * nbytes / seconds)
        if self._trying_smaller:
            self._judge_smaller()
            return
        rate = max(self._rates)
        if rate <= self._best * RISE and len(self._rates) < 2:
            return  # a rise counts at once; no rise is judged on two parts, since the first
            # parts on new connections also pay for opening them
        self._rates.clear()
        if rate > self._best * RISE:
            if self.limit != self._before:  # the first rise since a step: what it rose from
                self._below = (self._before, self._best)  # (later ones at this number are
            below, below_best = self._below  # its connections warming up, not the step)
            in_proportion = rate >= below_best * IN_PROPORTION * self.limit / below
            self._best = rate
            self._plateau = 0
            self._before = self.limit
            grown = self.limit * START_GROWTH if self._starting else self.limit + 1
            if grown > self.ceiling and self._starting and in_proportion and self._may_shrink():
                self._smaller(judged=True)  # the budget, not the link, stops the climb
            else:
                self.limit = min(self.ceiling, grown)
        elif self._starting and self._before * HALFWAY < self.limit:  # the step overshot
            self._starting = False
            self.limit = self._before * HALFWAY
        elif rate < self._best * FALL:
            self._best = rate
            self._starting = False
            self.limit = max(1, self.limit - 1)
        else:  # no better than before the last increase: undo it, and hold
            self._starting = False
            self.limit = min(self.limit, self._before)
            self._plateau += 1
            if self._plateau >= PROBE_AFTER * self.limit:
                self._plateau = 0
                self._before = self.limit
                if self._may_shrink():
                    self._smaller(judged=True)
                else:
                    self.limit = min(self.ceiling, self.limit + 1)

    def _holds(self, part_size: int) -> int:
        """The most parts of ``part_size`` in flight: what the budget holds beside one being
        filled, and the connections."""
        return max(1, min(int(self.budget) // part_size - 1, self._connections))

    def _may_shrink(self) -> bool:
        """Whether the budget, not the link, caps the parts in flight, and smaller parts
        would let more fly in it."""
        bound = self.limit == self.ceiling < self._connections
        return bound and not self._shrunk and self._smallest < self._base

    def _smaller(self, *, judged: bool) -> None:
        """Try parts of the smallest size, as many in flight as the budget holds of them
        (``judged``: the step's parts at this number have landed; else they are still on their
        way, and the trial waits for one of them)."""
        self._prior = (self._before, self._best)
        self.epoch += 1  # the parts sent from now on are the trial's
        self._step_seen = judged or bool(self._rates)
        if self._rates:  # the step's parts at this number landed already: what the smaller
            self._best = max(self._best, *self._rates)  # must beat
            self._rates.clear()
        self._before = self.limit
        self._shrunk = self._trying_smaller = True
        self._trial_due = False
        self.ceiling = self.limit = self._holds(self._smallest)

    def _judge_smaller(self) -> None:
        """Keep the smaller parts if SMALLER_JUDGED of them, on average, clearly beat the
        step's parts; else back to the schedule's size, at the number before them."""
        if len(self._rates) < SMALLER_JUDGED or not self._step_seen:
            return
        rate = sum(self._rates) / len(self._rates)
        self._rates.clear()
        self._trying_smaller = False
        if rate > self._best * SMALLER_RISE:
            self._best = rate
            self._before = self.limit
            self._plateau = 0
            return
        self._shrunk = self._starting = False
        self.ceiling = self._holds(self._base)
        before, best = self._prior
        if self._best > best * RISE:  # the trial's step paid: back to it
            self.limit = self._before
        else:  # it did not either: halfway back, as after a step that overshot
            self.limit = min(self._before, before * HALFWAY)
            self._before = before

"""Parts in flight: max_concurrency="auto" keeps as many as raise the throughput, never more
than the memory budget holds, fewer at once under throttling; a slow part holds up no other;
parts and events stay in order.

The proxy holds every part for a while (a round trip to a far store), so that more parts in
flight do raise the throughput, as on a real network.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
import cloudpipe.buffer
from cloudpipe.arguments import DEFAULT_AUTO_MEMORY, pace_for
from cloudpipe.autoconcurrency import (
    MAX_CONCURRENCY,
    PATIENCE,
    PROBE_AFTER,
    SMALLER_JUDGED,
    AutoPace,
)
from tests.conftest import PART, pending_uploads, read_object
from tests.faultproxy import FaultProxy, Rule
from tests.servers import make_client

PARTS = 14
DATA = random.Random(11).randbytes(PARTS * PART - 1000)
BUDGET = 5 * PART  # 4 parts in flight, one filling
BUFFERS = cloudpipe.buffer.__file__


def far(proxy: FaultProxy, seconds: float = 0.2) -> None:
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=seconds, times=10**6))


def buffer_bytes() -> int:
    """Bytes held by part buffers now (allocated in cloudpipe/buffer.py), while tracing."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, BUFFERS)])
    return sum(trace.size for trace in snapshot.traces)


def stream_auto(
    client: Any, bucket: str, seen: list[tuple[int, int]], held: list[int] | None = None
) -> Any:
    def drained(number: int, nbytes: int) -> None:
        seen.append((number, writer.concurrency))
        if held is not None:
            held.append(buffer_bytes())

    with cloudpipe.S3MultipartWriter(
        bucket,
        "k",
        client=client,
        part_size=PART,
        max_concurrency="auto",
        max_memory=BUDGET,
        on_drained=drained,
    ) as writer:
        for start in range(0, len(DATA), 1 << 20):
            writer.write(DATA[start : start + (1 << 20)])
    return writer


@pytest.mark.alone  # the second part waits for the first, or for a tenth of a second
def test_auto_climbs_to_its_budget_and_never_past_it(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    far(proxy)
    seen: list[tuple[int, int]] = []
    held: list[int] = []  # part buffers' bytes as each part lands: when most are in use
    tracemalloc.start()
    try:
        stream_auto(proxied, bucket, seen, held)
    finally:
        tracemalloc.stop()
    assert read_object(s3, bucket, "k") == DATA
    assert [number for number, _ in seen] == list(range(1, PARTS + 1))  # events in part order
    parts = proxy.requests("PUT", "partNumber=")
    in_flight = [entry.in_flight for entry in parts]
    # it climbed to what the budget holds (the proxy counts a request until its answer is
    # written, by which time the client may have sent the next: one more at most)
    assert 4 <= max(in_flight) <= 5
    assert max(limit for _, limit in seen) == 4
    # one part in flight first: the next waited for it to land, or for the patience
    assert parts[1].at - parts[0].at >= PATIENCE - 0.02
    assert max(held) <= BUDGET + 64 * 1024  # the buffers' bytes, plus their objects' headers
    assert max(held) >= 4 * PART  # the measure sees the buffers in flight


def test_auto_backs_off_under_throttling(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    for number in (9, 10, 11):  # before the hold, which would match them first (no part 90+)
        proxy.respond(503, "SlowDown", method="PUT", path_contains=f"partNumber={number}")
    far(proxy)
    seen: list[tuple[int, int]] = []
    stream_auto(proxied, bucket, seen)
    assert read_object(s3, bucket, "k") == DATA
    assert pending_uploads(s3, bucket) == []
    # the retries may be seen as parts 6 to 8 land (they run meanwhile), so look at the whole
    # sequence: somewhere the number falls to half of what it had climbed to, at least 3
    limits = [limit for _, limit in seen]
    climbed = [max(limits[: index + 1]) for index in range(len(limits))]
    halved = [(high, now) for high, now in zip(climbed, limits, strict=True) if now <= high // 2]
    assert halved, limits
    assert max(high for high, _ in halved) >= 3, limits


def test_auto_pace_grows_eightfold_while_throughput_rises_holds_then_halves() -> None:
    """The rule itself, on made-up timings."""
    pace = AutoPace(budget=17 * PART, part_size=PART)
    assert (pace.ceiling, pace.allowed(PART)) == (16, 1)
    limits = []
    for _ in range(24):  # a distant store: each part takes 1 s, whatever else is in flight
        pace.stored(PART, 1.0, in_flight=pace.limit, retries=0)
        limits.append(pace.limit)
    assert limits[:2] == [8, 16]  # eightfold at each rise, up to the budget's ceiling
    assert set(limits[2:]) == {16}
    assert pace.allowed(4 * PART) == 3  # larger parts: fewer fit the budget
    pace.stored(PART, 1.0, in_flight=16, retries=1)
    assert pace.limit == 8  # throttled: halved

    saturated = AutoPace(budget=17 * PART, part_size=PART)
    for _ in range(60):  # a full link: a part takes as much longer as parts are in flight
        limit = saturated.limit
        saturated.stored(PART, 0.5 * max(limit, 4), in_flight=limit, retries=0)
    # it stopped at the first number tried (1, 8, 16) that reached the link's pace
    assert saturated.limit == 8

    overshot = AutoPace(budget=65 * PART, part_size=PART)
    steps = [overshot.limit]
    for _ in range(9):  # 8 in flight fill the link: 64 are no better, nor is 32
        overshot.stored(PART, 0.5 * max(overshot.limit, 8), in_flight=overshot.limit, retries=0)
        if overshot.limit != steps[-1]:
            steps.append(overshot.limit)
    assert steps == [1, 8, 64, 32, 8]  # up by eight, then halfway back, then the last good one
    saturated.stored(PART, 0.25, in_flight=saturated.limit - 1, retries=0)  # an old part
    assert saturated.limit == 8  # sent at another number: not counted


def test_auto_does_not_wait_a_whole_part_for_a_far_store(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A part that takes a second: the next is sent a tenth of a second after it is ready,
    not when the first lands; the step is then judged against the first part as usual."""
    hold = 1.0
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=hold, times=10**6))
    seen: list[tuple[int, int]] = []
    stream_auto(proxied, bucket, seen)
    assert read_object(s3, bucket, "k") == DATA
    parts = proxy.requests("PUT", "partNumber=")
    assert PATIENCE - 0.05 <= parts[1].at - parts[0].at < hold  # before the first landed
    assert max(entry.in_flight for entry in parts[:4]) >= 3  # several before the first landed
    assert [number for number, _ in seen] == list(range(1, PARTS + 1))


def test_auto_pace_steps_up_when_the_first_part_is_overdue() -> None:
    pace = AutoPace(budget=17 * PART, part_size=PART)
    assert (pace.patience(), pace.limit) == (PATIENCE, 1)
    pace.overdue()
    assert (pace.patience(), pace.limit) == (None, 8)  # the first step, taken once
    pace.stored(PART, 1.0, in_flight=1, retries=0)  # the first part: the step's yardstick
    assert pace.limit == 8
    pace.stored(PART, 1.0, in_flight=8, retries=0)  # eight times its throughput: a rise
    assert pace.limit == 16
    landed = AutoPace(budget=17 * PART, part_size=PART)
    landed.stored(PART, 0.05, in_flight=1, retries=0)  # a store nearby: no waiting to cut
    assert landed.patience() is None


def test_a_slow_part_holds_up_no_other(s3: Any, bucket: str, proxy: FaultProxy) -> None:
    """Part 1 is held 3 s, the others not: with two in flight, parts 2 to 4 go through the
    other place meanwhile (their buffers reused), and part 5 waits, since no more than twice
    the parts in flight are kept for an earlier one; events still come in part order."""
    hold = 3.0  # long enough that three parts go through meanwhile on a loaded machine
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=1", seconds=hold))  # once
    drained: list[int] = []
    with cloudpipe.S3MultipartWriter(
        bucket,
        "k",
        client=make_client(proxy.endpoint_url),
        part_size=PART,
        max_concurrency=2,
        on_drained=lambda number, nbytes: drained.append(number),
    ) as writer:
        for start in range(0, len(DATA), 1 << 20):
            writer.write(DATA[start : start + (1 << 20)])
    assert read_object(s3, bucket, "k") == DATA
    assert drained == list(range(1, PARTS + 1))
    sent = {
        entry.path.split("partNumber=")[1].split("&")[0]: entry.at
        for entry in proxy.requests("PUT", "partNumber=")
    }
    assert sent["4"] - sent["1"] < hold  # sent while part 1 was still held
    assert sent["5"] - sent["1"] >= hold  # four parts kept for it at most


def test_auto_arguments_are_checked(s3: Any) -> None:
    with pytest.raises(ValueError, match="max_memory applies to max_concurrency='auto' only"):
        cloudpipe.S3MultipartWriter("b-1", "k", client=s3, max_concurrency=4, max_memory=2**30)
    with pytest.raises(ValueError, match="max_concurrency='Auto': an int 1 to 64, or 'auto'"):
        cloudpipe.S3MultipartWriter("b-1", "k", client=s3, max_concurrency="Auto")
    with pytest.raises(ValueError, match="holds fewer than two parts"):
        cloudpipe.S3MultipartWriter(
            "b-1", "k", client=s3, part_size=PART, max_concurrency="auto", max_memory=PART
        )


def test_auto_stays_within_the_clients_connection_pool(
    s3: Any, bucket: str, proxy: FaultProxy
) -> None:
    """More parts in flight than the client keeps connections would open (and pay for) a new
    connection per part: auto climbs no higher than the pool, whatever the budget."""
    far(proxy)
    client = make_client(proxy.endpoint_url, max_pool_connections=2)
    seen: list[tuple[int, int]] = []
    stream_auto(client, bucket, seen)
    assert read_object(s3, bucket, "k") == DATA
    assert max(limit for _, limit in seen) == 2
    in_flight = [entry.in_flight for entry in proxy.requests("PUT", "partNumber=")]
    assert max(in_flight) <= 3  # two, and the proxy's lag of one


def test_auto_spends_a_budget_that_stops_its_climb_on_smaller_parts() -> None:
    """The rule, on made-up timings: a distant store where each connection carries 8 MiB/s
    after 0.2 s of latency, whatever else is in flight; 8 MiB parts, a 72 MiB budget: the
    climb 1, 8 still rises eightfold and 64 would not fit, so the parts of the schedule's first
    size shrink to 5 MiB, 13 fit, and they stay, since they raise the throughput by half;
    where eight connections carry only four's worth, the link, not the budget, stopped the
    climb: the smaller parts are not tried then, only after a plateau (paths change), found no
    better, and given up."""
    mib = 2**20
    pace = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    assert pace.part_size(8 * mib) == 8 * mib
    limits = []
    for _ in range(6):
        size = pace.part_size(8 * mib)
        pace.stored(size, 0.2 + size / (8 * mib), in_flight=pace.limit, retries=0)
        limits.append(pace.limit)
    assert limits == [8, 13, 13, 13, 13, 13]
    assert pace.part_size(8 * mib) == 5 * mib  # the first size shrinks
    assert pace.part_size(16 * mib) == 16 * mib  # grown parts keep the schedule's size
    assert pace.allowed(5 * mib) == 13
    assert pace.allowed(8 * mib) == 8  # a part still filling at the old size: what fits

    def full_link(pace: AutoPace, parts: int) -> list[int]:
        """Four connections fill the link: a part takes as much longer as more fly."""
        sizes = []
        for _ in range(parts):
            size, limit = pace.part_size(8 * mib), pace.limit
            pace.stored(size, size / (8 * mib) * max(1.0, limit / 4), limit, retries=0)
            sizes.append(size // mib)
        return sizes

    nearly_full = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    assert full_link(nearly_full, 6) == [8] * 6  # not tried: eight carried four's worth
    assert nearly_full.part_size(8 * mib) == 8 * mib
    assert nearly_full.limit == 8
    later = full_link(nearly_full, 2 * PROBE_AFTER * 8 + 4)
    tried = later.index(5)  # again, after a plateau of PROBE_AFTER x 8 judgements of two parts
    assert tried >= PROBE_AFTER * 8
    assert later[tried : tried + SMALLER_JUDGED] == [5] * SMALLER_JUDGED
    assert set(later[:tried] + later[tried + SMALLER_JUDGED :]) == {8}  # and given up again

    warming = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    warming.stored(8 * mib, 0.06, in_flight=1, retries=0)  # a store nearby, its CPU the limit:
    for seconds in (0.4, 0.4, 0.25, 0.25, 0.2, 0.2):  # eight carry 1.2 parts' worth, then up
        warming.stored(8 * mib, seconds, in_flight=8, retries=0)  # to 2.4 as they warm up
    assert warming.part_size(8 * mib) == 8 * mib  # rises at the same number: not a step that
    assert warming.limit == 8  # the budget stopped

    link_bound = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    for _ in range(20):  # the first part fills the link: no reason for more, nor smaller
        limit = link_bound.limit
        link_bound.stored(8 * mib, 0.5 * limit, in_flight=limit, retries=0)
    assert link_bound.part_size(8 * mib) == 8 * mib
    assert link_bound.limit <= 2  # back to one, trying one more now and then


def test_the_default_budget_is_the_least_that_flies_13_parts_of_5_mib() -> None:
    """Auto's default max_memory holds 13 parts of 5 MiB in flight beside one being filled
    (what a link whose connections each carry a tenth of it needs: profile B), and a byte less
    would not; 8 MiB parts fly 7 at a time in it. Parts over half of it get two parts."""
    mib = 2**20
    pace = pace_for("auto", None, 8 * mib, MAX_CONCURRENCY)
    assert isinstance(pace, AutoPace)
    assert (pace.ceiling, pace.most) == (7, 13)
    assert pace.budget == DEFAULT_AUTO_MEMORY
    less = AutoPace(DEFAULT_AUTO_MEMORY - 1, 8 * mib, MAX_CONCURRENCY, smallest=5 * mib)
    assert less.most == 12
    larger = pace_for("auto", None, 64 * mib, MAX_CONCURRENCY)
    assert larger is not None
    assert (larger.budget, larger.ceiling) == (128 * mib, 1)


def test_a_far_store_tries_smaller_parts_as_soon_as_the_first_part_lands() -> None:
    """The rule, on made-up timings, where the first part is overdue and the step it calls
    for (8 parts) is all a 72 MiB budget holds of 8 MiB parts: the step's parts are
    already the smaller ones, and the parts that refill its places as they land are more of
    them, 13, not a second round of 8; the step's own parts, landing meanwhile (sent before
    the trial: an earlier epoch), are what they must beat."""
    mib = 2**20

    def far_start(seconds: Callable[[int, int], float], first: int = 8) -> AutoPace:
        """``seconds(size, in_flight)``: how long a part takes; the first part flew beside
        ``first`` parts (itself included) most of its way."""
        pace = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
        pace.overdue()
        assert (pace.limit, pace.part_size(8 * mib)) == (8, 5 * mib)  # the step: smaller
        step = pace.epoch
        pace.stored(8 * mib, seconds(8 * mib, first), 1, 0, step)  # the first part lands
        assert (pace.limit, pace.part_size(8 * mib)) == (13, 5 * mib)  # 13 of them, at once
        assert pace.epoch != step  # the parts sent from now on are the trial's
        for in_flight in range(2, 9):  # the step's others land
            pace.stored(5 * mib, seconds(5 * mib, 8), in_flight, 0, step)
        for _ in range(SMALLER_JUDGED):
            pace.stored(5 * mib, seconds(5 * mib, 13), in_flight=13, retries=0)
        return pace

    # each connection carries 8 MiB/s after 0.2 s, whatever else is in flight: 13 carry more
    kept = far_start(lambda size, in_flight: 0.2 + size / (8 * mib))
    assert (kept.limit, kept.part_size(8 * mib)) == (13, 5 * mib)
    # four connections fill the link: 13 carry no more than 8, and the parts go back
    given_up = far_start(lambda size, in_flight: 0.2 + size / (8 * mib) * in_flight / 4)
    assert (given_up.limit, given_up.part_size(8 * mib)) == (8, 8 * mib)
    # one connection fills the link (the first part, alone, carried as much as 8 did): the
    # step to 8 did not pay either, and the parts in flight go halfway back, to 4
    one_fills = far_start(lambda size, in_flight: size / (8 * mib) * in_flight, first=1)
    assert (one_fills.limit, one_fills.part_size(8 * mib)) == (4, 8 * mib)

    # a first part overdue, landed within half a second (0.37 s: the local server, slowed):
    # it flew nearly alone, and the step is judged by it as on a store nearby, where eight
    # carrying five parts' worth stay larger, and the next parts are the schedule's again
    near = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    near.overdue()
    near.stored(8 * mib, 0.37, in_flight=1, retries=0)
    assert (near.limit, near.part_size(8 * mib)) == (8, 8 * mib)  # not at once
    for _ in range(4):
        near.stored(8 * mib, 0.6, in_flight=8, retries=0)
    assert (near.limit, near.part_size(8 * mib)) == (8, 8 * mib)  # nor once judged

    # throttled before any part lands: the parts in flight halve, and grow back to the
    # schedule's size, since no trial will judge the smaller ones
    throttled = AutoPace(budget=72 * mib, part_size=8 * mib, smallest=5 * mib)
    throttled.overdue()
    throttled.stored(8 * mib, 1.0, in_flight=1, retries=1)
    assert (throttled.limit, throttled.part_size(8 * mib)) == (4, 8 * mib)


def part_sizes(proxy: FaultProxy) -> list[int]:
    """The size of each part sent, in part order."""
    sent = {
        int(entry.path.split("partNumber=")[1].split("&")[0]): int(entry.headers["content-length"])
        for entry in proxy.requests("PUT", "partNumber=")
    }
    return [sent[number] for number in sorted(sent)]


FIRST = 9 * 2**20  # a first size larger than S3's smallest, so that it can shrink
BUDGET_30 = 30 * 2**20
SHRINKING = random.Random(12).randbytes(8 * FIRST + 999)


def shrinking_writer(client: Any, bucket: str, **args: Any) -> cloudpipe.S3MultipartWriter:
    """Auto with 9 MiB parts and a 30 MiB budget: 2 in flight, 5 once they shrink, which
    carry 25 MiB where 2 carried 18 (each part is held a second: a far store)."""
    auto = {"max_concurrency": "auto", "max_memory": BUDGET_30}
    return cloudpipe.S3MultipartWriter(bucket, "k", client=client, part_size=FIRST, **auto, **args)


@pytest.mark.alone  # the rule acts on measured throughput: a loaded server is not a far one
def test_auto_with_a_budget_bound_climb_sends_smaller_parts_within_the_budget(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    far(proxy, 1.0)  # far enough that more parts in flight carry more, whatever their size
    held: list[int] = []
    tracemalloc.start()
    try:
        limits: list[int] = []

        def drained(number: int, nbytes: int) -> None:
            held.append(buffer_bytes())
            limits.append(writer.concurrency)

        with shrinking_writer(proxied, bucket, on_drained=drained) as writer:
            for start in range(0, len(SHRINKING), 1 << 20):
                writer.write(SHRINKING[start : start + (1 << 20)])
    finally:
        tracemalloc.stop()
    assert read_object(s3, bucket, "k") == SHRINKING
    sizes = part_sizes(proxy)
    assert sizes[0] == FIRST  # the first parts at the schedule's size
    assert PART in sizes[:-1]  # then S3's smallest, once the budget stopped the climb
    assert set(sizes[:-1]) == {FIRST, PART}
    assert sizes[-2] == PART  # and they stayed: they carry more
    assert max(limits) == 5  # what the budget holds of the smaller parts, and no more
    assert max(held) <= BUDGET_30 + 64 * 1024  # the budget


@pytest.mark.alone  # the rule acts on measured throughput: a loaded server is not a far one
def test_a_journal_with_smaller_parts_resumes(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Any
) -> None:
    far(proxy, 1.0)
    journal = tmp_path / "j"
    with pytest.raises(KeyboardInterrupt):  # noqa: SIM117
        with shrinking_writer(proxied, bucket, journal=journal) as writer:
            writer.write(SHRINKING[: 7 * FIRST])
            raise KeyboardInterrupt
    assert writer.ending.state is cloudpipe.State.KEPT
    stored = part_sizes(proxy)
    assert PART in stored  # some parts the journal records are smaller than the schedule's
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(SHRINKING)) as resumed:
        resumed.write(SHRINKING[resumed.tell() :])
    assert read_object(s3, bucket, "k") == SHRINKING


GIVE_UP = """
import os, sys
import cloudpipe
from tests.servers import make_client

M = 2**20
client = make_client(sys.argv[1])
client.head_bucket(Bucket=sys.argv[2])


def status(field: str) -> int:
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))


block = os.urandom(16 * M)
base = status("VmRSS")
with cloudpipe.S3MultipartWriter(
    sys.argv[2], "k", client=client, max_concurrency="auto", max_memory=72 * M
) as writer:
    for _ in range(int(sys.argv[3]) // 16):
        for start in range(0, len(block), 64 * 1024):
            writer.write(block[start : start + 64 * 1024])
print((status("VmHWM") - base) // 1024)
"""


@pytest.mark.alone  # auto acts on measured throughput, and the peak on what the process holds
@pytest.mark.one_server
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_auto_that_gives_up_smaller_parts_stays_within_its_budget(
    s3: Any, bucket: str, proxy: FaultProxy
) -> None:
    """8 MiB parts, a 72 MiB budget, every part held 0.6 s: 13 parts of 5 MiB carry about
    what 8 of 8 MiB do, so auto tries them (its first step's parts already, the first part
    being overdue, and 13 of them as soon as it lands, the store being far) and gives them
    up. The process's peak memory (over its own baseline, what the
    benchmarks measure) stays within the budget: the smaller buffers, let go, leave no pages
    behind (glibc kept them, 80 to 92 MiB in all), and no buffer is handed out at one size
    and filled at another."""
    far(proxy, 0.6)
    mib = 256
    done = subprocess.run(
        [sys.executable, "-c", GIVE_UP, proxy.endpoint_url, bucket, str(mib)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    peak = int(done.stdout.split()[-1])
    sizes = part_sizes(proxy)
    # the first step's parts are 5 MiB already: all but the first part and the one filled
    # while it was overdue (parts 3 to 8; 8 MiB parts until part 9 or 10 in the round before)
    assert sizes[:8] == [8 * 2**20] * 2 + [PART] * 6, sizes
    assert 8 * 2**20 in sizes[8:-1], sizes  # and they are given up for the schedule's 8 MiB
    assert peak <= 72 + 4, (peak, sizes)  # MiB: the budget, and the interpreter's own growth
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == mib * 2**20

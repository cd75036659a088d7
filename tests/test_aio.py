"""cloudpipe.aio: the writer for asyncio code, against real servers (through the fault proxy
where a part must take a while, fail or be cut short).

What asyncio adds to the synchronous writer's promises: requests never run on the event loop
(its lag stays low while parts upload), ``await write()`` holds the producer back when the
parts in flight fill the budget, a cancellation aborts the upload before the cancelled task
finishes, and callbacks (plain or coroutine functions) run on the loop, in order.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
import cloudpipe.aio
import cloudpipe.buffer
from tests.conftest import PART, assert_no_trace, pending_uploads, read_object
from tests.faultproxy import FaultProxy, Rule

DATA = random.Random(13).randbytes(3 * PART + 12345)
CHUNK = 64 * 1024


def chunks(data: bytes = DATA, size: int = CHUNK) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def hold_parts(proxy: FaultProxy, seconds: float) -> None:
    """Each part takes ``seconds`` longer, as on a far network."""
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=seconds, times=10**6))


def test_stream_lands_whole_with_events_in_order_on_the_loop(
    s3: Any, bucket: str, server: Any
) -> None:
    seen: list[tuple[str, Any, bool]] = []

    async def main() -> cloudpipe.aio.AsyncS3MultipartWriter:
        loop_thread = threading.get_ident()

        def ready(upload_id: str) -> None:  # a plain function
            seen.append(("ready", upload_id, threading.get_ident() == loop_thread))

        async def drained(number: int, nbytes: int) -> None:  # a coroutine function
            await asyncio.sleep(0.01)  # awaited before the next event: order holds
            seen.append(("drained", (number, nbytes), threading.get_ident() == loop_thread))

        async def ended(completed: bool) -> None:
            seen.append(("end", completed, threading.get_ident() == loop_thread))

        async with cloudpipe.aio.open(
            f"s3://{bucket}/k",
            client=s3,
            part_size=PART,
            on_ready=ready,
            on_drained=drained,
            on_end=ended,
        ) as writer:
            for chunk in chunks():
                assert await writer.write(chunk) == len(chunk)
            assert writer.tell() == len(DATA)
        return writer

    writer = asyncio.run(main())
    assert read_object(s3, bucket, "k") == DATA
    assert writer.closed
    assert writer.part_count == 4
    assert writer.etag == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert [name for name, _, _ in seen] == ["ready"] + ["drained"] * 4 + ["end"]
    assert [args for name, args, _ in seen if name == "drained"] == [
        (1, PART),
        (2, PART),
        (3, PART),
        (4, 12345),
    ]
    assert all(on_loop for _, _, on_loop in seen)  # every callback ran on the loop's thread
    if writer.checksum is not None and writer.checksum["type"] == "FULL_OBJECT":
        assert writer.checksum["value"] == cloudpipe.checksums.crc32_text(zlib.crc32(DATA))


def test_short_stream_and_empty_stream(s3: Any, bucket: str) -> None:
    async def main() -> None:
        async with cloudpipe.aio.AsyncS3MultipartWriter(bucket, "short", client=s3) as w:
            await w.write(b"hello")
            await w.write(memoryview(b" world"))
        async with cloudpipe.aio.AsyncS3MultipartWriter(bucket, "empty", client=s3):
            pass

    asyncio.run(main())
    assert read_object(s3, bucket, "short") == b"hello world"
    assert read_object(s3, bucket, "empty") == b""


@pytest.mark.alone
def test_the_loop_keeps_running_while_parts_upload(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A ticker on the loop measures how late it wakes while each part takes 0.4 s more."""
    hold_parts(proxy, 0.4)
    lags: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - started - 0.005)

    async def main() -> float:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        async with cloudpipe.aio.open(f"s3://{bucket}/k", client=proxied, part_size=PART) as w:
            for chunk in chunks():
                await w.write(chunk)
        took = time.perf_counter() - started
        stop.set()
        await ticking
        return took

    took = asyncio.run(main())
    assert read_object(s3, bucket, "k") == DATA
    assert took >= 4 * 0.4  # the parts did take their time, on the ticker's watch
    assert len(lags) >= took / 0.06  # it kept ticking throughout
    # a blocked loop would wake a part's 0.4 s late; a wake-up may lose ~0.1 s to the GIL now
    # and then (the proxy and botocore share this process), but never a part's time, and
    # nearly every tick is on time
    assert max(lags) < 0.2, sorted(lags)[-5:]
    assert sorted(lags)[int(len(lags) * 0.95)] < 0.05, sorted(lags)[-5:]


@pytest.mark.alone
def test_write_holds_the_producer_back_within_the_memory_budget(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """max_concurrency=2: a write that fills a part waits while two are in flight, and the
    part buffers never hold more than three parts, however fast the producer."""
    hold_parts(proxy, 0.3)
    data = random.Random(5).randbytes(8 * PART)
    buffers = cloudpipe.buffer.__file__

    def buffer_bytes() -> int:
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, buffers)])
        return sum(trace.size for trace in snapshot.traces)

    async def stream(key: str, after_write: Any) -> None:
        async with cloudpipe.aio.open(
            f"s3://{bucket}/{key}", client=proxied, part_size=PART, max_concurrency=2
        ) as w:
            for chunk in chunks(data, 1 << 20):
                started = time.perf_counter()
                await w.write(chunk)
                after_write(time.perf_counter() - started)

    waits: list[float] = []
    asyncio.run(stream("timed", waits.append))
    # 8 parts, 2 in flight, 0.3 s each: writes wait for parts 1 to 6, about 0.9 s less the
    # time spent filling the next part meanwhile (0.1 s or more on a busy machine), spread
    # over the writes that each fill a part; a writer that did not wait would wait ~0 s
    assert sum(wait > 0.1 for wait in waits) >= 3, sorted(waits)[-6:]
    assert sum(waits) >= 0.6, sorted(waits)[-6:]

    held: list[int] = []  # taking snapshots slows the producer: a run of its own
    tracemalloc.start()
    try:
        asyncio.run(stream("measured", lambda _: held.append(buffer_bytes())))
    finally:
        tracemalloc.stop()
    assert read_object(s3, bucket, "timed") == read_object(s3, bucket, "measured") == data
    assert max(held) <= 3 * PART + 64 * 1024
    assert max(held) >= 2 * PART  # the measure does see the buffers


def test_cancelled_task_has_aborted_the_upload_by_the_time_it_finishes(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    hold_parts(proxy, 0.5)
    ended: list[bool] = []

    async def upload(started: asyncio.Event) -> None:
        async with cloudpipe.aio.open(
            f"s3://{bucket}/k", client=proxied, part_size=PART, on_end=ended.append
        ) as w:
            for number, chunk in enumerate(chunks()):
                await w.write(chunk)
                if number * CHUNK > PART:
                    started.set()

    async def main() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(upload(started))
        await started.wait()  # part 1 stored, part 2 on its way or filling
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the task has finished: the abort is done, not merely on its way
        assert ended == [False]
        assert_no_trace(s3, bucket, "k")

    asyncio.run(main())
    assert proxy.requests("PUT", "partNumber=1")  # something was stored before the cancel


def test_timeout_and_repeated_cancels_still_abort(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """asyncio.timeout cancels the write; a second cancel while the abort runs does not cut
    it short."""
    hold_parts(proxy, 0.6)

    async def main() -> None:
        w = cloudpipe.aio.open(f"s3://{bucket}/k", client=proxied, part_size=PART)

        async def body() -> None:
            async with w:
                for chunk in chunks():
                    await w.write(chunk)

        task = asyncio.create_task(body())
        await asyncio.sleep(0.3)  # part 1 is held by the proxy
        task.cancel()
        await asyncio.sleep(0.05)
        task.cancel()  # again, while the abort waits for the part
        with pytest.raises(asyncio.CancelledError):
            await task
        assert w.closed
        assert_no_trace(s3, bucket, "k")

        w2 = cloudpipe.aio.open(f"s3://{bucket}/k2", client=proxied, part_size=PART)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async with w2:
                    for chunk in chunks():
                        await w2.write(chunk)
        assert w2.closed
        assert_no_trace(s3, bucket, "k2")

    asyncio.run(main())


def test_exception_in_the_block_aborts(s3: Any, bucket: str) -> None:
    async def main() -> None:
        with pytest.raises(ZeroDivisionError):
            async with cloudpipe.aio.open(f"s3://{bucket}/k", client=s3, part_size=PART) as w:
                for chunk in chunks():
                    await w.write(chunk)
                1 / 0  # noqa: B018

    asyncio.run(main())
    assert_no_trace(s3, bucket, "k")


def test_a_callback_that_raises_aborts_and_a_call_back_into_the_writer_is_refused(
    s3: Any, bucket: str
) -> None:
    ended: list[bool] = []

    async def main() -> None:
        async def drained(number: int, nbytes: int) -> None:
            if number == 2:
                raise LookupError("no room in the catalogue")

        with pytest.raises(LookupError):
            async with cloudpipe.aio.open(
                f"s3://{bucket}/k",
                client=s3,
                part_size=PART,
                on_drained=drained,
                on_end=ended.append,
            ) as w:
                for chunk in chunks():
                    await w.write(chunk)
        assert ended == [False]

        async def reenter(number: int, nbytes: int) -> None:
            await w2.write(b"more")

        w2 = cloudpipe.aio.open(f"s3://{bucket}/k2", client=s3, part_size=PART, on_drained=reenter)
        with pytest.raises(RuntimeError, match="called from one of the writer's own callbacks"):
            async with w2:
                for chunk in chunks():
                    await w2.write(chunk)

    asyncio.run(main())
    assert_no_trace(s3, bucket, "k")
    assert_no_trace(s3, bucket, "k2")


def test_retries_and_a_kept_journal_behave_as_the_synchronous_writer(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    """One upload logic: a 503 is retried; a part that fails for good keeps a journaled
    upload, which the synchronous resume() finishes."""
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1", times=1)
    proxy.respond(500, "InternalError", method="PUT", path_contains="partNumber=3", times=10)
    journal = tmp_path / "j"

    async def main() -> None:
        with pytest.raises(cloudpipe.UploadError, match="resume") as failed:
            async with cloudpipe.aio.open(
                f"s3://{bucket}/k",
                client=proxied,
                part_size=PART,
                journal=journal,
                max_attempts=2,
            ) as w:
                for chunk in chunks():
                    await w.write(chunk)
        assert failed.value.aborted is False

    asyncio.run(main())
    assert len(proxy.requests("PUT", "partNumber=1")) == 2  # retried once
    assert journal.exists()
    with cloudpipe.resume(journal, client=s3) as resumed:
        resumed.write(DATA[resumed.tell() :])
    assert read_object(s3, bucket, "k") == DATA
    assert pending_uploads(s3, bucket) == []


def test_bad_arguments_fail_at_once(s3: Any, bucket: str) -> None:
    with pytest.raises(ValueError, match="'wb'"):
        cloudpipe.aio.open(f"s3://{bucket}/k", "w", client=s3)
    with pytest.raises(TypeError, match="on_end must be callable"):
        cloudpipe.aio.open(f"s3://{bucket}/k", client=s3, on_end=3)
    with pytest.raises(ValueError, match="part_size"):
        cloudpipe.aio.open(f"s3://{bucket}/k", client=s3, part_size=1)

    async def main() -> None:
        async with cloudpipe.aio.open(f"s3://{bucket}/k", client=s3) as w:
            with pytest.raises(TypeError, match="bytes-like"):
                await w.write("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="closed"):
            await w.write(b"late")

    asyncio.run(main())
    assert read_object(s3, bucket, "k") == b""


def test_a_failing_task_group_sibling_aborts_the_upload(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A TaskGroup cancels the upload when a sibling task fails; by the time the group has
    raised, the upload is aborted."""
    hold_parts(proxy, 0.3)

    async def upload() -> None:
        async with cloudpipe.aio.open(f"s3://{bucket}/k", client=proxied, part_size=PART) as w:
            for chunk in chunks():
                await w.write(chunk)

    async def sibling() -> None:
        await asyncio.sleep(0.5)  # part 1 stored or held by now
        raise KeyError("the request's other half failed")

    async def main() -> None:
        with pytest.raises(ExceptionGroup) as failed:
            async with asyncio.TaskGroup() as group:
                group.create_task(upload())
                group.create_task(sibling())
        assert failed.group_contains(KeyError)
        assert_no_trace(s3, bucket, "k")

    asyncio.run(main())
    assert proxy.requests("PUT", "partNumber=1")


@pytest.mark.alone
@pytest.mark.timeout(60)  # before the fix, the loop waited for the lock for ever
def test_a_shared_writer_never_holds_the_loop_while_its_owner_aborts(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """Two tasks write into one writer; the one owning ``async with`` fails, and the abort
    takes 1.5 s: the other task's writes neither wait on the loop for the writer's lock nor
    hang the on_end callback; each gets a one-line error once the writer has ended."""
    proxy.add(Rule("hold", method="DELETE", seconds=1.5))
    ends: list[bool] = []
    refused: list[str] = []
    lags: list[float] = []
    writer_ending: list[cloudpipe.State] = []

    async def main() -> None:
        async def ended(completed: bool) -> None:
            ends.append(completed)

        writer = cloudpipe.aio.AsyncS3MultipartWriter(
            bucket, "k", client=proxied, part_size=PART, on_end=ended
        )
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                started = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - started - 0.01)

        async def owner() -> None:
            async with writer:
                await writer.write(DATA[: PART + 10])  # a part stored: an upload to abort
                await asyncio.sleep(0.1)
                raise RuntimeError("the owner failed")

        async def other() -> None:
            while True:
                try:
                    await writer.write(b"y" * 100)
                except ValueError as error:
                    refused.append(str(error))
                    return
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        writing = asyncio.create_task(other())
        with pytest.raises(RuntimeError, match="the owner failed"):
            await owner()
        await writing
        stop.set()
        await ticking
        writer_ending.append(writer.ending.state)

    asyncio.run(main())
    assert ends == [False]
    assert writer_ending == [cloudpipe.State.ABORTED]
    assert len(refused) == 1
    assert "closed writer" in refused[0]
    assert "\n" not in refused[0]
    assert max(lags) < 0.5, max(lags)  # the abort took 1.5 s, off the loop
    assert_no_trace(s3, bucket, "k")

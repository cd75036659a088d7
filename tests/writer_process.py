"""Programs the process tests run as real child processes: ``python -m tests.writer_process
SCENARIO BUCKET KEY [CONCURRENCY]``, with the endpoint and credentials in AWS_* variables.

Each prints what it saw on standard output, one ``label: text`` line per event, and the
tests compare that with what the server holds.
"""

from __future__ import annotations

import os
import sys
import time

import cloudpipe

PART = 5 * 2**20
PARENT = b"P" * (PART + 1000)
PARENT_TAIL = b"Q" * 3000
CHILD = b"C" * (PART + 7)
LEFT_OPEN = b"x" * (PART + 123)


def say(label: str, text: object) -> None:
    print(f"{label}: {text}", flush=True)


def writer(bucket: str, key: str, concurrency: int) -> cloudpipe.S3MultipartWriter:
    return cloudpipe.S3MultipartWriter(
        bucket,
        key,
        part_size=PART,
        max_concurrency=concurrency,
        on_end=lambda completed: say(f"on_end {os.getpid()}", completed),
    )


def fork(bucket: str, key: str, concurrency: int) -> None:
    """A child forked mid-stream writes, closes and leaves the with block: none of it may
    reach the server; the parent then finishes its own object."""
    with writer(bucket, key, concurrency) as w:
        w.write(PARENT)
        pid = os.fork()
        if pid == 0:
            for call in (lambda: w.write(CHILD), w.close):
                try:
                    call()
                except RuntimeError as error:
                    say("child refused", error)
            # leave the with block cleanly (it closes) and exit as a normal program does
            return
        _, status = os.waitpid(pid, 0)
        say("child exit status", os.waitstatus_to_exitcode(status))
        w.write(PARENT_TAIL)
    say("parent etag", w.etag)


def fork_exception(bucket: str, key: str, concurrency: int) -> None:
    """A forked child whose with block fails, then exits: aborts nothing of the parent's."""
    with writer(bucket, key, concurrency) as w:
        w.write(PARENT)
        pid = os.fork()
        if pid == 0:
            try:
                with w:
                    raise LookupError("the child's own failure")
            except LookupError:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        w.write(PARENT_TAIL)
    say("parent etag", w.etag)


def multiprocessing_fork(bucket: str, key: str, concurrency: int) -> None:
    """multiprocessing's fork start method: the child gets the writer through the fork."""
    import multiprocessing

    with writer(bucket, key, concurrency) as w:
        w.write(PARENT)

        def child() -> None:
            try:
                w.write(CHILD)
            except RuntimeError as error:
                say("child refused", error)

        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        process.join(60)
        say("child exit status", process.exitcode)
        w.write(PARENT_TAIL)
    say("parent etag", w.etag)


OPEN_AT_EXIT: object = None


def exit_binary(bucket: str, key: str, concurrency: int) -> None:
    """A module global still open when the interpreter exits."""
    global OPEN_AT_EXIT
    w = writer(bucket, key, concurrency)
    w.write(LEFT_OPEN)
    OPEN_AT_EXIT = w
    say("left open", w.upload_id or "before any request")


def exit_text(bucket: str, key: str, concurrency: int) -> None:
    global OPEN_AT_EXIT
    text = cloudpipe.open(f"s3://{bucket}/{key}", "w", part_size=PART, max_concurrency=concurrency)
    text.write("x" * (PART + 123))
    text.flush()
    OPEN_AT_EXIT = text
    say("left open", text.buffer.upload_id)


def close_slowly(bucket: str, key: str, concurrency: int) -> None:
    """Close (the test interrupts it) and report what the writer says happened."""
    size = int(os.environ.get("CLOUDPIPE_TEST_SIZE", str(2 * PART + 99)))
    w = writer(bucket, key, concurrency)
    w.write(b"z" * size)
    say("closing", time.monotonic())
    try:
        w.close()
    except KeyboardInterrupt:
        say("interrupted", "KeyboardInterrupt")
    say("closed", w.closed)
    say("etag", w.etag)


def journaled(bucket: str, key: str, concurrency: int) -> None:
    """Stream CLOUDPIPE_TEST_DATA with a journal (CLOUDPIPE_TEST_JOURNAL), in 1 MiB writes:
    the tests kill this process at chosen requests."""
    with (
        open(os.environ["CLOUDPIPE_TEST_DATA"], "rb") as source,
        cloudpipe.S3MultipartWriter(
            bucket,
            key,
            part_size=PART,
            max_concurrency=concurrency,
            journal=os.environ["CLOUDPIPE_TEST_JOURNAL"],
        ) as w,
    ):
        while chunk := source.read(1 << 20):
            w.write(chunk)
    say("etag", w.etag)


def resumed(bucket: str, key: str, concurrency: int) -> None:
    """Resume CLOUDPIPE_TEST_JOURNAL with CLOUDPIPE_TEST_DATA as the source, and finish."""
    with open(os.environ["CLOUDPIPE_TEST_DATA"], "rb") as source:
        w = cloudpipe.resume(
            os.environ["CLOUDPIPE_TEST_JOURNAL"], source=source, max_concurrency=concurrency
        )
        if w.closed:
            say("completed before", w.etag)
            return
        say("resumed from", w.tell())
        with w:
            while chunk := source.read(1 << 20):
                w.write(chunk)
    say("etag", w.etag)


def journaled_exit(bucket: str, key: str, concurrency: int) -> None:
    """A writer with a journal still open at interpreter exit: kept for a resume."""
    global OPEN_AT_EXIT
    w = cloudpipe.S3MultipartWriter(
        bucket,
        key,
        part_size=PART,
        max_concurrency=concurrency,
        journal=os.environ["CLOUDPIPE_TEST_JOURNAL"],
    )
    w.write(LEFT_OPEN)
    OPEN_AT_EXIT = w
    say("left open", w.upload_id)


def exit_async(bucket: str, key: str, concurrency: int) -> None:
    """An asyncio writer still open when its loop and then the interpreter end."""
    import asyncio

    import cloudpipe.aio

    async def ended_async(completed: bool) -> None:
        say("async on_end", completed)  # never: no loop is left to run it at exit

    async def main() -> None:
        global OPEN_AT_EXIT
        w = cloudpipe.aio.open(
            f"s3://{bucket}/{key}",
            part_size=PART,
            max_concurrency=concurrency,
            on_end=lambda completed: say("on_end", completed),
            on_error=ended_async,
        )
        await w.write(LEFT_OPEN)
        OPEN_AT_EXIT = w
        say("left open", w.upload_id or "before any request")

    asyncio.run(main())


def interrupt_async(bucket: str, key: str, concurrency: int) -> None:
    """Ctrl-C while an asyncio writer's part is on its way (asyncio.run cancels the task)."""
    import asyncio

    import cloudpipe.aio

    async def main() -> None:
        async with cloudpipe.aio.open(
            f"s3://{bucket}/{key}",
            part_size=PART,
            max_concurrency=concurrency,
            on_end=lambda completed: say("on_end", completed),
        ) as w:
            for _ in range(10):
                await w.write(LEFT_OPEN)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        say("interrupted", "KeyboardInterrupt")


def interrupt_twice(bucket: str, key: str, concurrency: int) -> None:
    """Parts in flight (max_concurrency=4), then Ctrl-C, and Ctrl-C again while the writer
    waits for them: say what the writer reports of its ending."""
    w = cloudpipe.S3MultipartWriter(
        bucket,
        key,
        part_size=PART,
        max_concurrency=4,
        on_end=lambda completed: say("on_end", completed),
    )
    try:
        with w:
            for _ in range(8):
                w.write(CHILD)
    except KeyboardInterrupt:
        say("ending", w.ending.state.value)
        say("repr", repr(w))


SCENARIOS = {
    "interrupt-twice": interrupt_twice,
    "exit-async": exit_async,
    "interrupt-async": interrupt_async,
    "journal": journaled,
    "resume": resumed,
    "journal-exit": journaled_exit,
    "fork": fork,
    "fork-exception": fork_exception,
    "multiprocessing-fork": multiprocessing_fork,
    "exit-binary": exit_binary,
    "exit-text": exit_text,
    "close": close_slowly,
}

if __name__ == "__main__":
    scenario, bucket_name, key_name = sys.argv[1:4]
    SCENARIOS[scenario](bucket_name, key_name, int(sys.argv[4]) if len(sys.argv) > 4 else 1)

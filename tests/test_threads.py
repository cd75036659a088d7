"""One writer shared by threads: whole writes, never torn or interleaved, and safe endings."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, pending_uploads, read_object

pytestmark = pytest.mark.usefixtures("concurrency")

THREADS = 8
RECORDS = 40


def record(thread: int, number: int) -> bytes:
    """A record that says who wrote it and how long it is, of a size that crosses parts."""
    size = random.Random(thread * 1000 + number).randrange(10, 400_000)
    head = f"<{thread}:{number}:{size}>".encode()
    return head + bytes([65 + thread]) * size + b"\n"


def parse(data: bytes) -> list[tuple[int, int]]:
    """The records in ``data``; an AssertionError at the first torn or mixed one."""
    found = []
    position = 0
    while position < len(data):
        end = data.index(b">", position)
        thread, number, size = map(int, data[position + 1 : end].decode().split(":"))
        body = data[end + 1 : end + 1 + size + 1]
        assert body == bytes([65 + thread]) * size + b"\n", f"record {thread}:{number} is torn"
        found.append((thread, number))
        position = end + 1 + size + 1
    return found


def hammer(writer: cloudpipe.S3MultipartWriter, thread: int, start: threading.Barrier) -> None:
    start.wait()
    for number in range(RECORDS):
        writer.write(record(thread, number))


def test_threads_writing_at_once_keep_every_write_whole(s3: Any, bucket: str) -> None:
    start = threading.Barrier(THREADS)
    with cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART) as writer:
        threads = [threading.Thread(target=hammer, args=(writer, n, start)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        expected = sum(len(record(t, n)) for t in range(THREADS) for n in range(RECORDS))
        assert writer.tell() == expected
    data = read_object(s3, bucket, "k")
    assert len(data) == expected
    records = parse(data)
    assert Counter(records) == Counter((t, n) for t in range(THREADS) for n in range(RECORDS))
    for thread in range(THREADS):  # each thread's own writes keep their order
        assert [n for t, n in records if t == thread] == list(range(RECORDS))
    assert writer.part_count > 3
    assert pending_uploads(s3, bucket) == []


@pytest.mark.parametrize("ending", ["close", "abort"])
def test_ending_from_another_thread_while_others_write(s3: Any, bucket: str, ending: str) -> None:
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART)
    start = threading.Barrier(THREADS + 1)
    failures: list[BaseException] = []

    def write_until_closed(thread: int) -> None:
        start.wait()
        try:
            for number in range(RECORDS):
                writer.write(record(thread, number))
        except ValueError as error:  # the writer was ended meanwhile
            failures.append(error)

    threads = [threading.Thread(target=write_until_closed, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    while writer.part_count < 2:
        time.sleep(0.01)  # let a few parts go up first
    getattr(writer, ending)()
    for thread in threads:
        thread.join()
    assert writer.closed
    assert failures, "some writes came after the ending"
    for failure in failures:
        assert str(failure).startswith(f"I/O operation on closed writer s3://{bucket}/k (")
    if ending == "close":
        records = parse(read_object(s3, bucket, "k"))  # whole records only
        assert len(records) == len(set(records))
        assert pending_uploads(s3, bucket) == []
    else:
        assert_no_trace(s3, bucket, "k")

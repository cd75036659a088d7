"""PartBuffer on its own: the bytes it hands out are the bytes it took, however it grew."""

from __future__ import annotations

import random

import pytest

from cloudpipe.buffer import GROW_ABOVE, GROW_LIMIT, PartBuffer


@pytest.mark.parametrize(
    "capacity",
    [5 * 2**20, GROW_ABOVE + 2**20],
    ids=["whole-capacity-past-the-limit", "keeps-growing"],
)
def test_a_buffer_gives_back_what_it_took_part_after_part(capacity: int) -> None:
    rng = random.Random(capacity)
    stream = rng.randbytes(2 * capacity + 12345)
    buffer = PartBuffer()
    parts, position = [], 0
    buffer.prepare(capacity)
    while position < len(stream):
        size = rng.choice([1, 4096, GROW_LIMIT - 3, 2**20 + 7])
        taken = buffer.fill(memoryview(stream[position : position + size]))
        position += taken
        if buffer.full:
            parts.append(bytes(buffer.contents()))
            buffer.clear()
    parts.append(bytes(buffer.contents()))
    assert b"".join(parts) == stream
    assert [len(p) for p in parts] == [capacity, capacity, 12345]

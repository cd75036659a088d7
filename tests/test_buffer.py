"""PartBuffer on its own: the bytes it hands out are the bytes it took, however it grew."""

from __future__ import annotations

import random
import subprocess
import sys
import zlib

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


@pytest.mark.parametrize("blocked", ["", "isal"], ids=["isal", "zlib-fallback"])
def test_a_part_crc32_is_zlibs_with_or_without_isal(blocked: str) -> None:
    """The CRC32 filled in as bytes are copied is zlib's, from ISA-L where the ``fast`` extra
    is installed and from zlib where it is not (a child process without ``isal``)."""
    program = (
        "import sys, random\n"
        f"if {blocked!r}: sys.modules[{blocked!r}] = None\n"
        "from cloudpipe.buffer import PartBuffer\n"
        "from cloudpipe.checksums import update_crc32\n"
        "data = random.Random(3).randbytes(3 * 2**20 + 5)\n"
        "buffer = PartBuffer(crc32=True)\n"
        "buffer.prepare(len(data))\n"
        "for start in range(0, len(data), 65531):\n"
        "    buffer.fill(memoryview(data)[start:start + 65531])\n"
        "print(update_crc32.__module__, buffer.crc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    module, crc = done.stdout.split()
    assert module == ("zlib" if blocked else "isal.isal_zlib")
    data = random.Random(3).randbytes(3 * 2**20 + 5)
    assert int(crc) == zlib.crc32(data)

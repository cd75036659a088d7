"""StoredParts: the compact record of an upload's parts gives back exactly what was stored."""

from __future__ import annotations

import base64
import hashlib
import random
import sys
import zlib
from typing import Any

from cloudpipe.parts import StoredParts


def crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_entries_come_back_exactly_and_the_crc32s_combine() -> None:
    chunks = [random.Random(n).randbytes(1000 + n) for n in range(1, 7)]
    entries: list[Any] = []
    for number, chunk in enumerate(chunks, start=1):
        entry: dict[str, Any] = {"PartNumber": number, "ChecksumCRC32": crc(chunk)}
        entry["ETag"] = f'"{hashlib.md5(chunk).hexdigest()}"'
        if number == 3:
            entry["ETag"] = '"not-an-md5-under-sse-kms"'
        if number == 5:
            entry["ChecksumSHA256"] = "c2hhMjU2"
        entries.append(entry)
    parts = StoredParts()
    for entry, chunk in zip(entries, chunks, strict=True):
        parts.add(entry, len(chunk))
    assert len(parts) == 6
    assert parts.entries() == entries
    assert parts.whole_crc32() == crc(b"".join(chunks))


def test_parts_without_crc32_have_no_whole_crc32() -> None:
    parts = StoredParts()
    assert parts.whole_crc32() is None
    parts.add({"PartNumber": 1, "ETag": '"' + "a" * 32 + '"'}, 10)  # type: ignore[typeddict-item]
    assert parts.entries() == [{"PartNumber": 1, "ETag": '"' + "a" * 32 + '"'}]
    assert parts.whole_crc32() is None


def test_ten_thousand_parts_take_well_under_half_a_megabyte() -> None:
    parts = StoredParts()
    for number in range(1, 10_001):
        etag = f'"{hashlib.md5(number.to_bytes(4, "big")).hexdigest()}"'
        parts.add({"PartNumber": number, "ETag": etag, "ChecksumCRC32": "AAAAAA=="}, 8 << 20)
    held = sum(
        sys.getsizeof(getattr(parts, name))
        for name in ("_etags", "_crcs", "_has_crc", "_sizes", "_whole")
    )
    assert held < 400_000  # dicts would take about 4 MB
    assert parts.entry(10_000)["PartNumber"] == 10_000

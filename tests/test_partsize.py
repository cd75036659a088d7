"""The part-size schedule: S3's limits, growth for unknown lengths, expected_size."""

from __future__ import annotations

from typing import Any

import pytest

import cloudpipe
from cloudpipe import partsize
from cloudpipe.partsize import GiB, MiB, PartSizeSchedule
from tests.conftest import PART, assert_no_trace

TiB = 2**40

pytestmark = pytest.mark.usefixtures("concurrency")


def test_default_schedule_reaches_past_5_tib_in_10000_parts() -> None:
    schedule = PartSizeSchedule.choose(8 * MiB, None)
    assert schedule.capacity() >= 5 * TiB
    assert schedule.capacity() == 8 * MiB * (1250 + 1000 * (2**9 - 2) + 750 * 2**9)  # 6.8 TiB
    assert schedule.max_parts == 10_000


def test_memory_stays_at_part_size_for_the_first_1250_parts() -> None:
    """An 8 GiB stream (1,024 parts of 8 MiB) keeps the memory of a 1 GiB one."""
    schedule = PartSizeSchedule.choose(8 * MiB, None)
    assert {schedule.size_of(n) for n in range(1, 1251)} == {8 * MiB}
    assert schedule.size_of(1251) == 16 * MiB
    assert schedule.size_of(2250) == 16 * MiB
    assert schedule.size_of(2251) == 32 * MiB
    assert schedule.size_of(10_000) == 4 * GiB
    sizes = [schedule.size_of(n) for n in range(1, 10_001)]
    assert sizes == sorted(sizes)


def test_growth_is_capped_at_5_gib() -> None:
    schedule = PartSizeSchedule.choose(2 * GiB, None)
    assert schedule.size_of(10_000) == 5 * GiB
    assert PartSizeSchedule.choose(5 * GiB, None).size_of(9_999) == 5 * GiB


def test_expected_size_fixes_the_part_size_up_front() -> None:
    small = PartSizeSchedule.choose(8 * MiB, 1 * GiB)
    assert (small.base, small.grows) == (8 * MiB, False)
    large = PartSizeSchedule.choose(8 * MiB, 1 * TiB)
    assert not large.grows
    assert large.base * 10_000 >= 1 * TiB
    assert large.base % MiB == 0
    assert large.base < 8 * MiB * 14  # not wastefully larger than needed
    assert PartSizeSchedule.choose(8 * MiB, 0).base == 8 * MiB


def test_part_past_the_limit_fails_and_aborts(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scaled down: with a limit of 2 parts, a third part is refused, never truncated."""
    monkeypatch.setattr(partsize, "MAX_PARTS", 2)
    ends: list[bool] = []
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, on_end=ends.append)
    writer.write(b"x" * 2 * PART)  # exactly the limit: still fine
    with pytest.raises(cloudpipe.UploadError, match="needs part 3 but S3 allows 2 parts") as e:
        writer.write(b"x")
    assert e.value.part_number == 3
    assert ends == [False]
    assert_no_trace(s3, bucket, "k")


def test_exactly_the_limit_completes(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partsize, "MAX_PARTS", 2)
    with cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART) as writer:
        writer.write(b"x" * (2 * PART))
    assert writer.part_count == 2

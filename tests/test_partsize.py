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


@pytest.mark.parametrize(
    ("endpoint", "policy"),
    [
        ("https://0123456789abcdef.r2.cloudflarestorage.com", partsize.R2),
        ("https://0123456789abcdef.eu.R2.cloudflarestorage.com/", partsize.R2),
        ("https://s3.fr-par.scw.cloud", partsize.SCALEWAY),
        ("https://s3.nl-ams.scw.cloud:443", partsize.SCALEWAY),
        ("https://s3.us-east-1.amazonaws.com", partsize.S3),
        ("http://127.0.0.1:9000", partsize.S3),
        (None, partsize.S3),
    ],
)
def test_store_policy_is_known_from_the_endpoint(endpoint: str | None, policy: Any) -> None:
    assert cloudpipe.PartPolicy.for_endpoint(endpoint) == policy


def test_r2_parts_never_grow_and_scaleway_grows_within_1000_parts() -> None:
    r2 = PartSizeSchedule.choose(8 * MiB, None, partsize.R2)
    assert {r2.size_of(n) for n in range(1, 10_001)} == {8 * MiB}  # R2: one size but the last
    assert r2.capacity() == 8 * MiB * 10_000
    scaleway = PartSizeSchedule.choose(8 * MiB, None, partsize.SCALEWAY)
    assert scaleway.max_parts == 1_000
    assert {scaleway.size_of(n) for n in range(1, 126)} == {8 * MiB}
    assert scaleway.size_of(126) == 16 * MiB
    assert scaleway.size_of(226) == 32 * MiB
    assert scaleway.capacity() >= 300 * GiB  # not the 7.8 GiB of 1,000 parts of 8 MiB
    with pytest.raises(ValueError, match="larger than Scaleway allows for one object"):
        PartSizeSchedule.choose(8 * MiB, 10 * TiB, partsize.SCALEWAY)


def test_writer_takes_the_policy_of_its_endpoint(tmp_path: Any) -> None:
    """No request needed: the policy is chosen from the endpoint's name, and the size cap is
    named when the writer is made, not at the last part."""
    import boto3

    scaleway = boto3.client(
        "s3",
        endpoint_url="https://s3.fr-par.scw.cloud",
        region_name="fr-par",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    with pytest.raises(ValueError, match="larger than Scaleway allows"):
        cloudpipe.S3MultipartWriter("b", "k", client=scaleway, expected_size=10 * TiB)
    with pytest.raises(TypeError, match=r"part_policy must be a cloudpipe\.PartPolicy"):
        cloudpipe.S3MultipartWriter("b", "k", client=scaleway, part_policy="r2")  # type: ignore[arg-type]


def test_uniform_policy_refuses_the_part_past_its_cap_before_sending_it(
    s3: Any, bucket: str
) -> None:
    """Scaled down: parts of one size, at most 2: the third part is refused when it would
    start, naming the cap, and the upload is aborted."""
    policy = cloudpipe.PartPolicy(uniform=True, max_parts=2, store="a two-part store")
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, part_policy=policy)
    writer.write(b"x" * 2 * PART)
    with pytest.raises(cloudpipe.UploadError) as caught:
        writer.write(b"x")
    message = str(caught.value)
    assert "needs part 3 but a two-part store allows 2 parts" in message
    assert f"{2 * PART} bytes at this part size" in message
    assert_no_trace(s3, bucket, "k")


def test_fewer_parts_grow_sooner(s3: Any, bucket: str) -> None:
    """Scaled down: a store of 16 parts grows after 2 parts, then every part."""
    policy = cloudpipe.PartPolicy(max_parts=16)
    data = b"y" * (PART + PART + 2 * PART + 7)
    sizes: list[int] = []
    with cloudpipe.S3MultipartWriter(
        bucket,
        "k",
        client=s3,
        part_size=PART,
        part_policy=policy,
        on_drained=lambda number, nbytes: sizes.append(nbytes),
    ) as writer:
        writer.write(data)
    assert sizes == [PART, PART, 2 * PART, 7]
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == len(data)

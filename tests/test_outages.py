"""Outages and stalls through the fault proxy: tries spaced to ride out an outage, the
user's AWS configuration deciding how many, and a deadline on every request."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, pending_uploads, read_object, stream
from tests.faultproxy import FaultProxy, Rule
from tests.servers import make_client

DATA = random.Random(41).randbytes(2 * PART + 321)


@pytest.mark.alone
@pytest.mark.client_timing
@pytest.mark.real_backoff
def test_default_tries_ride_out_a_five_second_outage(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)

    def outage_after_part_1(number: int, nbytes: int) -> None:
        if number == 1:
            proxy.outage(5.0)

    started = time.monotonic()
    stream(proxied, bucket, DATA, on_drained=outage_after_part_1)  # default max_attempts
    assert read_object(s3, bucket, "k") == DATA
    refused = proxy.requests("PUT", "partNumber=2")
    assert [entry.action for entry in refused] == ["outage", "outage", "forward"]
    first_retry = refused[1].at - refused[0].at
    assert 1.0 <= first_retry <= 1.5, first_retry  # about a second
    assert refused[2].at - refused[0].at >= 5.0  # the last try came after the outage
    assert time.monotonic() - started < 20


def test_aws_max_attempts_decides_when_the_caller_does_not(
    s3: Any,
    bucket: str,
    proxy: FaultProxy,
    proxied: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1", times=1000)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    with pytest.raises(cloudpipe.UploadError, match="part 1 failed after 5 attempts: SlowDown"):
        stream(proxied, bucket, DATA)
    assert len(proxy.requests("PUT", "partNumber=1")) == 5

    config = tmp_path / "config"
    config.write_text("[profile backups]\nmax_attempts = 2\n")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "backups")
    with pytest.raises(cloudpipe.UploadError, match="part 1 failed after 2 attempts"):
        stream(proxied, bucket, DATA, key="profile")
    assert len(proxy.requests("PUT", "partNumber=1")) == 5 + 2

    with pytest.raises(cloudpipe.UploadError, match="part 1 failed after 3 attempts"):
        stream(proxied, bucket, DATA, key="explicit", max_attempts=3)  # the caller's count wins
    assert len(proxy.requests("PUT", "partNumber=1")) == 5 + 2 + 3
    assert_no_trace(s3, bucket, "k")


@pytest.mark.client_timing
@pytest.mark.parametrize("size", [1000, PART + 10], ids=["put-object", "part"])
def test_a_trickling_answer_is_cut_off_and_retried(
    s3: Any, bucket: str, proxy: FaultProxy, size: int
) -> None:
    """One byte every 1.5 s never trips a 2 s read timeout: the request's deadline does."""
    client = make_client(proxy.endpoint_url, read_timeout=2, connect_timeout=2)
    proxy.add(Rule("trickle", method="PUT", seconds=1.5))
    started = time.monotonic()
    with cloudpipe.S3MultipartWriter(bucket, "k", client=client, part_size=PART) as writer:
        writer.write(DATA[:size])
    assert read_object(s3, bucket, "k") == DATA[:size]
    assert [entry.action for entry in proxy.requests("PUT")][:2] == ["trickle", "forward"]
    deadline = 4 + min(size, PART) / cloudpipe.retry.MIN_RATE  # the timeouts, plus the body's time
    assert time.monotonic() - started < deadline + 10


@pytest.mark.client_timing
def test_a_request_that_always_trickles_fails_naming_its_deadline(
    s3: Any, bucket: str, proxy: FaultProxy
) -> None:
    client = make_client(proxy.endpoint_url, read_timeout=2, connect_timeout=2)
    proxy.add(Rule("trickle", method="POST", path_contains="?uploads", seconds=1.5, times=10))
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=client, max_attempts=2)
    with pytest.raises(cloudpipe.UploadError) as caught:
        writer.write(DATA)
    assert str(caught.value).startswith(
        f"s3://{bucket}/k: CreateMultipartUpload failed after 2 attempts: "
        "cut off at its deadline of 4 s ("
    )
    assert writer.closed
    # The store did create both uploads, whose ids never arrived: the documented limit.
    for upload in pending_uploads(s3, bucket):
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])
    assert_no_trace(s3, bucket, "k")


@pytest.mark.client_timing
def test_a_completing_request_cut_off_after_the_store_acted_is_found_stored(
    s3: Any, bucket: str, proxy: FaultProxy
) -> None:
    """The PutObject reached the store, its answer trickles: cut off and then retried or
    not, the writer reports what the store holds, which is the object."""
    client = make_client(proxy.endpoint_url, read_timeout=2, connect_timeout=2)
    proxy.add(Rule("trickle", method="PUT", seconds=1.5, times=10))
    with cloudpipe.S3MultipartWriter(bucket, "k", client=client, max_attempts=1) as writer:
        writer.write(b"small")
    assert writer.etag == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert read_object(s3, bucket, "k") == b"small"

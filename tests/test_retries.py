"""Retries through faults injected on the wire by a proxy in front of the real server."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

import cloudpipe
from tests.conftest import PART, assert_no_trace, pending_uploads, read_object, stream
from tests.faultproxy import FaultProxy, Rule

DATA = random.Random(11).randbytes(2 * PART + 1000)

pytestmark = pytest.mark.usefixtures("concurrency")


def test_slowdown_on_a_part_is_retried_with_the_same_bytes(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=2", times=2)
    writer = stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    part2 = proxy.requests("PUT", "partNumber=2")
    assert [entry.action for entry in part2] == ["respond", "respond", "forward"]
    assert {entry.headers["content-length"] for entry in part2} == {str(PART)}
    assert writer.part_count == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (429, "TooManyRequests"),
        (400, "RequestTimeout"),
        (400, "BadDigest"),
    ],
)
def test_retryable_answers(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, status: int, code: str
) -> None:
    proxy.respond(status, code, method="PUT", path_contains="partNumber=1")
    stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert len(proxy.requests("PUT", "partNumber=1")) == 2


def test_lost_response_to_a_part_is_retried(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("drop_response", method="PUT", path_contains="partNumber=1"))
    stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA


def test_create_and_complete_are_retried(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(503, "SlowDown", method="POST", path_contains="?uploads")
    proxy.respond(500, "InternalError", method="POST", path_contains="uploadId=")
    stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert len(proxy.requests("POST")) == 4


def test_single_put_is_retried(s3: Any, bucket: str, proxy: FaultProxy, proxied: Any) -> None:
    proxy.respond(503, "SlowDown", method="PUT")
    with cloudpipe.S3MultipartWriter(bucket, "small", client=proxied, part_size=PART) as w:
        w.write(b"small object")
    assert read_object(s3, bucket, "small") == b"small object"
    assert len(proxy.requests("PUT")) == 2


def test_storm_longer_than_the_retries_fails_cleanly(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(
        503,
        "SlowDown",
        "Please reduce your request rate.",
        method="PUT",
        path_contains="partNumber=2",
        times=100,
    )
    errors: list[BaseException] = []
    with pytest.raises(cloudpipe.UploadError) as caught:
        stream(proxied, bucket, DATA, max_attempts=4, on_error=errors.append)
    error = caught.value
    assert str(error) == (
        f"s3://{bucket}/k: part 2 failed after 4 attempts: "
        "SlowDown: Please reduce your request rate."
    )
    assert (error.bucket, error.key, error.part_number) == (bucket, "k", 2)
    assert error.upload_id is not None
    assert isinstance(error.__cause__, ClientError)
    assert errors == [error]
    assert len(proxy.requests("PUT", "partNumber=2")) == 4
    assert len(proxy.requests("DELETE", f"uploadId={error.upload_id}")) == 1
    assert_no_trace(s3, bucket, "k")


def test_non_retryable_answer_fails_at_once(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(
        403, "AccessDenied", "Access Denied", method="POST", path_contains="uploadId=", times=100
    )
    with pytest.raises(
        cloudpipe.UploadError, match=r"CompleteMultipartUpload failed: AccessDenied"
    ):
        stream(proxied, bucket, DATA)
    assert len(proxy.requests("POST", "uploadId=")) == 1
    assert_no_trace(s3, bucket, "k")


def test_failed_abort_is_reported_with_the_failure(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "no", method="PUT", path_contains="partNumber=2")
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE")
    with pytest.raises(cloudpipe.UploadError) as caught:
        stream(proxied, bucket, DATA)
    error = caught.value
    assert error.aborted is False
    assert str(error) == (
        f"s3://{bucket}/k: part 2 failed: AccessDenied: no; and the abort failed too "
        f"(AccessDenied: no abort): upload {error.upload_id} stays stored and billed until "
        f"aborted, e.g. with: cloudpipe uploads s3://{bucket}/k --abort"
    )
    assert [u["UploadId"] for u in pending_uploads(s3, bucket)] == [error.upload_id]
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=error.upload_id)
    assert_no_trace(s3, bucket, "k")


def test_max_attempts_one_means_no_retry(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1")
    with pytest.raises(cloudpipe.UploadError, match="part 1 failed: SlowDown"):
        stream(proxied, bucket, DATA, max_attempts=1)
    assert_no_trace(s3, bucket, "k")

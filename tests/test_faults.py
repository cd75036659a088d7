"""Under faults a stream ends as the exact object or as no object, never a partial one.

Each scenario runs against every server, faults injected on the wire by tests/faultproxy.py.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, aws_env, pending_uploads, read_object, stream
from tests.faultproxy import FaultProxy, Rule
from tests.servers import make_client

DATA = random.Random(23).randbytes(2 * PART + 777)
COMMAND = [str(Path(sys.executable).with_name("cloudpipe"))]
COMPLETE = {"method": "POST", "path_contains": "uploadId="}
PART_2 = {"method": "PUT", "path_contains": "partNumber=2"}

pytestmark = pytest.mark.usefixtures("concurrency")


def error_document(code: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()


def test_reset_mid_upload_part_is_retried(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("reset", after_bytes=PART // 2, **PART_2))  # type: ignore[arg-type]
    stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert [e.action for e in proxy.requests(**PART_2)] == ["reset", "forward"]


def test_lost_complete_answer_is_retried(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("drop_response", **COMPLETE))  # type: ignore[arg-type]
    ends: list[bool] = []
    writer = stream(proxied, bucket, DATA, on_end=ends.append)
    assert read_object(s3, bucket, "k") == DATA
    assert ends == [True]
    assert writer.etag == s3.head_object(Bucket=bucket, Key="k")["ETag"]


def test_lost_complete_answer_then_no_such_upload_is_a_success(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """As AWS may answer a retried Complete: the first one worked, so the upload is gone."""
    proxy.add(Rule("drop_response", **COMPLETE))  # type: ignore[arg-type]
    proxy.add(Rule("respond", status=404, body=error_document("NoSuchUpload"), **COMPLETE))  # type: ignore[arg-type]
    ends: list[bool] = []
    writer = stream(proxied, bucket, DATA, on_end=ends.append)
    assert read_object(s3, bucket, "k") == DATA
    assert ends == [True]
    assert writer.etag == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert proxy.requests("DELETE") == []  # never aborted


def test_read_stall_is_retried(s3: Any, bucket: str, proxy: FaultProxy) -> None:
    client = make_client(proxy.endpoint_url, read_timeout=1, connect_timeout=1)
    proxy.add(Rule("stall", seconds=2.5, **PART_2))  # type: ignore[arg-type]
    stream(client, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert [e.action for e in proxy.requests(**PART_2)] == ["stall", "forward"]


def test_error_inside_a_200_complete_is_retried(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("respond", status=200, body=error_document("InternalError"), **COMPLETE))  # type: ignore[arg-type]
    stream(proxied, bucket, DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert [e.action for e in proxy.requests(**COMPLETE)] == ["respond", "forward"]


def test_error_inside_every_200_complete_fails_cleanly(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    body = error_document("InternalError")
    proxy.add(Rule("respond", status=200, body=body, times=10, **COMPLETE))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError, match="CompleteMultipartUpload failed after 3"):
        stream(proxied, bucket, DATA)
    assert_no_trace(s3, bucket, "k")


def test_no_such_upload_on_a_part_fails_cleanly(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("respond", status=404, body=error_document("NoSuchUpload"), **PART_2))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError, match="part 2 failed: NoSuchUpload") as caught:
        stream(proxied, bucket, DATA)
    assert caught.value.part_number == 2
    assert_no_trace(s3, bucket, "k")


def test_part_checksum_mismatch_is_a_failure(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A store that says it kept other bytes than were sent: the upload is aborted."""
    headers = {"ETag": '"0123456789abcdef0123456789abcdef"', "x-amz-checksum-crc32": "AAAAAA=="}
    proxy.add(Rule("respond", status=200, headers=headers, **PART_2))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError, match="part 2 failed its integrity check: S3 stored"):
        stream(proxied, bucket, DATA)
    assert_no_trace(s3, bucket, "k")


def test_part_md5_mismatch_is_a_failure(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    headers = {"ETag": '"0123456789abcdef0123456789abcdef"'}
    proxy.add(Rule("respond", status=200, headers=headers, **PART_2))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError, match="integrity check: S3 stored ETag"):
        stream(proxied, bucket, DATA, checksum="md5")
    assert_no_trace(s3, bucket, "k")


def test_object_etag_mismatch_is_a_failure(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    body = (
        b"<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
        b"<ETag>&quot;0123456789abcdef0123456789abcdef-3&quot;</ETag>"
        b"</CompleteMultipartUploadResult>"
    )
    proxy.add(Rule("respond", status=200, body=body, **COMPLETE))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError, match="CompleteMultipartUpload failed its integrity"):
        stream(proxied, bucket, DATA)
    assert_no_trace(s3, bucket, "k")


def test_object_crc32_mismatch_is_a_failure(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A store that reports another full-object CRC32 than the stream's: never a success."""
    digests = b"".join(hashlib.md5(DATA[i : i + PART]).digest() for i in range(0, len(DATA), PART))
    etag = f"&quot;{hashlib.md5(digests).hexdigest()}-3&quot;".encode()
    body = (
        b"<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>" + etag + b"</ETag>"
        b"<ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumType>FULL_OBJECT</ChecksumType>"
        b"</CompleteMultipartUploadResult>"
    )
    proxy.add(Rule("respond", status=200, body=body, **COMPLETE))  # type: ignore[arg-type]
    with pytest.raises(cloudpipe.UploadError) as caught:
        stream(proxied, bucket, DATA)
    whole = base64.b64encode(zlib.crc32(DATA).to_bytes(4, "big")).decode()
    assert f"the object's CRC32 is AAAAAA==, its parts make {whole}" in str(caught.value)
    assert_no_trace(s3, bucket, "k")


def test_complete_carries_the_whole_streams_crc32(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    stream(proxied, bucket, DATA)
    whole = base64.b64encode(zlib.crc32(DATA).to_bytes(4, "big")).decode()
    (create,) = proxy.requests("POST", "?uploads")
    assert create.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    (complete,) = proxy.requests("POST", "uploadId=")
    assert complete.headers["x-amz-checksum-crc32"] == whole
    assert complete.headers["x-amz-checksum-type"] == "FULL_OBJECT"


@pytest.mark.parametrize("mode", ["crc32", "md5", "none"])
def test_every_checksum_mode_stores_the_exact_object(s3: Any, bucket: str, mode: str) -> None:
    stream(s3, bucket, DATA, checksum=mode)
    assert read_object(s3, bucket, "k") == DATA
    with cloudpipe.S3MultipartWriter(bucket, "small", client=s3, checksum=mode) as writer:
        writer.write(b"small")
    assert read_object(s3, bucket, "small") == b"small"


def test_sigkill_leaves_a_pending_upload_that_uploads_lists_and_aborts(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    writer = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/killed", "--part-size", "5MiB"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert writer.stdin is not None
    writer.stdin.write(DATA[: PART + 10])
    writer.stdin.flush()
    deadline = time.monotonic() + 30
    while not pending_uploads(s3, bucket):
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.1)
    writer.kill()
    writer.wait()
    writer.stdin.close()
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")
    (pending,) = pending_uploads(s3, bucket)

    listed = subprocess.run(
        [*COMMAND, "uploads", f"s3://{bucket}", "--json"], env=env, capture_output=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert [u["upload_id"] for u in report["uploads"]] == [pending["UploadId"]]
    assert "1 upload(s) pending" in listed.stderr.decode()
    assert "lifecycle:" in listed.stderr.decode()

    recent = subprocess.run(
        [*COMMAND, "uploads", f"s3://{bucket}/killed", "--older-than", "1d"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert recent.returncode == 0
    # moto reports every upload as started in 2010; SeaweedFS gives the real time
    day_old = pending["Initiated"] < datetime.datetime.now(datetime.UTC) - datetime.timedelta(1)
    assert (pending["UploadId"].encode() in recent.stdout) == day_old

    aborted = subprocess.run(
        [*COMMAND, "uploads", f"s3://{bucket}/kil", "--abort"], env=env, capture_output=True
    )
    assert aborted.returncode == 0, aborted.stderr
    assert aborted.stdout.decode().startswith(f"aborted  s3://{bucket}/killed  ")
    assert "lifecycle:" not in aborted.stderr.decode()  # none left: nothing to warn of
    assert_no_trace(s3, bucket, "killed")

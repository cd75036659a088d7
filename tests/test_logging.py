"""Logs through logging.getLogger("cloudpipe"): INFO for an upload created, completed or
aborted; WARNING for each retry and for a failed abort; DEBUG per part; never a secret. The
command shows them with --verbose (and --debug)."""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, aws_env, pending_uploads, read_object
from tests.faultproxy import FaultProxy

DATA = random.Random(21).randbytes(2 * PART + 4321)
SSE_KEY = "0123456789abcdef0123456789abcdef"
SECRETS = [
    SSE_KEY,
    base64.b64encode(SSE_KEY.encode()).decode(),  # as botocore sends it
    base64.b64encode(hashlib.md5(SSE_KEY.encode()).digest()).decode(),  # its MD5 header
    "testing",  # the test servers' secret access key
]


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith("cloudpipe")]


def test_an_upload_with_a_retry_and_a_failed_abort_is_logged_without_secrets(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cloudpipe")
    proxy.respond(503, "SlowDown", "slow down", method="PUT", path_contains="partNumber=2")
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=10)
    with (
        pytest.raises(ZeroDivisionError),
        cloudpipe.S3MultipartWriter(
            bucket,
            "k",
            client=proxied,
            part_size=PART,
            extra_args={"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_KEY},
        ) as writer,
    ):
        writer.write(DATA)
        1 / 0  # noqa: B018
    seen = records(caplog)
    text = [f"{record.levelname} {record.getMessage()}" for record in seen]
    upload_id = writer.upload_id
    assert f"INFO s3://{bucket}/k: multipart upload {upload_id} created" in text
    retries = [line for line in text if line.startswith("WARNING") and "attempt 1 of 3" in line]
    assert len(retries) == 1, text
    assert "part 2 failed (attempt 1 of 3): SlowDown" in retries[0]
    assert "retrying in" in retries[0]
    parts = [line for line in text if line.startswith("DEBUG") and "stored:" in line]
    assert [line.split(": part ")[1].split(" ")[0] for line in parts] == ["1", "2"]
    assert f"{PART} bytes in" in parts[0]
    aborts = [line for line in text if line.startswith("WARNING") and "the abort failed" in line]
    assert len(aborts) == 1, text
    assert f"upload {upload_id} stays stored" in aborts[0]
    for record in seen:
        said = record.getMessage() + repr(record.args) + repr(record.__dict__)
        for secret in SECRETS:
            assert secret not in said, record.getMessage()
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_completed_and_aborted_uploads_are_logged_at_info(
    s3: Any, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cloudpipe")
    with cloudpipe.S3MultipartWriter(bucket, "done", client=s3, part_size=PART) as writer:
        writer.write(DATA)
    with cloudpipe.S3MultipartWriter(bucket, "small", client=s3, part_size=PART) as small:
        small.write(b"tiny")
    aborted = cloudpipe.S3MultipartWriter(bucket, "gone", client=s3, part_size=PART)
    aborted.write(DATA)
    aborted.abort()
    text = [record.getMessage() for record in records(caplog)]
    assert (
        f"s3://{bucket}/done: completed (upload {writer.upload_id}): {len(DATA)} bytes, "
        "3 parts, " in "\n".join(text)
    )
    assert any(
        line.startswith(f"s3://{bucket}/small: completed (one PutObject): 4 bytes") for line in text
    )
    assert any(
        line.startswith(f"s3://{bucket}/gone: upload {aborted.upload_id} aborted:") for line in text
    )
    assert not any(record.levelno < logging.INFO for record in records(caplog))
    assert pending_uploads(s3, bucket) == []


def test_the_library_prints_nothing_without_a_handler(
    server: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A retry is a WARNING record, but a program that configured no logging sees nothing:
    the library's NullHandler keeps Python's last-resort handler quiet."""
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1")
    program = (
        "import sys, cloudpipe\n"
        f"with cloudpipe.S3MultipartWriter({bucket!r}, 'k', part_size={PART}) as w:\n"
        f"    w.write(b'x' * {PART + 1})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=aws_env(proxy.endpoint_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(proxy.requests("PUT", "partNumber=1")) == 2  # the retry did happen
    assert done.stderr == ""


@pytest.mark.parametrize("flag", ["--verbose", "--debug"])
def test_the_command_shows_the_logs_with_verbose_and_debug(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, flag: str
) -> None:
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1")
    done = subprocess.run(
        [sys.executable, "-m", "cloudpipe", f"s3://{bucket}/k", "--part-size", "5MiB", flag],
        input=DATA,
        env=aws_env(proxy.endpoint_url, tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    warnings = [line for line in err.splitlines() if line.startswith("cloudpipe: WARNING: ")]
    assert len(warnings) == 1, err
    assert "part 1 failed (attempt 1 of " in warnings[0]  # the command tries 10 times
    assert "SlowDown" in warnings[0]
    assert f"cloudpipe: INFO: s3://{bucket}/k: completed (upload " in err
    assert ("cloudpipe: DEBUG: " in err) == (flag == "--debug")
    assert "botocore" not in err
    assert read_object(s3, bucket, "k") == DATA

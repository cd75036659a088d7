"""Outages and stalls through the fault proxy: tries spaced to ride out an outage, the
user's AWS configuration deciding how many, and a deadline on every request."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import (
    PART,
    assert_no_trace,
    aws_env,
    pending_uploads,
    read_object,
    stream,
)
from tests.faultproxy import FaultProxy, Rule
from tests.servers import make_client
from tests.test_cli import COMMAND

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
@pytest.mark.long_wait
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


# -- an endpoint that could not be reached: a mistake to report at once, not an outage to ride out

NEVER_ANSWERS = ("closed port", "no answer")


@contextlib.contextmanager
def unreachable(kind: str) -> Iterator[str]:
    """The URL of an endpoint that cannot be reached: a closed port (connections refused), or
    one that neither accepts nor refuses (a listening socket whose backlog is full, so that
    connections hang as they do to a firewalled or mistyped address)."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        if kind == "closed port":
            listener.close()
        else:
            listener.listen(0)
            for _ in range(3):  # fill the backlog: later connections get no answer at all
                filler = stack.enter_context(socket.socket())
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
            assert connect_hangs(listener.getsockname()), "the backlog did not fill"
        yield url


def connect_hangs(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=0.5).close()
    except TimeoutError:
        return True
    except OSError:
        return False
    return False


def startup_seconds(env: dict[str, str]) -> float:
    """How long the command takes to start and exit without sending anything."""
    started = time.monotonic()
    subprocess.run([*COMMAND, "--version"], env=env, capture_output=True, check=True)
    return time.monotonic() - started


@pytest.mark.alone
@pytest.mark.real_backoff
@pytest.mark.parametrize("kind", NEVER_ANSWERS)
def test_a_writer_whose_endpoint_never_answers_fails_within_seconds(kind: str) -> None:
    with unreachable(kind) as url:
        writer = cloudpipe.S3MultipartWriter("b", "k", client=make_client(url), max_attempts=10)
        started = time.monotonic()
        with pytest.raises(cloudpipe.EndpointUnreachableError) as caught:
            writer.start()
        took = time.monotonic() - started
    assert took < 5, took  # not the minute ten tries take to ride out an outage
    cause = "connection refused" if kind == "closed port" else "no answer within 3 s"
    assert f"{url} could not be reached ({cause};" in str(caught.value)
    assert isinstance(caught.value, ConnectionError)
    assert writer.ending.state is cloudpipe.State.ABORTED
    assert writer.upload_id is None


@pytest.mark.alone
@pytest.mark.parametrize("kind", NEVER_ANSWERS)
def test_the_command_names_an_endpoint_that_never_answers_and_where_it_came_from(
    kind: str, tmp_path: Path
) -> None:
    with unreachable(kind) as url:
        env = aws_env(url, tmp_path)  # AWS_ENDPOINT_URL
        startup = startup_seconds(env)
        started = time.monotonic()
        done = subprocess.run([*COMMAND, "s3://b/k"], input=b"x", env=env, capture_output=True)
        took = time.monotonic() - started - startup
        flagged = aws_env(None, tmp_path) | {"AWS_ENDPOINT_URL_S3": url}
        named = subprocess.run([*COMMAND, "s3://b/k"], input=b"", env=flagged, capture_output=True)
    assert took < 5, took
    assert done.returncode == 1
    line = done.stderr.decode()
    assert line.count("\n") == 1, line
    assert f"CreateMultipartUpload failed: {url} could not be reached (" in line
    assert line.endswith("check the endpoint (AWS_ENDPOINT_URL)\n"), line
    assert named.stderr.decode().endswith("check the endpoint (AWS_ENDPOINT_URL_S3)\n")


@pytest.mark.alone
@pytest.mark.real_backoff
def test_each_retry_shows_on_the_progress_line(tmp_path: Path) -> None:
    with unreachable("closed port") as url:
        done = subprocess.run(
            [*COMMAND, "s3://b/k", "--progress", "--endpoint-url", url],
            input=b"",
            env=aws_env(None, tmp_path),
            capture_output=True,
        )
    shown = done.stderr.decode()
    assert "(retrying CreateMultipartUpload in 1 s: connection refused, attempt 2 of 10)" in shown
    assert shown.endswith("check the endpoint (--endpoint-url)\n"), shown


@pytest.mark.alone
def test_ctrl_c_while_an_endpoint_does_not_answer_says_nothing_was_stored(
    tmp_path: Path,
) -> None:
    with unreachable("no answer") as url:
        running = subprocess.Popen(
            [*COMMAND, "s3://b/k", "--endpoint-url", url],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=aws_env(None, tmp_path),
        )
        time.sleep(startup_seconds(aws_env(None, tmp_path)) + 0.5)  # while it tries
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=30)
    assert running.returncode == 130
    assert stderr.decode() == "cloudpipe: interrupted by SIGINT: nothing was stored\n"

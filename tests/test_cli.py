"""The cloudpipe command, run as a real process against the real servers."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    PART,
    assert_no_trace,
    aws_env,
    pending_uploads,
    read_object,
    wait_until,
)
from tests.faultproxy import FaultProxy, Rule
from tests.servers import free_ports

COMMAND = [str(Path(sys.executable).with_name("cloudpipe"))]
DATA = random.Random(5).randbytes(2 * PART + 4321)


def run(
    args: list[str], env: dict[str, str], data: bytes = DATA, command: list[str] = COMMAND
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command + args, input=data, env=env, capture_output=True, timeout=120)


def one_line(stream: bytes) -> str:
    text = stream.decode()
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    return text.strip()


def verbose_summary(stream: bytes) -> str:
    """The summary line --verbose ends with, after the INFO logs of the upload."""
    *logs, last = stream.decode().splitlines()
    assert logs, "--verbose shows the upload's INFO logs"
    assert all(line.startswith("cloudpipe: INFO: ") for line in logs), logs
    assert "Traceback" not in last
    return last


def test_pipe_to_s3(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    args = [f"s3://{bucket}/in/data.bin", "--part-size", "5MiB", "--json", "--no-progress"]
    args += ["--verbose"]
    args += ["--content-type", "application/x-test", "--metadata", "a=1", "--metadata", "b=x=y"]
    done = run(args, aws_env(server.endpoint_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "in/data.bin") == DATA
    result = json.loads(done.stdout)
    head = s3.head_object(Bucket=bucket, Key="in/data.bin")
    assert result["bytes"] == len(DATA)
    assert result["parts"] == 3
    assert result["etag"] == head["ETag"]
    assert (result["bucket"], result["key"]) == (bucket, "in/data.bin")
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"a": "1", "b": "x=y"}
    summary = verbose_summary(done.stderr)
    assert summary.startswith(f"cloudpipe: s3://{bucket}/in/data.bin: 10.0 MiB")
    assert "in 3 parts" in summary
    assert head["ETag"] in summary


def test_progress_bar_and_quiet(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    args = [f"s3://{bucket}/p", "--part-size", "5MiB", "--progress", "--quiet"]
    args += ["--expected-size", str(len(DATA))]
    done = run(args, env)
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "parts=3" in err
    assert "100%" in err  # a total is known, so the bar shows a percentage and ETA
    assert "cloudpipe: s3://" not in err  # --quiet: no summary line
    assert done.stdout == b""
    assert read_object(s3, bucket, "p") == DATA


def test_input_file_and_python_m(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA[:1000])
    env = aws_env(server.endpoint_url, tmp_path)
    done = run(
        [f"s3://{bucket}/f", "--input", str(source), "--quiet"],
        env,
        data=b"",
        command=[sys.executable, "-m", "cloudpipe"],
    )
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "f") == DATA[:1000]


def test_version(tmp_path: Path) -> None:
    done = run(["--version"], aws_env(None, tmp_path))
    assert done.returncode == 0
    assert done.stdout.decode().startswith("cloudpipe ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["s3://bucket"], "expected an s3://BUCKET/KEY URL"),
        (["bucket/key"], "expected an s3://BUCKET/KEY URL"),
        (["s3://bucket/k", "--part-size", "12X"], "invalid size '12X'"),
        (
            ["s3://bucket/k", "--part-size", "8MB"],
            "ambiguous size '8MB': write 8MiB (8388608 bytes) or 8000000 (bytes)",
        ),
        (["s3://bucket/k", "--max-memory", "1gb"], "ambiguous size '1gb': write 1GiB"),
        (["s3://bucket/k", "--part", "8MiB"], "unrecognized arguments: --part 8MiB"),
        (["resume", "j", "--conc", "2"], "unrecognized arguments: --conc 2"),
        (["s3://bucket/k", "--part-size", "1MiB"], "--part-size 1MiB is too small: 5MiB to 5GiB"),
        (["s3://bucket/k", "--part-size", "6G"], "--part-size 6144MiB is too large: 5MiB to 5GiB"),
        (["s3://bucket/k", "--attempts", "0"], "--attempts 0 is too small: 1 or more"),
        (["s3://bucket/k", "--concurrency", "65"], "--concurrency 65 is out of range: 1 to 64"),
        (["s3://bucket/k", "--checksum", "sha1"], "argument --checksum: invalid choice: 'sha1'"),
        (["s3://bucket/k", "--extra-arg", "NoSuchMember=1"], "--extra-arg: unknown key"),
        (["s3://bucket/k", "--metadata", "who=Zoë"], "--metadata 'who': the value is not"),
        (["s3://bucket/k", "--tag", "novalue"], "invalid tag 'novalue'"),
        (
            ["s3://bucket/k", "--", "no-such-producer-here"],
            "cannot run 'no-such-producer-here': command not found",
        ),
        (["./file", "s3://bucket/k"], "the input is standard input ('-'), --input FILE or"),
        (["-", "s3://bucket/k", "--input", "f"], "'-' (standard input) and --input FILE both"),
        (["s3://bucket/k", "--metadata", "novalue"], "invalid metadata 'novalue'"),
        (["s3://bucket/k", "--input", "/nonexistent/file"], "cannot read --input"),
        (["s3://bucket/k", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["s3://bucket/k", "--profile", "missing"], "profile (missing) could not be found"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(args, aws_env("http://127.0.0.1:9", tmp_path))
    assert done.returncode == 2
    assert message in one_line(done.stderr)


def test_missing_bucket_exits_1(server: Any, tmp_path: Path) -> None:
    done = run(["s3://no-such-bucket-here/k"], aws_env(server.endpoint_url, tmp_path))
    assert done.returncode == 1
    assert "failed: NoSuchBucket" in one_line(done.stderr)


def test_access_denied_exits_1(s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.respond(403, "AccessDenied", "Access Denied", method="PUT", path_contains="partNumber=2")
    done = run([f"s3://{bucket}/k", "--part-size", "5MiB"], aws_env(proxy.endpoint_url, tmp_path))
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"cloudpipe: s3://{bucket}/k: part 2 failed: AccessDenied: Access Denied"
    )
    assert_no_trace(s3, bucket, "k")


def test_no_credentials_says_how_to_provide_them(server: Any, tmp_path: Path) -> None:
    env = aws_env(server.endpoint_url, tmp_path, credentials=False)
    done = run(["s3://bucket/k"], env, data=b"small")
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "no AWS credentials found" in line
    assert "AWS_ACCESS_KEY_ID" in line


def test_unreachable_endpoint_exits_1(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = aws_env(f"http://127.0.0.1:{port}", tmp_path)
    done = run(["s3://bucket/k", "--attempts", "2"], env, data=b"small")
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"CreateMultipartUpload failed: http://127.0.0.1:{port} could not be reached (" in line
    assert line.endswith("check the endpoint (AWS_ENDPOINT_URL)")


@pytest.mark.parametrize(
    ("data", "message"),
    [(DATA[: PART + 5], "ended after 5242885 bytes, short of"), (DATA, "longer than")],
    ids=["short", "long"],
)
def test_expected_size_mismatch_aborts(
    server: Any, s3: Any, bucket: str, tmp_path: Path, data: bytes, message: str
) -> None:
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--expected-size", str(2 * PART)]
    done = run(args, aws_env(server.endpoint_url, tmp_path), data=data)
    assert done.returncode == 1
    assert message in one_line(done.stderr)
    assert_no_trace(s3, bucket, "k")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_upload_aborts(
    server: Any, s3: Any, bucket: str, tmp_path: Path, signum: signal.Signals
) -> None:
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    assert process.stdin is not None
    process.stdin.write(DATA[: PART + 100])  # one part stored, the next one buffered
    process.stdin.flush()
    wait_until(lambda: pending_uploads(s3, bucket), "the upload's start")
    uploaded = s3.list_parts(
        Bucket=bucket, Key="k", UploadId=pending_uploads(s3, bucket)[0]["UploadId"]
    )
    assert len(uploaded.get("Parts", [])) <= 1
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)  # also closes stdin
    assert process.returncode == 130
    assert one_line(err) == f"cloudpipe: interrupted by {signum.name}: upload aborted"
    assert_no_trace(s3, bucket, "k")


@pytest.mark.parametrize(
    ("rule", "status", "message"),
    [
        ("stall", 0, "interrupted by SIGINT, but the object was already stored: s3://"),
        ("hold", 130, "interrupted by SIGINT: upload aborted"),
    ],
    ids=["store-committed", "store-never-saw-it"],
)
def test_interrupt_during_complete_says_what_the_store_holds(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, rule: str, status: int, message: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"last night's backup")
    proxy.add(Rule(rule, method="POST", path_contains="uploadId=", seconds=4))
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(proxy.endpoint_url, tmp_path),
    )
    assert process.stdin is not None
    process.stdin.write(DATA)
    process.stdin.close()
    wait_until(lambda: proxy.requests("POST", "uploadId="), "Complete", seconds=60)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert process.wait(timeout=60) == status, err
    assert message in one_line(err)
    time.sleep(4)  # a held Complete reaches the store now, too late to count
    stored = read_object(s3, bucket, "k")
    if status == 0:
        assert stored == DATA
        result = json.loads(out)
        assert result["interrupted"] == "SIGINT"
        assert result["etag"] == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    else:
        assert stored == b"last night's backup"
    assert pending_uploads(s3, bucket) == []


# -- the command as a backup tool (issue 9) -----------------------------------------------

OLD = b"last night's good backup"


def keep_old(s3: Any, bucket: str, key: str = "k") -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=OLD)


def test_producer_mode_stores_the_output_of_a_command_that_succeeds(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "dump.bin"
    source.write_bytes(DATA)
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--json", "--", "cat", str(source)]
    done = run(args, aws_env(server.endpoint_url, tmp_path), data=b"")
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA
    assert json.loads(done.stdout)["bytes"] == len(DATA)


@pytest.mark.parametrize(
    ("script", "how"),
    [("exit 3", "exited with status 3"), ("kill -KILL $$", "was killed by SIGKILL")],
    ids=["exit-3", "killed"],
)
def test_a_producer_that_fails_leaves_the_old_object(
    server: Any, s3: Any, bucket: str, tmp_path: Path, script: str, how: str
) -> None:
    """`(pg_dump; exit 3) | cloudpipe` would store the truncated dump; -- COMMAND does not."""
    keep_old(s3, bucket)
    producer = f"head -c {2 * PART + 10} /dev/zero; echo dying >&2; {script}"
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--", "sh", "-c", producer]
    done = run(args, aws_env(server.endpoint_url, tmp_path), data=b"")
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert lines[0] == "dying"  # the producer's standard error passes through
    assert lines[1:] == [f"cloudpipe: the producer \"sh -c '{producer}'\" {how}: upload aborted"]
    assert read_object(s3, bucket, "k") == OLD
    assert pending_uploads(s3, bucket) == []


def test_a_pipe_cannot_see_the_producers_failure(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """Why producer mode exists: in a pipeline, even with pipefail, the object is replaced."""
    keep_old(s3, bucket)
    shell = f"set -o pipefail; (head -c 1000 /dev/zero; exit 3) | {COMMAND[0]} s3://{bucket}/k"
    done = subprocess.run(
        ["bash", "-c", shell], env=aws_env(server.endpoint_url, tmp_path), capture_output=True
    )
    assert done.returncode == 3  # pipefail reports it, after the fact
    assert read_object(s3, bucket, "k") == bytes(1000)  # the good backup is gone


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_reach_the_producer(
    server: Any, s3: Any, bucket: str, tmp_path: Path, signum: signal.Signals
) -> None:
    keep_old(s3, bucket)
    marker = tmp_path / "producer-got"
    producer = (
        f"trap 'echo $? > {marker}; exit 143' TERM; trap 'echo INT > {marker}; exit 130' INT; "
        f"head -c {PART + 10} /dev/zero; while :; do sleep 0.1; done"
    )
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB", "--", "sh", "-c", producer],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    wait_until(
        lambda: (
            pending_uploads(s3, bucket)
            and s3.list_parts(
                Bucket=bucket, Key="k", UploadId=pending_uploads(s3, bucket)[0]["UploadId"]
            ).get("Parts")
        ),
        "a stored part",
    )
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert one_line(err) == f"cloudpipe: interrupted by {signum.name}: upload aborted"
    assert marker.exists(), "the producer never heard of the signal"
    assert read_object(s3, bucket, "k") == OLD
    assert pending_uploads(s3, bucket) == []


def test_no_clobber_refuses_an_existing_key(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    keep_old(s3, bucket)
    env = aws_env(server.endpoint_url, tmp_path)
    done = run([f"s3://{bucket}/k", "--no-clobber", "--json"], env)
    assert done.returncode == 1
    assert one_line(done.stderr) == (
        f"cloudpipe: s3://{bucket}/k exists already (--no-clobber): left untouched"
    )
    assert json.loads(done.stdout)["error"].endswith("(--no-clobber): left untouched")
    assert read_object(s3, bucket, "k") == OLD
    assert pending_uploads(s3, bucket) == []
    fresh = run([f"s3://{bucket}/new", "--no-clobber"], env)
    assert fresh.returncode == 0, fresh.stderr
    assert read_object(s3, bucket, "new") == DATA


def test_no_clobber_is_atomic_on_the_store(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The key appears while the stream runs (after the up-front check): the store's
    If-None-Match refuses the Complete, and the object that appeared stays."""
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB", "--no-clobber"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    assert process.stdin is not None
    process.stdin.write(DATA[:PART])
    process.stdin.flush()
    wait_until(lambda: pending_uploads(s3, bucket), "the upload's start")
    keep_old(s3, bucket)  # someone else writes the key meanwhile
    _, err = process.communicate(DATA[PART:], timeout=60)
    if server.name == "ceph" and process.returncode == 0:
        pytest.xfail("Ceph 16 ignores If-None-Match on CompleteMultipartUpload")
    assert process.returncode == 1
    assert (
        one_line(err) == f"cloudpipe: s3://{bucket}/k exists already (--no-clobber): left untouched"
    )
    assert read_object(s3, bucket, "k") == OLD
    assert pending_uploads(s3, bucket) == []


@pytest.mark.client_timing
@pytest.mark.real_backoff
@pytest.mark.long_wait
def test_default_attempts_ride_out_a_minute_long_outage(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(proxy.endpoint_url, tmp_path),
    )
    assert process.stdin is not None
    process.stdin.write(DATA[:PART])  # part 1 goes up
    process.stdin.flush()
    wait_until(lambda: proxy.requests("PUT", "partNumber=1"), "part 1")
    time.sleep(0.5)
    proxy.outage(60.0)
    _, err = process.communicate(DATA[PART:], timeout=240)
    assert process.returncode == 0, err
    assert read_object(s3, bucket, "k") == DATA
    tries = proxy.requests("PUT", "partNumber=2")
    assert tries[-1].action == "forward"
    assert tries[-1].at - tries[0].at >= 60
    assert len(tries) <= 10


def test_aws_max_attempts_decides_without_attempts(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=1", times=100)
    env = aws_env(proxy.endpoint_url, tmp_path) | {"AWS_MAX_ATTEMPTS": "2"}
    done = run([f"s3://{bucket}/k", "--part-size", "5MiB"], env)
    assert done.returncode == 1
    assert "part 1 failed after 2 attempts: SlowDown" in one_line(done.stderr)
    assert len(proxy.requests("PUT", "partNumber=1")) == 2


def fails_before_reading(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run the command with an input that never comes; how fast it failed, and its line."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*COMMAND, *args], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        _, err = process.communicate(timeout=30)  # stdin stays open and empty until the end
    finally:
        process.kill()
    assert process.returncode == 1
    return time.monotonic() - started, one_line(err)


@pytest.mark.alone
def test_a_wrong_bucket_fails_within_two_seconds(server: Any, tmp_path: Path) -> None:
    seconds, line = fails_before_reading(
        ["s3://no-such-bucket-here/k"], aws_env(server.endpoint_url, tmp_path)
    )
    assert "CreateMultipartUpload failed: NoSuchBucket" in line
    assert seconds < 2


@pytest.mark.alone
def test_missing_write_permission_fails_within_two_seconds(
    bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.respond(403, "AccessDenied", "Access Denied", method="POST", times=5)
    seconds, line = fails_before_reading(
        [f"s3://{bucket}/k"], aws_env(proxy.endpoint_url, tmp_path)
    )
    assert (
        line
        == f"cloudpipe: s3://{bucket}/k: CreateMultipartUpload failed: AccessDenied: Access Denied"
    )
    assert seconds < 2
    assert [e.method for e in proxy.requests()] == ["POST"]  # no HeadBucket, no listing


@pytest.mark.alone
def test_bad_credentials_fail_within_two_seconds(server: Any, bucket: str, tmp_path: Path) -> None:
    if server.name == "moto":
        pytest.skip("moto's server accepts any credentials")
    env = aws_env(server.endpoint_url, tmp_path) | {"AWS_SECRET_ACCESS_KEY": "wrong"}
    seconds, line = fails_before_reading([f"s3://{bucket}/k"], env)
    assert "CreateMultipartUpload failed: " in line
    assert seconds < 2


def test_object_options(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--concurrency", "3", "--checksum", "md5"]
    args += ["--tag", "team=data", "--tag", "kind=nightly dump", "--acl", "private"]
    args += ["--cache-control", "no-store", "--content-encoding", "identity"]
    args += ["--content-disposition", "attachment; filename=db.sql"]
    args += ["--extra-arg", "ContentLanguage=fr", "--extra-arg", 'Metadata={"origin": "cron"}']
    done = run(args, aws_env(proxy.endpoint_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["CacheControl"] == "no-store"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentDisposition"] == "attachment; filename=db.sql"
    assert head["ContentLanguage"] == "fr"
    assert head["Metadata"] == {"origin": "cron"}
    tags = s3.get_object_tagging(Bucket=bucket, Key="k").get("TagSet", [])
    if server.name != "ceph":  # Ceph 16 drops Tagging on CreateMultipartUpload (test_extra_args)
        assert sorted((t["Key"], t["Value"]) for t in tags) == [
            ("kind", "nightly dump"),
            ("team", "data"),
        ]
    parts = proxy.requests("PUT", "partNumber=")
    assert len(parts) == 3
    assert all("content-md5" in entry.headers for entry in parts)


@pytest.mark.alone
def test_option_errors_come_before_any_input(server: Any, tmp_path: Path) -> None:
    """A bad --extra-arg is refused at once, not after the input was read."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*COMMAND, "s3://b/k", "--extra-arg", "ContentType=5"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    try:
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 2
    assert one_line(err).startswith(
        "cloudpipe: --extra-arg: Invalid type for parameter ContentType, value: 5"
    )
    assert time.monotonic() - started < 5


def test_a_failed_abort_is_never_hidden(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=20)
    done = run(
        [f"s3://{bucket}/k", "--part-size", "5MiB", "--json"], aws_env(proxy.endpoint_url, tmp_path)
    )
    assert done.returncode == 1
    line = one_line(done.stderr)
    (upload,) = pending_uploads(s3, bucket)
    assert line.startswith(f"cloudpipe: s3://{bucket}/k: part 2 failed: AccessDenied: denied; ")
    assert f"upload {upload['UploadId']} stays stored" in line
    assert f"cloudpipe uploads s3://{bucket}/k --abort" in line
    assert json.loads(done.stdout)["aborted"] is False
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])


def test_dash_means_standard_input(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    done = run(["-", f"s3://{bucket}/k"], aws_env(server.endpoint_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA


def test_closed_standard_input_is_one_line(server: Any, bucket: str, tmp_path: Path) -> None:
    done = subprocess.run(
        f"{COMMAND[0]} s3://{bucket}/k <&-",
        shell=True,
        env=aws_env(server.endpoint_url, tmp_path),
        capture_output=True,
    )
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        "cloudpipe: standard input is closed: pipe data in, or use --input FILE or -- COMMAND"
    )


def test_help_shows_subcommands_and_examples(tmp_path: Path) -> None:
    done = run(["--help"], aws_env(None, tmp_path))
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "cloudpipe uploads s3://BUCKET" in text
    examples = text[text.index("examples:") :].splitlines()
    assert any(" | cloudpipe s3://" in line for line in examples)  # a pipe
    assert any(line.strip().startswith("cloudpipe ") and " -- " in line for line in examples)
    assert "[-- COMMAND [ARG...]]" in text


def test_progress_bar_counts_in_binary_units_from_the_start(
    server: Any, bucket: str, tmp_path: Path
) -> None:
    done = run(
        [f"s3://{bucket}/k", "--part-size", "5MiB", "--progress"],
        aws_env(server.endpoint_url, tmp_path),
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert f"s3://{bucket}/k: 0 B, 0 B/s, parts=0" in err
    assert "10.0 MiB" in err
    assert re.search(r"\d(iB|kB|MB)", err) is None  # no 0.00iB, no decimal kB for KiB


def test_quiet_on_success_when_not_a_terminal(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    done = run([f"s3://{bucket}/k"], env)
    assert done.returncode == 0
    assert done.stderr == b""  # cron mails nothing
    assert done.stdout == b""
    verbose = run([f"s3://{bucket}/k2", "--verbose"], env)
    assert verbose_summary(verbose.stderr).startswith(f"cloudpipe: s3://{bucket}/k2: ")
    failed = run(["s3://no-such-bucket-here/k"], env)
    assert "NoSuchBucket" in one_line(failed.stderr)  # errors always print


def test_json_on_failure(server: Any, tmp_path: Path) -> None:
    done = run(["s3://no-such-bucket-here/k", "--json"], aws_env(server.endpoint_url, tmp_path))
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert "NoSuchBucket" in result["error"]
    assert result["aborted"] is True


def test_an_empty_input_makes_an_empty_object(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The upload is created before any input; an input that turns out empty still completes."""
    done = run([f"s3://{bucket}/empty", "--json"], aws_env(server.endpoint_url, tmp_path), b"")
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "empty") == b""
    assert json.loads(done.stdout)["bytes"] == 0
    assert pending_uploads(s3, bucket) == []


def test_the_demo_backs_up_in_producer_mode_and_survives_a_failing_producer() -> None:
    """`make demo`, on a smaller log: it checks its own results and exits 0 only if all held."""
    demo = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
    done = subprocess.run(
        [sys.executable, str(demo)],
        env=dict(os.environ, CLOUDPIPE_DEMO_LOG_MIB="6"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-- tar czf - project/ access.log" in done.stdout
    assert "the failed run stored nothing: the verified backup is untouched" in done.stdout
    assert "exited with status 2: upload aborted" in done.stderr


def test_a_producers_command_is_shown_once_quoted_and_short(
    server: Any, bucket: str, tmp_path: Path
) -> None:
    """A script with quotes in it is shown as the shell would take it, not re-escaped."""
    script = "echo 'it'\"'\"'s' >/dev/null; exit 3 " + "#" * 200
    args = [f"s3://{bucket}/k", "--", "sh", "-c", script]
    done = run(args, aws_env(server.endpoint_url, tmp_path), data=b"")
    assert done.returncode == 1
    line = one_line(done.stderr)
    shown = line.split("the producer ", 1)[1].split(" exited with status 3")[0]
    assert shown.startswith('"sh -c ')
    assert shown.endswith('..."')  # cut: the whole script is 200 characters longer
    assert len(shown) == 82  # 80 characters, and its quotes
    assert "\\" not in shown  # no quote escaped for a second time

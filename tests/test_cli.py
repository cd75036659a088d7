"""The cloudpipe command, run as a real process against the real servers."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PART, assert_no_trace, aws_env, pending_uploads, read_object
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


def test_pipe_to_s3(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    args = [f"s3://{bucket}/in/data.bin", "--part-size", "5MiB", "--json", "--no-progress"]
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
    summary = one_line(done.stderr)
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
        (["s3://bucket/k", "--part-size", "1MiB"], "part_size=1048576 is out of range"),
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
    assert "PutObject failed after 2 attempts: EndpointConnectionError" in line


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
    deadline = time.monotonic() + 30
    while not pending_uploads(s3, bucket):
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.1)
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
    deadline = time.monotonic() + 60
    while not proxy.requests("POST", "uploadId="):
        assert time.monotonic() < deadline, "Complete was never sent"
        time.sleep(0.02)
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

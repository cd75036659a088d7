"""The writer in real processes: fork, interpreter exit, and interrupts during completion.

Each test runs tests/writer_process.py (or the command) as a child process against a real
server, then checks what the server holds against what the child reported.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import writer_process as program
from tests.conftest import assert_no_trace, aws_env, pending_uploads, read_object
from tests.faultproxy import FaultProxy, Rule

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = pytest.mark.parametrize("concurrency", [1, 3], ids=["sync", "concurrency3"])


def run(
    scenario: str, bucket: str, key: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.writer_process", scenario, bucket, key, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def said(output: str, label: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(label + ": ")]


def quiet(stderr: str) -> None:
    """Nothing of the kind a user would have to puzzle over."""
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr


@CONCURRENCY
@pytest.mark.parametrize("scenario", ["fork", "multiprocessing-fork"])
def test_forked_child_sends_nothing_and_parent_completes(
    server: Any, s3: Any, bucket: str, tmp_path: Path, scenario: str, concurrency: int
) -> None:
    proxy = FaultProxy(server.endpoint_url)
    try:
        done = run(scenario, bucket, "k", aws_env(proxy.endpoint_url, tmp_path), str(concurrency))
        assert done.returncode == 0, done.stderr
        quiet(done.stderr)
        assert said(done.stdout, "child exit status") == ["0"]
        refusals = said(done.stdout, "child refused")
        assert refusals, done.stdout
        for refusal in refusals:
            assert f"s3://{bucket}/k: " in refusal
            assert "in a forked child: the writer belongs to process" in refusal
        assert read_object(s3, bucket, "k") == program.PARENT + program.PARENT_TAIL
        assert said(done.stdout, "parent etag") == [s3.head_object(Bucket=bucket, Key="k")["ETag"]]
        ends = [line.split(": ")[1] for line in done.stdout.splitlines() if line.startswith("on_")]
        assert ends == ["True"], done.stdout  # the parent's only: the child's copy ends silently
        # the child's bytes never went out: every part on the wire is the parent's
        sizes = sorted(int(e.headers["content-length"]) for e in proxy.requests("PUT", "partNum"))
        assert sizes == [len(program.PARENT) - program.PART + 3000, program.PART]
    finally:
        proxy.close()
    assert pending_uploads(s3, bucket) == []


@CONCURRENCY
def test_forked_child_whose_with_block_fails_aborts_nothing(
    server: Any, s3: Any, bucket: str, tmp_path: Path, concurrency: int
) -> None:
    done = run(
        "fork-exception", bucket, "k", aws_env(server.endpoint_url, tmp_path), str(concurrency)
    )
    assert done.returncode == 0, done.stderr
    quiet(done.stderr)
    assert read_object(s3, bucket, "k") == program.PARENT + program.PARENT_TAIL
    assert pending_uploads(s3, bucket) == []


@CONCURRENCY
@pytest.mark.parametrize("scenario", ["exit-binary", "exit-text"])
def test_writer_open_at_exit_is_aborted(
    server: Any, s3: Any, bucket: str, tmp_path: Path, scenario: str, concurrency: int
) -> None:
    env = aws_env(server.endpoint_url, tmp_path) | {"PYTHONWARNINGS": "always::ResourceWarning"}
    done = run(scenario, bucket, "k", env, str(concurrency))
    assert done.returncode == 0, done.stderr
    quiet(done.stderr)
    (upload_id,) = said(done.stdout, "left open")
    assert upload_id != "before any request"  # a part was stored, and billed until aborted
    assert f"s3://{bucket}/k was still open at interpreter exit: its upload was aborted" in (
        done.stderr
    )
    assert_no_trace(s3, bucket, "k")


@CONCURRENCY
def test_asyncio_writer_open_at_exit_is_aborted(
    server: Any, s3: Any, bucket: str, tmp_path: Path, concurrency: int
) -> None:
    """Its loop is gone by then: the plain callback still runs, the coroutine one cannot."""
    env = aws_env(server.endpoint_url, tmp_path) | {"PYTHONWARNINGS": "always::ResourceWarning"}
    done = run("exit-async", bucket, "k", env, str(concurrency))
    assert done.returncode == 0, done.stderr
    quiet(done.stderr)
    (upload_id,) = said(done.stdout, "left open")
    assert upload_id != "before any request"
    assert f"s3://{bucket}/k was still open at interpreter exit: its upload was aborted" in (
        done.stderr
    )
    assert said(done.stdout, "on_end") == ["False"]
    assert said(done.stdout, "async on_end") == []
    assert_no_trace(s3, bucket, "k")


PROGRAM = [sys.executable, "-m", "tests.writer_process"]


@CONCURRENCY
def test_ctrl_c_in_asyncio_run_aborts_before_the_program_ends(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, concurrency: int
) -> None:
    """The part on its way is let finish (3 s here), then the upload is aborted: its thread
    cannot be interrupted, and an abort before it landed could leave the part stored."""
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=2", seconds=3))
    child = subprocess.Popen(
        [*PROGRAM, "interrupt-async", bucket, "k", str(concurrency)],
        env=aws_env(proxy.endpoint_url, tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    interrupt_while(proxy, child, "PUT", "partNumber=2")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    quiet(err)
    assert said(out, "interrupted") == ["KeyboardInterrupt"]
    assert said(out, "on_end") == ["False"]
    assert_no_trace(s3, bucket, "k")


def test_failed_abort_at_exit_says_what_is_left(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=10)
    done = run("exit-binary", bucket, "k", aws_env(proxy.endpoint_url, tmp_path))
    assert done.returncode == 0
    (upload_id,) = said(done.stdout, "left open")
    warning = [line for line in done.stderr.splitlines() if "RuntimeWarning: s3://" in line]
    assert len(warning) == 1, done.stderr
    assert (
        f"s3://{bucket}/k was still open at interpreter exit, and its abort failed ("
        in (warning[0])
    )
    assert f"upload {upload_id} stays stored" in warning[0]
    assert [u["UploadId"] for u in pending_uploads(s3, bucket)] == [upload_id]
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def interrupt_while(
    proxy: FaultProxy, child: subprocess.Popen[str], method: str, path_contains: str
) -> None:
    """SIGINT ``child`` once its request (``method``, ``path_contains``) reached the proxy."""
    deadline = time.monotonic() + 60
    while not proxy.requests(method, path_contains):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the request never came"
        time.sleep(0.02)
    time.sleep(0.3)  # the proxy has forwarded it and holds the answer
    child.send_signal(signal.SIGINT)


def spawn(scenario: str, bucket: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.writer_process", scenario, bucket, "k"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("size", "method", "path"),
    [(2 * program.PART + 99, "POST", "uploadId="), (1000, "PUT", "/k")],
    ids=["complete", "put-object"],
)
def test_interrupt_after_the_store_committed_reports_completed(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, size: int, method: str, path: str
) -> None:
    """The completing request reached the store, which committed; the answer is held up and
    the process is interrupted: the writer must say completed, as the store does."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"the old object")
    proxy.add(Rule("stall", method=method, path_contains=path, seconds=30))
    env = aws_env(proxy.endpoint_url, tmp_path) | {"CLOUDPIPE_TEST_SIZE": str(size)}
    child = spawn("close", bucket, env)
    interrupt_while(proxy, child, method, path)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert read_object(s3, bucket, "k") == b"z" * size
    assert said(out, "interrupted") == ["KeyboardInterrupt"]
    assert said(out, "closed") == ["True"]
    assert said(out, "etag") == [s3.head_object(Bucket=bucket, Key="k")["ETag"]]
    ends = [line.split(": ")[1] for line in out.splitlines() if line.startswith("on_end")]
    assert ends == ["True"]
    assert pending_uploads(s3, bucket) == []


def test_interrupt_before_the_store_committed_reports_aborted(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Complete is held before it reaches the store: interrupted, the writer aborts, and the
    late Complete can no longer replace the old object."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"the old object")
    proxy.add(Rule("hold", method="POST", path_contains="uploadId=", seconds=3))
    child = spawn("close", bucket, aws_env(proxy.endpoint_url, tmp_path))
    interrupt_while(proxy, child, "POST", "uploadId=")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert said(out, "interrupted") == ["KeyboardInterrupt"]
    ends = [line.split(": ")[1] for line in out.splitlines() if line.startswith("on_end")]
    assert ends == ["False"]
    assert said(out, "etag") == ["None"]
    time.sleep(3.5)  # the held Complete goes through now, too late
    assert read_object(s3, bucket, "k") == b"the old object"
    assert pending_uploads(s3, bucket) == []

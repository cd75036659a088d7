"""Every report says what the store holds (issue 18): the writer's ending is one recorded
state, and the library's errors, ``repr``, the command's line, JSON and exit status all
follow it, at the edges where they used to guess: failed resumes, refused creates with a
journal, interrupts while aborting or creating, a journal that goes away or cannot be
written, a producer that fails during a resume, SIGHUP, two Ctrl-Cs, memory budgets.

Everything runs against the suite's real servers; faults come through the fault proxy,
signals and file-size limits through real child processes.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
import cloudpipe.buffer
from cloudpipe import State
from tests.conftest import (
    PART,
    assert_no_trace,
    aws_env,
    object_exists,
    pending_uploads,
    read_object,
    wait_until,
)
from tests.faultproxy import FaultProxy, Rule

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [str(Path(sys.executable).with_name("cloudpipe"))]
DATA = random.Random(18).randbytes(2 * PART + 4321)


def command(
    args: list[str], env: dict[str, str], data: bytes = DATA, **popen: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        COMMAND + args, input=data, env=env, capture_output=True, timeout=120, **popen
    )


def line_of(stderr: bytes) -> str:
    """The command's one line on standard error (a failure is one line, never a traceback)."""
    text = stderr.decode()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("cloudpipe: ")]
    assert len(lines) == 1, text
    return lines[0]


def kept_upload(bucket: str, proxy: FaultProxy, tmp_path: Path, *args: str) -> Path:
    """A ``cloudpipe --journal`` run whose part 2 fails for good: its upload is kept."""
    journal = tmp_path / "j"
    proxy.respond(403, "AccessDenied", "no", method="PUT", path_contains="partNumber=2")
    run = ["--journal", str(journal), "--part-size", "5MiB", *args, f"s3://{bucket}/k"]
    failed = command(run, aws_env(proxy.endpoint_url, tmp_path))
    assert failed.returncode == 1, failed.stderr
    assert "the upload is kept" in line_of(failed.stderr)
    return journal


# -- 1. a failed resume leaves the upload as it was, and says so ---------------------------


def test_resume_whose_list_parts_is_denied_says_the_upload_is_kept(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal = kept_upload(bucket, proxy, tmp_path)
    proxy.respond(403, "AccessDenied", "no listing", method="GET", path_contains="uploadId=")
    done = command(["resume", str(journal), "--json"], aws_env(proxy.endpoint_url, tmp_path))
    assert done.returncode == 1
    line = line_of(done.stderr)
    assert "ListParts failed: AccessDenied" in line
    assert f"the upload is kept: resume from journal {journal}" in line
    assert "aborted" not in line
    result = json.loads(done.stdout)
    assert (result["aborted"], result["state"], result["journal"]) == (False, "kept", str(journal))
    assert len(pending_uploads(s3, bucket)) == 1  # what the report says
    assert journal.exists()


def read_only_filesystems() -> bool:
    """Whether this machine lets the suite mount a read-only view of a folder (a private
    mount namespace: nothing outside the child process sees it)."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not read_only_filesystems(), reason="no mount namespaces here")
def test_resume_of_a_journal_it_cannot_write_says_the_upload_is_kept(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal = kept_upload(bucket, proxy, tmp_path)
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(journal, folder / "j")
    readonly = folder / "j"
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            str(folder),
            *COMMAND,
            "resume",
            str(readonly),
            "--json",
        ],
        env=aws_env(proxy.endpoint_url, tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    line = line_of(done.stderr)
    assert f"cannot write journal {readonly}: Read-only file system" in line
    assert "the upload is kept" in line
    result = json.loads(done.stdout)
    assert (result["aborted"], result["state"]) == (False, "kept")
    assert len(pending_uploads(s3, bucket)) == 1


# -- 2. nothing stored: nothing kept, no journal left behind --------------------------------


def test_refused_create_with_a_journal_keeps_nothing_and_leaves_no_journal(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    proxy.respond(403, "AccessDenied", "no create", method="POST", path_contains="uploads")
    args = ["--journal", str(journal), "--part-size", "5MiB", "--json", f"s3://{bucket}/k"]
    refused = command(args, aws_env(proxy.endpoint_url, tmp_path))
    assert refused.returncode == 1
    line = line_of(refused.stderr)
    assert "CreateMultipartUpload failed: AccessDenied" in line
    assert "kept" not in line
    result = json.loads(refused.stdout)
    assert (result["aborted"], result["state"], result["upload_id"]) == (True, "aborted", None)
    assert not journal.exists()
    again = command(args, aws_env(proxy.endpoint_url, tmp_path))  # the same command works
    assert again.returncode == 0, again.stderr
    assert read_object(s3, bucket, "k") == DATA


def test_refused_single_put_with_a_journal_keeps_nothing(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    proxy.respond(403, "AccessDenied", "no put", method="PUT", path_contains=f"/{bucket}/k")
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, journal=journal)
    writer.write(b"short")
    with pytest.raises(cloudpipe.UploadError) as failed:
        writer.close()
    assert failed.value.ending is not None
    assert failed.value.ending.state is State.ABORTED
    assert failed.value.aborted
    assert failed.value.journal is None
    assert "kept" not in str(failed.value)
    assert not journal.exists()
    assert_no_trace(s3, bucket, "k")


# -- 3, 4, 12. signals: while aborting, while creating, SIGHUP --------------------------------


def test_ctrl_c_while_the_abort_is_retried_says_the_upload_is_pending(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    proxy.respond(503, "ServiceUnavailable", "down", method="DELETE", times=50)
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--attempts", "10", "--json"]
    source = tmp_path / "data.bin"
    source.write_bytes(DATA)
    child = subprocess.Popen(
        [*COMMAND, *args, "--concurrency", "1", "--input", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(proxy.endpoint_url, tmp_path),
    )
    wait_until(lambda: proxy.requests("DELETE"), "the first abort", seconds=60)
    child.send_signal(signal.SIGINT)  # during the abort's back-off
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130
    (upload,) = pending_uploads(s3, bucket)
    line = line_of(err)
    assert line.startswith("cloudpipe: interrupted by SIGINT; the abort failed (")
    assert f"upload {upload['UploadId']} stays stored" in line
    result = json.loads(out)
    assert (result["aborted"], result["state"]) == (False, "pending")
    assert result["upload_id"] == upload["UploadId"]
    assert len(proxy.requests("DELETE")) <= 3  # interrupted: one more try, not nine
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_create_leaves_no_upload(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, signum: signal.Signals
) -> None:
    proxy.add(Rule("hold", method="POST", path_contains="uploads", seconds=2))
    child = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--part-size", "5MiB", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(proxy.endpoint_url, tmp_path),
    )
    wait_until(lambda: proxy.requests("POST", "uploads"), "CreateMultipartUpload")
    seen = time.monotonic()
    child.send_signal(signum)
    out, err = child.communicate(DATA, timeout=60)
    assert child.returncode == 130
    assert line_of(err) == f"cloudpipe: interrupted by {signum.name}: upload aborted"
    result = json.loads(out)
    assert (result["aborted"], result["state"]) == (True, "aborted")
    time.sleep(max(0.0, seen + 2.5 - time.monotonic()))  # the held create reached the store
    assert_no_trace(s3, bucket, "k")  # and its upload was aborted


def mid_upload(
    args: list[str], server: Any, s3: Any, bucket: str, tmp_path: Path
) -> subprocess.Popen[bytes]:
    """The command, with one part stored and the next one buffered, waiting for more input."""
    child = subprocess.Popen(
        [*COMMAND, *args, "--part-size", "5MiB"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    assert child.stdin is not None
    child.stdin.write(DATA[: PART + 100])
    child.stdin.flush()
    wait_until(lambda: pending_uploads(s3, bucket), "the upload's start")
    return child


def test_sighup_aborts_like_sigterm_and_exits_129(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    child = mid_upload([f"s3://{bucket}/k", "--json"], server, s3, bucket, tmp_path)
    child.send_signal(signal.SIGHUP)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 129
    assert line_of(err) == "cloudpipe: interrupted by SIGHUP: upload aborted"
    assert json.loads(out)["state"] == "aborted"
    assert_no_trace(s3, bucket, "k")


def test_sighup_with_a_journal_keeps_the_upload(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    args = [f"s3://{bucket}/k", "--journal", str(journal)]
    child = mid_upload(args, server, s3, bucket, tmp_path)
    child.send_signal(signal.SIGHUP)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 129
    assert "interrupted by SIGHUP; the upload is kept: resume from journal" in line_of(err)
    assert len(pending_uploads(s3, bucket)) == 1
    done = command(["resume", str(journal)], aws_env(server.endpoint_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA


def test_a_second_ctrl_c_does_not_cut_the_abort_short(
    s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=2, times=100))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.writer_process", "interrupt-twice", bucket, "k"],
        env=aws_env(proxy.endpoint_url, tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: len(proxy.requests("PUT", "partNumber=")) >= 3, "parts in flight")
    child.send_signal(signal.SIGINT)
    time.sleep(0.5)  # the writer waits for the parts in flight now
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert "ending: aborted" in out.splitlines(), (out, err)
    assert "on_end: False" in out.splitlines()
    assert proxy.requests("DELETE"), "the abort was sent"
    assert_no_trace(s3, bucket, "k")


# -- 5, 6. the library: a failed abort, a journal that went away ----------------------------


def test_a_writer_whose_abort_failed_says_pending_everywhere(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=20)
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, part_size=PART)
    with pytest.raises(cloudpipe.UploadError) as failed:
        writer.write(DATA)
    (upload,) = pending_uploads(s3, bucket)
    ending = writer.ending
    assert (ending.state, ending.upload_id) == (State.PENDING, upload["UploadId"])
    assert failed.value.ending == ending
    assert failed.value.aborted is False
    assert "left pending" in repr(writer)
    assert "aborted" not in repr(writer).split("left pending")[0]
    with pytest.raises(ValueError, match="left pending") as later:
        writer.write(b"more")
    assert f"upload {upload['UploadId']} stays stored" in str(later.value)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_journal_gone_while_writing_aborts_instead_of_keeping(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path, how: str
) -> None:
    journal = tmp_path / "j"
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    writer = cloudpipe.S3MultipartWriter(
        bucket, "k", client=proxied, part_size=PART, journal=journal
    )
    writer.write(DATA[: PART + 10])
    journal.unlink()
    if how == "replaced":
        journal.write_text("someone else's file")
    with pytest.raises(cloudpipe.UploadError) as failed:
        writer.write(DATA[PART + 10 :])
    assert writer.ending.state is State.ABORTED
    assert failed.value.aborted
    assert failed.value.journal is None
    message = str(failed.value)
    assert f"not kept: its journal {journal} was {how} while it ran" in message
    assert "resume" not in message
    assert_no_trace(s3, bucket, "k")
    if how == "replaced":
        assert journal.read_text() == "someone else's file"  # not the writer's to remove


# -- 7. a failing producer is blamed, not the input ------------------------------------------


def test_resume_whose_producer_fails_blames_the_producer(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal = kept_upload(bucket, proxy, tmp_path)
    source = tmp_path / "data.bin"
    source.write_bytes(DATA)
    producer = f"head -c 1000 {source}; exit 3"
    env = aws_env(server.endpoint_url, tmp_path)
    done = command(["resume", str(journal), "--json", "--", "sh", "-c", producer], env, b"")
    assert done.returncode == 1
    line = line_of(done.stderr)
    assert "exited with status 3" in line
    assert "the upload is kept: resume from journal" in line
    assert "input" not in line.split("kept")[0]  # not "the input ended" or "differs"
    assert json.loads(done.stdout)["state"] == "kept"
    assert len(pending_uploads(s3, bucket)) == 1
    finished = command(["resume", str(journal), "--", "cat", str(source)], env, b"")
    assert finished.returncode == 0, finished.stderr
    assert read_object(s3, bucket, "k") == DATA


# -- 8. a journal the disk will not take ------------------------------------------------------


def file_size_limit(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_journal_whose_header_cannot_be_written_is_not_left_behind(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    env = aws_env(server.endpoint_url, tmp_path)
    args = ["--journal", str(journal), "--part-size", "5MiB", f"s3://{bucket}/k"]
    refused = command(args, env, preexec_fn=file_size_limit(64))
    assert refused.returncode == 2
    line = line_of(refused.stderr)
    assert f"cannot write journal {journal} (recording its header): File too large" in line
    assert not journal.exists()
    assert_no_trace(s3, bucket, "k")
    again = command(args, env)  # nothing left to refuse it
    assert again.returncode == 0, again.stderr


def test_a_journal_write_failing_midstream_aborts_and_names_the_journal(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    env = aws_env(server.endpoint_url, tmp_path)
    args = ["--journal", str(journal), "--part-size", "5MiB", "--json", f"s3://{bucket}/k"]
    failed = command(args, env, preexec_fn=file_size_limit(600))  # header, id, a part or two
    assert failed.returncode == 1
    line = line_of(failed.stderr)
    assert f"cannot write journal {journal} (recording " in line
    assert line.endswith("File too large: upload aborted")
    assert json.loads(failed.stdout)["state"] == "aborted"
    assert not journal.exists()
    assert_no_trace(s3, bucket, "k")


# -- 15, 16. memory budgets that fit the part size, for the whole stream ----------------------


@pytest.mark.parametrize("size", ["40MiB", "64MiB"])
def test_the_commands_default_budget_fits_large_parts(
    server: Any, s3: Any, bucket: str, tmp_path: Path, size: str
) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    done = command([f"s3://{bucket}/k", "--part-size", size, "--verbose"], env, DATA[:1000])
    assert done.returncode == 0, done.stderr
    megabytes = 2 * int(size.removesuffix("MiB"))
    assert f"max_memory for max_concurrency='auto' is {megabytes} MiB" in done.stderr.decode()
    assert read_object(s3, bucket, "k") == DATA[:1000]


def test_a_large_expected_size_is_not_refused_before_reading(
    server: Any, bucket: str, tmp_path: Path
) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    done = command([f"s3://{bucket}/k", "--expected-size", "400GiB"], env, DATA[:1000])
    assert done.returncode == 1
    assert "the input ended after 1000 bytes, short of --expected-size" in line_of(done.stderr)


def test_a_budget_below_two_parts_is_named_in_the_flags_units(tmp_path: Path) -> None:
    env = aws_env("http://127.0.0.1:9", tmp_path)
    args = ["s3://bucket/k", "--part-size", "40MiB", "--max-memory", "60MiB", "--json"]
    done = command(args, env, b"")
    assert done.returncode == 2
    line = line_of(done.stderr)
    assert "--max-memory 60MiB holds fewer than two parts of 40MiB" in line
    assert not re.search(r"\d{6}", line), line  # sizes in the flags' units, not in bytes
    assert "max_memory=" not in line
    assert json.loads(done.stdout)["status"] == 2


def test_resume_of_a_journal_with_large_parts_under_the_default_budget(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal, source = tmp_path / "j", tmp_path / "data.bin"
    source.write_bytes(DATA[:1000])
    proxy.respond(403, "AccessDenied", "no", method="POST", path_contains="uploadId=")
    args = ["--journal", str(journal), "--part-size", "64MiB", f"s3://{bucket}/k"]
    failed = command([*args, "--input", str(source)], aws_env(proxy.endpoint_url, tmp_path))
    assert failed.returncode == 1
    assert "the upload is kept" in line_of(failed.stderr)
    env = aws_env(server.endpoint_url, tmp_path)
    done = command(["resume", str(journal), "--input", str(source)], env, b"")
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA[:1000]


def test_the_budget_holds_after_the_part_size_grows(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    # 80 parts allowed: 10 parts of 5 MiB, then 10 MiB parts; 15 MiB holds three 5 MiB parts
    # but fewer than two of 10 MiB, so those must land one by one
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=0.05, times=10**6))
    budget = 3 * PART
    data = random.Random(16).randbytes(10 * PART + 3 * 2 * PART + 7)
    held: list[int] = []

    def drained(number: int, nbytes: int) -> None:
        snapshot = tracemalloc.take_snapshot()
        buffers = snapshot.filter_traces([tracemalloc.Filter(True, cloudpipe.buffer.__file__)])
        held.append(sum(trace.size for trace in buffers.traces))

    tracemalloc.start()
    try:
        with cloudpipe.S3MultipartWriter(
            bucket,
            "k",
            client=proxied,
            part_size=PART,
            max_concurrency="auto",
            max_memory=budget,
            part_policy=cloudpipe.PartPolicy(max_parts=80, store="small"),
            on_drained=drained,
        ) as writer:
            for start in range(0, len(data), 1 << 20):
                writer.write(data[start : start + (1 << 20)])
    finally:
        tracemalloc.stop()
    assert writer.part_count == 14
    assert read_object(s3, bucket, "k") == data
    assert max(held) <= budget + 64 * 1024
    assert max(held[10:]) >= 2 * PART  # the measure sees a 10 MiB buffer


# -- 17. small ones -------------------------------------------------------------------------


def test_infer_takes_upper_case_extensions(s3: Any, bucket: str) -> None:
    with cloudpipe.open(f"s3://{bucket}/DATA.CSV.GZ", "wb", compression="infer", client=s3) as f:
        f.write(b"a,b\n1,2\n")
    assert gzip.decompress(read_object(s3, bucket, "DATA.CSV.GZ")) == b"a,b\n1,2\n"


@pytest.mark.parametrize(
    "args",
    [
        ["s3://bucket/k", "--part-size", "1MiB"],
        ["s3://bucket/k", "--attempts", "0"],
        ["s3://bucket", "--part-size", "5MiB"],
        ["resume", "/nonexistent/journal"],
        ["uploads", "s3:/bucket"],
    ],
)
def test_every_failure_prints_its_json(tmp_path: Path, args: list[str]) -> None:
    done = command([*args, "--json"], aws_env("http://127.0.0.1:9", tmp_path), b"")
    assert done.returncode == 2
    result = json.loads(done.stdout)
    assert result["status"] == 2
    (line,) = done.stderr.decode().splitlines()  # "cloudpipe: ...", "cloudpipe uploads: ..."
    assert result["error"] in line
    assert (result["state"], result["aborted"]) == ("aborted", True)


def test_an_ending_is_one_value_every_report_reads(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    """The notes' wording is free to change: the command reads the ending, not its words."""
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    journal = tmp_path / "j"
    writer = cloudpipe.S3MultipartWriter(
        bucket, "k", client=proxied, part_size=PART, journal=journal
    )
    with pytest.raises(cloudpipe.UploadError) as failed:
        writer.write(DATA)
    ending = writer.ending
    assert ending.state is State.KEPT
    assert ending.journal == str(journal)
    assert ending.as_json() == {
        "state": "kept",
        "aborted": False,
        "upload_id": writer.upload_id,
        "journal": str(journal),
    }
    assert failed.value.journal == str(journal)
    assert not object_exists(s3, bucket, "k")
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=writer.upload_id)


@pytest.mark.parametrize("fault", ["kept", "pending"])
def test_the_command_reads_the_ending_not_the_words(
    bucket: str,
    s3: Any,
    proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    """Every word of the notes and outcomes changed: the command's JSON and status, which
    come from the ending's attributes, do not change."""
    import cloudpipe.cli
    import cloudpipe.ending

    monkeypatch.setattr(cloudpipe.ending.Ending, "outcome", lambda self: "WORDS CHANGED")
    monkeypatch.setattr(cloudpipe.ending.Ending, "leftover", lambda self: "(CHANGED)")
    monkeypatch.setattr(cloudpipe.ending.Ending, "resume_hint", lambda self: "CHANGED")
    for name, value in aws_env(proxy.endpoint_url, tmp_path).items():
        monkeypatch.setenv(name, value)
    source = tmp_path / "data.bin"
    source.write_bytes(DATA)
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=2")
    args = [f"s3://{bucket}/k", "--part-size", "5MiB", "--input", str(source), "--json"]
    if fault == "kept":
        args += ["--journal", str(tmp_path / "j")]
    else:
        proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=20)
    with pytest.raises(SystemExit) as exited:
        cloudpipe.cli.main(args)
    assert exited.value.code == 1
    result = json.loads(capsys.readouterr().out)
    (upload,) = pending_uploads(s3, bucket)
    assert result["state"] == fault
    assert result["aborted"] is False
    assert result["upload_id"] == upload["UploadId"]
    assert result["journal"] == (str(tmp_path / "j") if fault == "kept" else None)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload["UploadId"])

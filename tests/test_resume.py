"""Journal and resume: a writer killed, failed or interrupted keeps its upload, recorded part by
part in its journal; cloudpipe.resume and ``cloudpipe resume`` take it up and finish a
byte-identical object, re-sending at most the part that was in flight.

The crashes are real: a child process is SIGKILLed by the fault proxy at a chosen request
(before the store sees it, or after the store acted but before the child heard), then a
second process resumes through the same proxy, whose log counts the bytes sent again.
"""

from __future__ import annotations

import base64
import datetime
import gc
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from cloudpipe.s3 import ObjectRequests
from tests.conftest import (
    PART,
    assert_no_trace,
    aws_env,
    pending_uploads,
    read_object,
    wait_until,
)
from tests.faultproxy import FaultProxy, Rule

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [str(Path(sys.executable).with_name("cloudpipe"))]
DATA = random.Random(10).randbytes(3 * PART + 4321)  # parts 1-3 full, part 4 short
SSE_C_KEY = bytes(range(32))


def said(output: str, label: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(label + ": ")]


def journal_parts(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines if line.startswith(b'{"part"')]


def parts_sent(proxy: FaultProxy, since: int = 0) -> list[tuple[int, int]]:
    """``(part number, bytes)`` of each UploadPart the proxy saw from log entry ``since`` on."""
    sent = []
    for entry in proxy.log[since:]:
        if entry.method == "PUT" and "partNumber=" in entry.path:
            number = int(entry.path.split("partNumber=")[1].split("&")[0])
            sent.append((number, int(entry.headers.get("content-length", 0))))
    return sent


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


# -- real crashes: SIGKILL at a chosen request, then resume in another process -------------

CRASHES = {
    # the child dies 1 MiB into part 3's body: the store never has part 3
    "mid-part": Rule("kill_before", method="PUT", path_contains="partNumber=3", after_bytes=2**20),
    # the store has part 3, the child dies before it hears so (and before it journals it)
    "stored-not-journaled": Rule("kill_after", method="PUT", path_contains="partNumber=3"),
    # every part is journaled; the child dies sending Complete
    "during-complete": Rule("kill_before", method="POST", path_contains="uploadId="),
    # the store completed the object; the child dies before it hears so
    "after-complete": Rule("kill_after", method="POST", path_contains="uploadId="),
}


def crash(
    rule: Rule, proxy: FaultProxy, bucket: str, env: dict[str, str], concurrency: int
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.writer_process", "journal", bucket, "k", str(concurrency)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proxy.add(Rule(**{**rule.__dict__, "pid": child.pid}))
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.returncode, out, err)


def resume_in_child(
    how: str, bucket: str, env: dict[str, str], journal: Path, data: Path, concurrency: int = 1
) -> str:
    """Resume with the library (a child running cloudpipe.resume) or the command; its output."""
    if how == "library":
        argv = [sys.executable, "-m", "tests.writer_process", "resume", bucket, "k"]
        argv.append(str(concurrency))
    else:
        argv = [*COMMAND, "resume", str(journal), "--input", str(data), "--json"]
        argv += ["--concurrency", str(concurrency)]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.mark.parametrize("how", ["library", "command"])
@pytest.mark.parametrize("point", list(CRASHES))
def test_killed_writer_resumes_to_the_same_bytes(
    server: Any, s3: Any, bucket: str, tmp_path: Path, point: str, how: str
) -> None:
    journal, data = tmp_path / "upload.journal", tmp_path / "data.bin"
    data.write_bytes(DATA)
    proxy = FaultProxy(server.endpoint_url)
    try:
        env = aws_env(proxy.endpoint_url, tmp_path)
        env |= {"CLOUDPIPE_TEST_JOURNAL": str(journal), "CLOUDPIPE_TEST_DATA": str(data)}
        crash(CRASHES[point], proxy, bucket, env, concurrency=1)
        before = parts_sent(proxy)
        journaled = journal_parts(journal)
        assert [part["part"] for part in journaled] == list(range(1, len(journaled) + 1))
        stored = sum(part["size"] for part in journaled)
        assert len(pending_uploads(s3, bucket)) == (0 if point == "after-complete" else 1)

        since = len(proxy.log)
        output = resume_in_child(how, bucket, env, journal, data)
        again = parts_sent(proxy, since)
    finally:
        proxy.close()
    assert read_object(s3, bucket, "k") == DATA
    assert pending_uploads(s3, bucket) == []
    assert not journal.exists()
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    if how == "command":
        result = json.loads(output)
        assert (result["etag"], result["bytes"]) == (etag, len(DATA))
    if point == "after-complete":
        assert again == []  # found completed: nothing sent
        if how == "library":
            assert said(output, "completed before") == [etag]
        return
    # the resumed run sends what the journal lacks, once, from the part after the last
    # whole one it records; of what the crashed run sent, at most the part in flight again
    resumed_from = len(DATA) - sum(size for _, size in again)
    assert resumed_from in (stored, stored - journaled[-1]["size"])
    assert resumed_from % PART == 0
    numbers_before = {number for number, _ in before}
    resent = sum(size for number, size in again if number in numbers_before)
    assert resent <= PART
    assert sorted(number for number, _ in again) == [number for number, _ in again]
    if how == "library":
        assert said(output, "resumed from") == [str(resumed_from)]
        assert said(output, "etag") == [etag]


def test_killed_concurrent_writer_resumes(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """With 3 parts in flight, up to 3 parts stored but not yet journaled are sent again."""
    journal, data = tmp_path / "upload.journal", tmp_path / "data.bin"
    data.write_bytes(DATA)
    proxy = FaultProxy(server.endpoint_url)
    try:
        env = aws_env(proxy.endpoint_url, tmp_path)
        env |= {"CLOUDPIPE_TEST_JOURNAL": str(journal), "CLOUDPIPE_TEST_DATA": str(data)}
        crash(CRASHES["stored-not-journaled"], proxy, bucket, env, concurrency=3)
        since = len(proxy.log)
        resume_in_child("library", bucket, env, journal, data, concurrency=3)
        again = parts_sent(proxy, since)
    finally:
        proxy.close()
    assert read_object(s3, bucket, "k") == DATA
    assert pending_uploads(s3, bucket) == []
    assert sum(size for _, size in again) <= 3 * PART + 4321


# -- in one process: a failure that keeps the upload, and what resume refuses --------------


def kept_upload(client: Any, proxy: FaultProxy, bucket: str, journal: Path, **args: Any) -> Any:
    """A journaled writer whose part 3 fails for good: its upload is kept. The error."""
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=3", times=1)
    with pytest.raises(cloudpipe.UploadError) as caught:  # noqa: SIM117 - the with is the test
        with cloudpipe.S3MultipartWriter(
            bucket, "k", client=client, part_size=PART, max_attempts=1, journal=journal, **args
        ) as writer:
            writer.write(DATA)
    return caught.value


@pytest.mark.usefixtures("concurrency")
def test_failed_request_keeps_the_upload_and_resume_finishes_it(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    error = kept_upload(proxied, proxy, bucket, journal)
    message = one_line(error)
    assert error.aborted is False
    assert error.journal == str(journal)
    assert f"the upload is kept: resume from journal {journal}" in message
    assert f"cloudpipe resume {journal}" in message
    assert len(pending_uploads(s3, bucket)) == 1
    assert [part["part"] for part in journal_parts(journal)] == [1, 2]

    events: list[object] = []
    writer = cloudpipe.resume(
        journal,
        client=s3,
        source=io.BytesIO(DATA),
        on_verified=lambda number, nbytes: events.append(("verified", number, nbytes)),
        on_drained=lambda number, nbytes: events.append(("drained", number, nbytes)),
        on_end=lambda completed: events.append(("end", completed)),
    )
    assert writer.tell() == 2 * PART
    assert writer.upload_id == error.upload_id
    writer.write(DATA[2 * PART :])
    writer.close()
    assert read_object(s3, bucket, "k") == DATA
    assert writer.etag == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert writer.part_count == 4
    # the object's CRC32, from the journal's part CRC32s and the new parts', nothing re-read
    if server.name != "ceph":  # Ceph RGW 16 keeps no checksum of the object
        whole = base64.b64encode(zlib.crc32(DATA).to_bytes(4, "big")).decode()
        assert writer.checksum == {"algorithm": "CRC32", "type": "FULL_OBJECT", "value": whole}
    assert pending_uploads(s3, bucket) == []
    assert not journal.exists()
    assert events == [
        ("verified", 1, PART),
        ("verified", 2, PART),
        ("drained", 3, PART),
        ("drained", 4, 4321),
        ("end", True),
    ]


def test_a_resumed_writer_that_fails_again_resumes_again(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    kept_upload(proxied, proxy, bucket, journal)
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=4", times=1)
    with pytest.raises(cloudpipe.UploadError, match="part 4 failed") as caught:  # noqa: SIM117
        with cloudpipe.resume(
            journal, client=proxied, source=io.BytesIO(DATA), max_attempts=1
        ) as writer:
            writer.write(DATA[writer.tell() :])
    assert caught.value.aborted is False
    assert [part["part"] for part in journal_parts(journal)] == [1, 2, 3]
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA)) as writer:
        assert writer.tell() == 3 * PART
        writer.write(DATA[writer.tell() :])
    assert read_object(s3, bucket, "k") == DATA
    assert pending_uploads(s3, bucket) == []


def test_changed_source_is_refused_and_the_upload_stays_resumable(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    kept_upload(proxied, proxy, bucket, journal)
    changed = bytearray(DATA)
    changed[PART + 12345] ^= 1
    since = len(proxy.log)
    with pytest.raises(cloudpipe.ResumeError) as caught:
        cloudpipe.resume(journal, client=proxied, source=io.BytesIO(changed))
    message = one_line(caught.value)
    assert "differs from the stored data in part 2" in message
    assert f"bytes {PART} to {2 * PART - 1}" in message
    with pytest.raises(cloudpipe.ResumeError, match="the source ended after 7 bytes"):
        cloudpipe.resume(journal, client=proxied, source=io.BytesIO(DATA[:7]))
    assert parts_sent(proxy, since) == []  # refused before sending anything
    assert len(pending_uploads(s3, bucket)) == 1
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA)) as writer:
        writer.write(DATA[writer.tell() :])
    assert read_object(s3, bucket, "k") == DATA


def test_upload_aborted_meanwhile_is_one_line_and_leaves_nothing(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    error = kept_upload(proxied, proxy, bucket, journal)
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=error.upload_id)
    with pytest.raises(cloudpipe.ResumeError) as caught:
        cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA))
    message = one_line(caught.value)
    assert "the upload no longer exists" in message
    assert error.upload_id in message
    assert caught.value.journal == str(journal)
    assert journal.exists()  # the user's to remove: the message says so
    assert_no_trace(s3, bucket, "k")


def test_what_is_not_a_journal_is_one_line(s3: Any, tmp_path: Path) -> None:
    cases = {
        "empty": (b"", "is empty"),
        "data": (random.Random(1).randbytes(200_000), "is not a cloudpipe journal"),
        "json": (b'{"some": "other file"}\n', "is not a cloudpipe journal"),
        "damaged": (None, "is damaged: line 3 is not a journal record"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if content is None:  # a real header and upload line, then a line of garbage
            writer = cloudpipe.S3MultipartWriter("b-1", "k", client=s3, journal=path)
            writer.abort()
            header = b'{"format":"cloudpipe-journal","version":1,"bucket":"b-1","key":"k",'
            header += b'"part_size":5242880,"grows":true,"max_parts":10000,"checksum":"crc32",'
            header += b'"extra_args":{},"sse_customer_key_md5":null}\n'
            content = header + b'{"upload_id":"u"}\n' + b"garbage\n" + b'{"part":1}\n'
        path.write_bytes(content)
        with pytest.raises(cloudpipe.ResumeError) as caught:
            cloudpipe.resume(path, client=s3)
        assert words in one_line(caught.value), name
    with pytest.raises(FileNotFoundError):
        cloudpipe.resume(tmp_path / "missing", client=s3)


def test_torn_last_line_still_resumes(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    kept_upload(proxied, proxy, bucket, journal)
    with journal.open("ab") as file:
        file.write(b'{"part":3,"offset":10485760,"si')  # a crash in the middle of an append
    writer = cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA))
    assert writer.tell() == 2 * PART
    writer.write(DATA[2 * PART : 3 * PART])  # part 3 is stored and journaled now
    assert [part["part"] for part in journal_parts(journal)] == [1, 2, 3]  # the torn bit is gone
    writer.write(DATA[3 * PART :])
    writer.close()
    assert read_object(s3, bucket, "k") == DATA


def test_sse_c_key_is_asked_for_again_and_checked(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY}
    kept_upload(proxied, proxy, bucket, journal, extra_args=sse)
    text = journal.read_text()
    assert base64.b64encode(SSE_C_KEY).decode() not in text  # never the key itself
    assert base64.b64encode(hashlib.md5(SSE_C_KEY).digest()).decode() in text
    for given, words in (
        (None, "the upload is SSE-C encrypted: pass its key again"),
        ({"SSECustomerKey": bytes(32)}, "the SSE-C key given is not the one the upload was made"),
    ):
        with pytest.raises(cloudpipe.ResumeError) as caught:
            cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA), extra_args=given)
        assert words in one_line(caught.value)
        assert len(pending_uploads(s3, bucket)) == 1
    right = {"SSECustomerKey": SSE_C_KEY}
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA), extra_args=right) as w:
        w.write(DATA[w.tell() :])
    stored = s3.get_object(Bucket=bucket, Key="k", **sse)["Body"].read()
    assert stored == DATA


@pytest.mark.usefixtures("concurrency")
def test_abort_caller_exception_and_close_end_the_upload_and_the_journal(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, journal=journal)
    writer.write(DATA)
    writer.abort()
    assert not journal.exists()
    assert_no_trace(s3, bucket, "k")

    with pytest.raises(LookupError):  # noqa: SIM117 - the with block is what is tested
        with cloudpipe.S3MultipartWriter(
            bucket, "k", client=s3, part_size=PART, journal=journal
        ) as writer:
            writer.write(DATA)
            raise LookupError("the caller's own failure")
    assert not journal.exists()
    assert_no_trace(s3, bucket, "k")

    for size in (len(DATA), 10):  # multipart, then a single PutObject
        with cloudpipe.S3MultipartWriter(
            bucket, "k", client=s3, part_size=PART, journal=journal
        ) as writer:
            writer.write(DATA[:size])
        assert not journal.exists()
        assert read_object(s3, bucket, "k") == DATA[:size]


def test_refused_condition_aborts_even_with_a_journal(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """IfNoneMatch refused at Complete: a resume could not mend it, so nothing is kept."""
    if server.name == "ceph":
        pytest.xfail("Ceph 16 ignores If-None-Match on CompleteMultipartUpload")
    journal = tmp_path / "j"
    writer = cloudpipe.S3MultipartWriter(
        bucket, "k", client=s3, part_size=PART, extra_args={"IfNoneMatch": "*"}, journal=journal
    )
    writer.write(DATA)
    s3.put_object(Bucket=bucket, Key="k", Body=b"meanwhile")
    with pytest.raises(cloudpipe.UploadError, match="PreconditionFailed") as caught:
        writer.close()
    assert caught.value.aborted is True
    assert not journal.exists()
    assert pending_uploads(s3, bucket) == []
    assert read_object(s3, bucket, "k") == b"meanwhile"


def test_interrupt_keeps_the_upload(s3: Any, bucket: str, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    with pytest.raises(KeyboardInterrupt) as caught:  # noqa: SIM117
        with cloudpipe.S3MultipartWriter(
            bucket, "k", client=s3, part_size=PART, journal=journal
        ) as writer:
            writer.write(DATA[: 2 * PART + 5])
            raise KeyboardInterrupt
    assert any(
        f"the upload is kept: resume from journal {journal}" in note
        for note in caught.value.__notes__
    )
    assert len(pending_uploads(s3, bucket)) == 1
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA)) as writer:
        assert writer.tell() == 2 * PART  # the 5 bytes buffered were never stored
        writer.write(DATA[writer.tell() :])
    assert read_object(s3, bucket, "k") == DATA


def test_writer_collected_open_keeps_the_upload_and_says_so(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, journal=journal)
    writer.write(DATA[: PART + 1])
    with pytest.warns(RuntimeWarning, match=f"its upload is kept: resume from journal {journal}"):
        del writer
        gc.collect()
    assert len(pending_uploads(s3, bucket)) == 1
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA)) as resumed:
        resumed.write(DATA[resumed.tell() :])
    assert read_object(s3, bucket, "k") == DATA


def test_journal_without_an_upload_resumes_from_the_start(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, journal=journal)
    writer.write(b"lost: never sent")
    crashed = journal.read_bytes()  # what a crash before any request leaves
    with pytest.warns(ResourceWarning, match="aborted, not completed"):
        del writer  # ended in-process with nothing stored: nothing kept, no journal
        gc.collect()
    assert not journal.exists()
    assert pending_uploads(s3, bucket) == []
    journal.write_bytes(crashed)
    with cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA)) as resumed:
        assert resumed.tell() == 0
        resumed.write(DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert not journal.exists()


def test_upload_completed_before_the_crash_is_reported_as_stored(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    with cloudpipe.S3MultipartWriter(
        bucket, "k", client=s3, part_size=PART, journal=journal
    ) as writer:
        writer.write(DATA)
        kept = journal.read_bytes()
    # as a crash right after Complete leaves it: the last, short part journaled too
    last = DATA[3 * PART :]
    crc = base64.b64encode(zlib.crc32(last).to_bytes(4, "big")).decode()
    line = {"part": 4, "offset": 3 * PART, "size": len(last), "crc32": crc}
    line |= {"etag": f'"{hashlib.md5(last).hexdigest()}"', "checksums": {"ChecksumCRC32": crc}}
    journal.write_bytes(kept + json.dumps(line).encode() + b"\n")
    ended: list[bool] = []
    resumed = cloudpipe.resume(journal, client=s3, source=io.BytesIO(DATA), on_end=ended.append)
    assert resumed.closed
    assert resumed.etag == writer.etag
    assert resumed.upload_id == writer.upload_id
    assert ended == [True]
    assert not journal.exists()
    with pytest.raises(ValueError, match="closed writer"):
        resumed.write(b"x")


def test_list_parts_reads_every_page(s3: Any, bucket: str) -> None:
    """More than one ListParts page (1,000 parts each): parts of a byte, as no store checks
    part sizes before Complete."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for number in range(1, 1003):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=b"x")
    requests = ObjectRequests(s3, bucket, "k", {}, 1)
    listed = requests.list_parts(upload_id)
    assert sorted(listed) == list(range(1, 1003))
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_journal_bad_input_is_one_line_and_sends_nothing(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    journal.write_text("someone else's")
    with pytest.raises(FileExistsError) as caught:
        cloudpipe.S3MultipartWriter(bucket, "k", client=s3, journal=journal)
    assert "exists already: resume its upload with cloudpipe.resume" in one_line(caught.value)
    assert journal.read_text() == "someone else's"
    with pytest.raises(ValueError, match="journal needs checksum 'crc32' or 'md5'"):
        cloudpipe.S3MultipartWriter(bucket, "k", client=s3, journal=tmp_path / "n", checksum="none")
    with pytest.raises(TypeError, match="journal must be a path or None, not int"):
        cloudpipe.S3MultipartWriter(bucket, "k", client=s3, journal=3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        cloudpipe.S3MultipartWriter(bucket, "k", client=s3, journal=tmp_path / "no" / "dir")
    assert not (tmp_path / "n").exists()
    assert_no_trace(s3, bucket, "k")


def test_dates_are_kept_as_text_and_taken_back(s3: Any, bucket: str, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    when = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    lock = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": when}
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, extra_args=lock, journal=journal)
    assert '"ObjectLockRetainUntilDate":"2031-01-02T03:04:05+00:00"' in journal.read_text()
    crashed = journal.read_bytes()  # what a crash before any request leaves
    with pytest.warns(ResourceWarning, match="aborted, not completed"):
        del writer
        gc.collect()
    journal.write_bytes(crashed)
    resumed = cloudpipe.resume(journal, client=s3)  # botocore takes the text as a timestamp
    assert resumed.tell() == 0
    resumed.abort()
    assert not journal.exists()


def test_journal_in_use_is_not_resumed_twice(s3: Any, bucket: str, tmp_path: Path) -> None:
    """A resume while the writer (or another resume) still holds the journal is refused."""
    journal = tmp_path / "j"
    with cloudpipe.S3MultipartWriter(
        bucket, "k", client=s3, part_size=PART, journal=journal
    ) as writer:
        writer.write(DATA[: PART + 1])
        with pytest.raises(cloudpipe.ResumeError) as caught:
            cloudpipe.resume(journal, client=s3)
        assert "is in use by another writer" in one_line(caught.value)
        writer.write(DATA[PART + 1 :])
    assert read_object(s3, bucket, "k") == DATA


# -- the command ---------------------------------------------------------------------------


def command(args: list[str], env: dict[str, str], data: bytes = b"") -> Any:
    return subprocess.run(COMMAND + args, input=data, env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize("source", ["file", "producer", "stdin"])
def test_command_failure_keeps_the_upload_and_resume_finishes_it(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path, source: str
) -> None:
    journal, data = tmp_path / "j", tmp_path / "data.bin"
    data.write_bytes(DATA)
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=3", times=1)
    args = ["--journal", str(journal), "--attempts", "1", "--part-size", "5MiB", "--json"]
    failed = command(
        [*args, f"s3://{bucket}/k", "--input", str(data)], aws_env(proxy.endpoint_url, tmp_path)
    )
    assert failed.returncode == 1
    line = failed.stderr.decode().strip()
    assert "\n" not in line
    assert f"the upload is kept: resume from journal {journal}" in line
    assert f"cloudpipe resume {journal}" in line
    assert json.loads(failed.stdout)["aborted"] is False
    assert len(pending_uploads(s3, bucket)) == 1

    env = aws_env(server.endpoint_url, tmp_path)
    resume = ["resume", str(journal), "--json", "--progress"]
    if source == "file":
        done = command([*resume, "--input", str(data)], env)
    elif source == "producer":
        done = command([*resume, "--", "cat", str(data)], env)
    else:
        done = command([*resume, "-"], env, DATA)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["resumed_from"] == 2 * PART
    assert result["bytes"] == len(DATA)
    assert read_object(s3, bucket, "k") == DATA
    assert result["etag"] == s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert "verifying" in done.stderr.decode()  # the bar names the verify phase
    assert not journal.exists()
    assert pending_uploads(s3, bucket) == []


def test_command_resume_refuses_a_changed_input(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=3", times=1)
    args = ["--journal", str(journal), "--attempts", "1", "--part-size", "5MiB", f"s3://{bucket}/k"]
    assert command(args, aws_env(proxy.endpoint_url, tmp_path), DATA).returncode == 1
    changed = DATA[:100] + b"!" + DATA[101:]
    env = aws_env(server.endpoint_url, tmp_path)
    done = command(["resume", str(journal), "--json"], env, changed)
    assert done.returncode == 1
    line = done.stderr.decode().strip()
    assert "\n" not in line
    assert "the input differs from the stored data in part 1" in line
    assert json.loads(done.stdout)["aborted"] is False
    assert len(pending_uploads(s3, bucket)) == 1
    assert command(["resume", str(journal)], env, DATA).returncode == 0
    assert read_object(s3, bucket, "k") == DATA


def test_command_resume_usage_errors(server: Any, bucket: str, tmp_path: Path) -> None:
    env = aws_env(server.endpoint_url, tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("someone else's")
    for journal, words in (
        (taken, f"--journal {taken} exists already: resume its upload with 'cloudpipe resume"),
        (tmp_path / "no" / "dir", "cannot create --journal"),
    ):
        refused = command(["--journal", str(journal), f"s3://{bucket}/k"], env, DATA)
        assert refused.returncode == 2
        assert refused.stderr.decode().count("\n") == 1
        assert words in refused.stderr.decode()
    assert taken.read_text() == "someone else's"
    missing = command(["resume", str(tmp_path / "missing")], env)
    assert missing.returncode == 2
    assert "cannot read journal" in missing.stderr.decode()
    other = tmp_path / "other"
    other.write_bytes(b"not a journal\n")
    refused = command(["resume", str(other)], env)
    assert refused.returncode == 1
    assert refused.stderr.decode().count("\n") == 1
    assert "is not a cloudpipe journal" in refused.stderr.decode()


def test_command_interrupted_keeps_the_upload(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal, data = tmp_path / "j", tmp_path / "data.bin"
    data.write_bytes(DATA)
    env = aws_env(server.endpoint_url, tmp_path)
    producer = f"head -c {2 * PART + 10} {data}; exec sleep 60 2>/dev/null"
    args = ["--journal", str(journal), "--part-size", "5MiB", f"s3://{bucket}/k"]
    child = subprocess.Popen(
        [*COMMAND, *args, "--", "sh", "-c", producer],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def stored() -> int:
        uploads = pending_uploads(s3, bucket)
        if not uploads:
            return 0
        listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=uploads[0]["UploadId"])
        return len(listed.get("Parts", []))

    # the command's default, auto, journals a part when it next takes parts back (the
    # producer is asleep now) or when it stops: wait for the store, not the journal
    wait_until(lambda: stored() == 2, "two parts stored")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    line = err.decode().strip()
    assert "\n" not in line
    assert "interrupted by SIGINT; the upload is kept: resume from journal" in line
    assert len(pending_uploads(s3, bucket)) == 1
    assert len(journal_parts(journal)) == 2  # both journaled as the command stopped
    done = command(["resume", str(journal), "--input", str(data)], env)
    assert done.returncode == 0, done.stderr
    assert read_object(s3, bucket, "k") == DATA


def test_writer_open_at_exit_keeps_the_upload(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    env = aws_env(server.endpoint_url, tmp_path) | {"CLOUDPIPE_TEST_JOURNAL": str(journal)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.writer_process", "journal-exit", bucket, "k"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" in done.stderr
    assert "was still open at interpreter exit: its upload is kept: resume from journal" in (
        done.stderr
    )
    assert [upload["UploadId"] for upload in pending_uploads(s3, bucket)] == said(
        done.stdout, "left open"
    )
    assert os.path.exists(journal)

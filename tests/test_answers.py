"""Answers that are not S3's, callbacks that call back, and aborts that fail: every ending
is told truthfully, in one line, and leaves the store as it says."""

from __future__ import annotations

import random
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, pending_uploads, read_object, stream
from tests.faultproxy import FaultProxy, Rule

pytestmark = pytest.mark.usefixtures("concurrency")

DATA = random.Random(31).randbytes(2 * PART + 555)
HTML = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
PAGE = {"Content-Type": "text/html"}


@pytest.mark.parametrize(
    ("method", "path", "size", "request_name", "member"),
    [
        ("PUT", "/k", 100, "PutObject", "answered without ETag"),
        ("POST", "?uploads", len(DATA), "CreateMultipartUpload", "answered without UploadId"),
        ("PUT", "partNumber=2", len(DATA), "part 2", "answered without ETag"),
        ("POST", "uploadId=", len(DATA), "CompleteMultipartUpload", "finds another object"),
    ],
    ids=["put", "create", "part", "complete"],
)
def test_a_200_html_page_is_a_failure_never_a_success(
    s3: Any,
    bucket: str,
    proxy: FaultProxy,
    proxied: Any,
    method: str,
    path: str,
    size: int,
    request_name: str,
    member: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"the old object")
    proxy.add(
        Rule("respond", method=method, path_contains=path, status=200, body=HTML, headers=PAGE)
    )
    ends: list[bool] = []
    with pytest.raises(cloudpipe.UploadError) as caught:
        stream(proxied, bucket, DATA[:size], on_end=ends.append)
    message = str(caught.value)
    assert message.startswith(f"s3://{bucket}/k: {request_name}")
    assert member in message
    assert f"is {proxy.endpoint_url} an S3 endpoint?" in message
    assert "\n" not in message
    assert caught.value.aborted is True
    assert ends == [False]
    assert read_object(s3, bucket, "k") == b"the old object"
    assert pending_uploads(s3, bucket) == []


def test_an_endpoint_that_is_not_s3_at_all(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.add(Rule("respond", status=200, body=HTML, headers=PAGE, times=1000))
    for size in (100, len(DATA)):
        with pytest.raises(cloudpipe.UploadError, match="answered without"):
            stream(proxied, bucket, DATA[:size])
    assert_no_trace(s3, bucket, "k")


# -- callbacks that call the writer back -------------------------------------------------


def test_writing_from_on_drained_is_refused_not_dropped(s3: Any, bucket: str) -> None:
    """Bytes written from on_drained were once counted, then silently left out of the object."""
    ends: list[bool] = []
    writer = cloudpipe.S3MultipartWriter(
        bucket,
        "k",
        client=s3,
        part_size=PART,
        on_drained=lambda number, nbytes: writer.write(b"trailer"),
        on_end=ends.append,
    )
    with pytest.raises(RuntimeError) as caught:
        writer.write(b"x" * (PART + 10))  # part 1 drains here (synchronous) or in close()
        writer.close()
    message = str(caught.value)
    assert message == (
        f"s3://{bucket}/k: write() called from one of the writer's own callbacks, inside the "
        "call that fired it: not allowed (raise an exception to abort)"
    )
    assert ends == [False]
    assert writer.closed
    assert_no_trace(s3, bucket, "k")


@pytest.mark.parametrize("callback", ["on_ready", "on_drained"])
@pytest.mark.parametrize("call", ["close", "abort", "write"])
def test_calling_the_writer_from_a_callback_is_refused(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any, callback: str, call: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"the old object")
    ends: list[bool] = []

    def call_back(*args: object) -> None:
        getattr(writer, call)(*([b"more"] if call == "write" else []))

    writer = cloudpipe.S3MultipartWriter(
        bucket, "k", client=proxied, part_size=PART, on_end=ends.append, **{callback: call_back}
    )
    with pytest.raises(RuntimeError, match=rf"^s3://{bucket}/k: {call}\(\) called from one of"):
        writer.write(DATA)
        writer.close()
    assert ends == [False]  # once
    assert proxy.requests("POST", "uploadId=") == []  # Complete never sent
    assert read_object(s3, bucket, "k") == b"the old object"
    assert pending_uploads(s3, bucket) == []


def test_on_end_may_read_and_close_again(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    seen: list[object] = []

    def on_end(completed: bool) -> None:
        writer.close()  # already ended: does nothing
        writer.abort()
        seen.append((completed, writer.etag, writer.closed))

    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, part_size=PART, on_end=on_end)
    writer.write(DATA)
    writer.close()
    writer.close()
    assert seen == [(True, s3.head_object(Bucket=bucket, Key="k")["ETag"], True)]
    assert len(proxy.requests("POST", "uploadId=")) == 1
    assert read_object(s3, bucket, "k") == DATA


def test_tell_from_a_callback_is_allowed(s3: Any, bucket: str) -> None:
    positions: list[int] = []
    writer = cloudpipe.S3MultipartWriter(
        bucket,
        "k",
        client=s3,
        part_size=PART,
        on_drained=lambda n, b: positions.append(writer.tell()),
    )
    with writer:
        writer.write(DATA)
    assert positions
    assert all(p <= len(DATA) for p in positions)
    assert read_object(s3, bucket, "k") == DATA


# -- aborts that fail ----------------------------------------------------------------------


class Boom(Exception):
    pass


def test_failed_abort_never_hides_the_callers_exception(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=10)
    with (
        pytest.raises(Boom) as caught,
        cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, part_size=PART) as writer,
    ):
        writer.write(DATA)
        raise Boom("the caller's own failure")
    upload_id = writer.upload_id
    assert upload_id is not None
    (note,) = caught.value.__notes__
    assert note.startswith(f"cloudpipe: s3://{bucket}/k: the abort failed (AccessDenied: no abort)")
    assert f"upload {upload_id} stays stored" in note
    assert [u["UploadId"] for u in pending_uploads(s3, bucket)] == [upload_id]
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_text_mode_failed_abort_never_hides_the_callers_exception(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=10)
    with (
        pytest.raises(Boom) as caught,
        cloudpipe.open(f"s3://{bucket}/k", "w", client=proxied, part_size=PART) as text,
    ):
        text.write("x" * (PART + 10))
        text.flush()
        raise Boom
    assert "the abort failed" in caught.value.__notes__[0]
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=text.buffer.upload_id)


def test_explicit_abort_that_fails_raises_saying_so(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "no abort", method="DELETE", times=10)
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, part_size=PART)
    writer.write(DATA)
    with pytest.raises(cloudpipe.UploadError) as caught:
        writer.abort()
    assert caught.value.aborted is False
    assert str(caught.value).startswith(
        f"s3://{bucket}/k: AbortMultipartUpload failed: AccessDenied"
    )
    assert writer.closed
    writer.abort()  # ended: does nothing, sends nothing
    assert len(proxy.requests("DELETE")) == 1
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=writer.upload_id)

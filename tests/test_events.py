"""on_ready, on_drained, on_error and on_end: when, how often, in which order."""

from __future__ import annotations

import re
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, object_exists
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.usefixtures("concurrency")


def recorder() -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    events: list[tuple[Any, ...]] = []
    callbacks = {
        "on_ready": lambda upload_id: events.append(("ready", upload_id)),
        "on_drained": lambda number, nbytes: events.append(("drained", number, nbytes)),
        "on_error": lambda error: events.append(("error", error)),
        "on_end": lambda completed: events.append(("end", completed)),
    }
    return events, callbacks


def kinds(events: list[tuple[Any, ...]]) -> str:
    return " ".join(event[0] for event in events)


ORDER = re.compile(r"(ready( drained)* )?(error )?end")
"""The order the SPEC promises, whatever the concurrency."""


def test_multipart_events_in_order(s3: Any, bucket: str) -> None:
    events, callbacks = recorder()
    with cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, **callbacks) as writer:
        writer.write(b"x" * (2 * PART + 100))
    assert events == [
        ("ready", writer.upload_id),
        ("drained", 1, PART),
        ("drained", 2, PART),
        ("drained", 3, 100),
        ("end", True),
    ]
    assert writer.upload_id is not None


@pytest.mark.parametrize("concurrency", [1], indirect=True)
def test_part_is_stored_before_write_returns(s3: Any, bucket: str) -> None:
    events, callbacks = recorder()
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, **callbacks)
    writer.write(b"x" * (PART - 1))
    assert events == []  # nothing sent before the first part is full
    writer.write(b"x")
    assert [e[0] for e in events] == ["ready", "drained"]
    parts = s3.list_parts(Bucket=bucket, Key="k", UploadId=writer.upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, PART)]
    writer.close()


def test_single_put_fires_only_on_end(s3: Any, bucket: str) -> None:
    events, callbacks = recorder()
    with cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, **callbacks) as w:
        w.write(b"small")
    assert events == [("end", True)]


def test_abort_fires_on_end_false_only(s3: Any, bucket: str) -> None:
    events, callbacks = recorder()
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, **callbacks)
    writer.write(b"x" * (PART + 1))
    writer.abort()
    writer.abort()
    assert ORDER.fullmatch(kinds(events))
    assert kinds(events) in ("ready drained end", "ready end")  # a part in flight is not drained
    assert events[-1] == ("end", False)


def test_failure_fires_error_then_end(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    events, callbacks = recorder()
    proxy.respond(403, "AccessDenied", "Access Denied", method="PUT", path_contains="partNumber=2")
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=proxied, part_size=PART, **callbacks)
    with pytest.raises(cloudpipe.UploadError) as caught:
        writer.write(b"x" * (2 * PART))
        writer.close()  # with max_concurrency > 1 the failure surfaces here
    assert ORDER.fullmatch(kinds(events))
    assert kinds(events).endswith("error end")
    assert events[-2] == ("error", caught.value)
    assert events[-1] == ("end", False)
    assert_no_trace(s3, bucket, "k")


@pytest.mark.parametrize("failing", ["on_ready", "on_drained"])
def test_callback_that_raises_aborts_and_propagates(s3: Any, bucket: str, failing: str) -> None:
    events, callbacks = recorder()

    def fail(*args: object) -> None:
        raise RuntimeError(f"{failing} failed")

    callbacks[failing] = fail
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, **callbacks)
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        writer.write(b"x" * (PART + 1))
        writer.close()
    assert writer.closed
    assert events[-1] == ("end", False)
    assert [e for e in events if e[0] == "error"] == []  # on_error is for failed requests
    assert_no_trace(s3, bucket, "k")


def test_on_end_that_raises_after_completion_keeps_the_object(s3: Any, bucket: str) -> None:
    def fail(completed: bool) -> None:
        raise RuntimeError("on_end failed")

    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, on_end=fail)
    writer.write(b"data")
    with pytest.raises(RuntimeError, match="on_end failed"):
        writer.close()
    assert writer.closed
    assert object_exists(s3, bucket, "k")

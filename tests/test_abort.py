"""Every way a writer can end without close() leaves no object and no stored parts."""

from __future__ import annotations

import gc
import io
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, assert_no_trace, object_exists, pending_uploads

pytestmark = pytest.mark.usefixtures("concurrency")


class Boom(Exception):
    pass


@pytest.mark.parametrize("size", [10, 2 * PART + 1], ids=["before-upload", "mid-upload"])
def test_exception_in_with_block_aborts(s3: Any, bucket: str, size: int) -> None:
    ends: list[bool] = []
    with (
        pytest.raises(Boom),
        cloudpipe.S3MultipartWriter(
            bucket, "k", client=s3, part_size=PART, on_end=ends.append
        ) as writer,
    ):
        writer.write(b"x" * size)
        raise Boom
    assert writer.closed
    assert ends == [False]
    assert_no_trace(s3, bucket, "k")


@pytest.mark.parametrize("size", [0, 10, 2 * PART + 1])
def test_abort_discards_everything(s3: Any, bucket: str, size: int) -> None:
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART)
    writer.write(b"x" * size)
    if size > PART:
        assert len(pending_uploads(s3, bucket)) == 1
    writer.abort()
    writer.abort()  # idempotent
    writer.close()  # does nothing after abort
    assert writer.closed
    assert writer.etag is None
    assert_no_trace(s3, bucket, "k")


def test_abort_after_close_leaves_the_object(s3: Any, bucket: str) -> None:
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART)
    writer.write(b"kept")
    writer.close()
    writer.abort()
    writer.close()
    assert object_exists(s3, bucket, "k")


@pytest.mark.parametrize("size", [10, PART + 1], ids=["before-upload", "mid-upload"])
def test_garbage_collected_writer_aborts_with_resource_warning(
    s3: Any, bucket: str, size: int
) -> None:
    ends: list[bool] = []
    writer = cloudpipe.S3MultipartWriter(bucket, "k", client=s3, part_size=PART, on_end=ends.append)
    writer.write(b"x" * size)
    with pytest.warns(ResourceWarning, match="aborted, not completed"):
        del writer
        gc.collect()
    assert ends == [False]
    assert_no_trace(s3, bucket, "k")


def test_text_mode_exception_aborts(s3: Any, bucket: str) -> None:
    with (
        pytest.raises(Boom),
        cloudpipe.open(f"s3://{bucket}/t.txt", "w", client=s3, part_size=PART) as text,
    ):
        text.write("é" * (PART // 2 + 10))  # more than a part once encoded
        text.flush()
        raise Boom
    assert_no_trace(s3, bucket, "t.txt")


def test_plain_text_io_wrapper_would_complete(s3: Any, bucket: str) -> None:
    """Why cloudpipe.open exists: io.TextIOWrapper closes (completes) even on an exception."""
    writer = cloudpipe.S3MultipartWriter(bucket, "plain.txt", client=s3, part_size=PART)
    with pytest.raises(Boom), io.TextIOWrapper(writer, encoding="utf-8") as text:
        text.write("partial")
        raise Boom
    assert object_exists(s3, bucket, "plain.txt")


def test_text_mode_garbage_collected_aborts(s3: Any, bucket: str) -> None:
    text = cloudpipe.open(f"s3://{bucket}/t.txt", "w", client=s3, part_size=PART)
    text.write("a" * (PART + 10))
    with pytest.warns(ResourceWarning, match="aborted, not completed"):
        del text
        gc.collect()
    assert_no_trace(s3, bucket, "t.txt")


def test_text_mode_abort(s3: Any, bucket: str) -> None:
    text = cloudpipe.open(f"s3://{bucket}/t.txt", "w", client=s3, part_size=PART)
    text.write("a" * (PART + 10))
    text.abort()
    assert text.closed
    assert_no_trace(s3, bucket, "t.txt")


def test_keyboard_interrupt_mid_write_aborts(s3: Any, bucket: str) -> None:
    def interrupt(part_number: int, nbytes: int) -> None:
        raise KeyboardInterrupt

    writer = cloudpipe.S3MultipartWriter(
        bucket, "k", client=s3, part_size=PART, on_drained=interrupt
    )
    with pytest.raises(KeyboardInterrupt):
        writer.write(b"x" * (PART + 1))
        writer.close()  # with max_concurrency > 1 the part lands (and on_drained runs) here
    assert writer.closed
    assert_no_trace(s3, bucket, "k")

"""Bad input is a one-line TypeError or ValueError naming what is wrong; the io protocol."""

from __future__ import annotations

import inspect
import io
import re
from typing import Any

import pytest

import cloudpipe
from cloudpipe.partsize import DEFAULT_PART_SIZE
from tests.conftest import PART, read_object
from tests.servers import make_client


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"bucket": ""}, ValueError, "bucket '' is not a valid bucket name"),
        ({"bucket": "s3://b/k"}, ValueError, "cloudpipe.open takes s3:// URLs"),
        ({"bucket": 7}, TypeError, "bucket must be a str, not int"),
        ({"key": ""}, ValueError, "key must not be empty"),
        ({"key": b"k"}, TypeError, "key must be a str, not bytes"),
        ({"key": "é" * 513}, ValueError, "key is 1026 bytes in UTF-8; S3 allows at most 1024"),
        ({"key": "\udc80"}, ValueError, "is not valid Unicode text"),
        ({"part_size": 5 * 2**20 - 1}, ValueError, "part_size=5242879 is out of range"),
        ({"part_size": 5 * 2**30 + 1}, ValueError, "part_size=5368709121 is out of range"),
        ({"part_size": 8.0}, TypeError, "part_size must be an int, not float"),
        ({"part_size": True}, TypeError, "part_size must be an int, not bool"),
        ({"max_attempts": 0}, ValueError, "max_attempts=0 is out of range: it must be 1 or more"),
        ({"expected_size": -1}, ValueError, "expected_size=-1 is out of range"),
        ({"expected_size": 10_000 * 5 * 2**30 + 1}, ValueError, "larger than S3 allows"),
        ({"extra_args": {"ContentTyp": "x"}}, ValueError, "unknown key 'ContentTyp'"),
        ({"extra_args": {"Body": b"x"}}, ValueError, "unknown key 'Body'"),
        ({"extra_args": {"ChecksumCRC32": "x"}}, ValueError, "unknown key 'ChecksumCRC32'"),
        ({"extra_args": {"Metadata": 1}}, ValueError, "extra_args: Invalid type for parameter"),
        ({"extra_args": {"ContentType": 5}}, ValueError, "ContentType"),
        ({"extra_args": [("ContentType", "x")]}, TypeError, "extra_args must be a dict"),
        ({"on_end": "print"}, TypeError, "on_end must be callable or None, not str"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    args = {"bucket": "bucket", "key": "key", "client": make_client("http://127.0.0.1:9")}
    args |= kwargs
    with pytest.raises(error, match=_literal(message)) as caught:
        cloudpipe.S3MultipartWriter(**args)
    assert "\n" not in str(caught.value)


def _literal(text: str) -> str:
    return re.escape(text)


def test_construction_sends_nothing() -> None:
    """Nothing goes over the network before the first part fills: no server is needed here."""
    writer = cloudpipe.S3MultipartWriter(
        "bucket", "key", client=make_client("http://127.0.0.1:9"), part_size=PART
    )
    writer.write(b"x" * (PART - 1))
    writer.abort()


def test_io_protocol(s3: Any, bucket: str) -> None:
    writer = cloudpipe.S3MultipartWriter(bucket, "dir/k.bin", client=s3, part_size=PART)
    assert isinstance(writer, io.BufferedIOBase)
    assert writer.name == f"s3://{bucket}/dir/k.bin"
    assert writer.mode == "wb"
    assert (writer.writable(), writer.readable(), writer.seekable()) == (True, False, False)
    assert writer.tell() == 0
    with pytest.raises(TypeError, match=r"bytes-like object is required|not 'str'"):
        writer.write("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not 'int'"):
        writer.write(5)  # type: ignore[arg-type]
    writer.write(b"abc")
    writer.flush()
    assert writer.tell() == 3
    for call in (
        lambda: writer.seek(0),
        lambda: writer.seek(3),  # even the current position: zipfile relies on it
        lambda: writer.seek(0, io.SEEK_END),
        lambda: writer.truncate(),
        lambda: writer.read(),
        lambda: writer.read1(),
        lambda: writer.readinto(bytearray(2)),
        lambda: writer.readline(),
        lambda: writer.fileno(),
        lambda: writer.detach(),
    ):
        with pytest.raises(io.UnsupportedOperation):
            call()
    assert "s3://" in repr(writer)
    writer.close()
    assert writer.closed
    for call in (
        lambda: writer.write(b"x"),
        lambda: writer.flush(),
        lambda: writer.tell(),
        lambda: writer.writelines([b"x"]),
    ):
        with pytest.raises(ValueError, match=r"closed writer s3://.*completed"):
            call()
    writer.close()  # idempotent
    assert read_object(s3, bucket, "dir/k.bin") == b"abc"


def test_default_client_honours_aws_environment(
    server: Any, bucket: str, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with cloudpipe.S3MultipartWriter(bucket, "env", part_size=PART) as writer:
        writer.write(b"from the environment")
    assert read_object(s3, bucket, "env") == b"from the environment"


def test_the_documented_part_size_default_is_the_one_used() -> None:
    """The signature spells 8 MiB out for the API reference: it must stay the constant."""
    signature = inspect.signature(cloudpipe.S3MultipartWriter)
    assert signature.parameters["part_size"].default == DEFAULT_PART_SIZE == 8 * 2**20

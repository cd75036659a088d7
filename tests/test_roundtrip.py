"""Bytes in equal bytes out, for sizes around part boundaries and any sequence of writes."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cloudpipe
from cloudpipe.checksums import crc32_combine
from tests.conftest import PART, pending_uploads, read_object

pytestmark = pytest.mark.usefixtures("concurrency")


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def assert_full_object_crc32(
    server: Any, s3: Any, bucket: str, key: str, writer: Any, data: bytes
) -> None:
    """The object's CRC32 is the whole stream's (combined from the parts' for a multipart
    object), as the writer reports and as the store keeps it for a later reader."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    if server.name == "ceph":  # Ceph RGW 16 keeps no checksum of the object
        assert "ChecksumCRC32" not in head
        assert writer.checksum is None
        return
    assert head["ChecksumCRC32"] == crc32(data)
    assert writer.checksum == {"algorithm": "CRC32", "type": "FULL_OBJECT", "value": crc32(data)}


def multipart_etag(data: bytes, part_size: int) -> str:
    digests = b"".join(
        hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    )
    parts = -(-len(data) // part_size)
    return f'"{hashlib.md5(digests).hexdigest()}-{parts}"'


@pytest.mark.parametrize("size", [0, 1, PART - 1])
def test_less_than_a_part_is_one_put_object(server: Any, s3: Any, bucket: str, size: int) -> None:
    data = payload(size)
    ready: list[str] = []
    with cloudpipe.S3MultipartWriter(
        bucket, "small", client=s3, part_size=PART, on_ready=ready.append
    ) as writer:
        writer.write(data)
    assert read_object(s3, bucket, "small") == data
    assert writer.upload_id is None
    assert writer.part_count == 0
    assert ready == []
    assert writer.etag == f'"{hashlib.md5(data).hexdigest()}"'  # a single PUT's ETag
    assert_full_object_crc32(server, s3, bucket, "small", writer, data)
    assert writer.etag == s3.head_object(Bucket=bucket, Key="small")["ETag"]


@pytest.mark.parametrize(
    ("size", "parts"),
    [(PART, 1), (PART + 1, 2), (2 * PART, 2), (3 * PART + 12345, 4)],
)
def test_a_part_or_more_is_a_multipart_upload(
    server: Any, s3: Any, bucket: str, size: int, parts: int
) -> None:
    data = payload(size, seed=size)
    with cloudpipe.S3MultipartWriter(bucket, "big", client=s3, part_size=PART) as writer:
        for start in range(0, size, 100_000):
            writer.write(data[start : start + 100_000])
        assert writer.tell() == size
    assert read_object(s3, bucket, "big") == data
    assert writer.upload_id is not None
    assert writer.part_count == parts
    assert writer.etag == multipart_etag(data, PART)
    assert writer.etag == s3.head_object(Bucket=bucket, Key="big")["ETag"]
    assert_full_object_crc32(server, s3, bucket, "big", writer, data)
    assert writer.version_id is None  # the bucket is not versioned
    assert pending_uploads(s3, bucket) == []


def test_one_write_larger_than_several_parts(s3: Any, bucket: str) -> None:
    data = payload(3 * PART + 7, seed=3)
    with cloudpipe.S3MultipartWriter(bucket, "one-write", client=s3, part_size=PART) as writer:
        assert writer.write(data) == len(data)
    assert read_object(s3, bucket, "one-write") == data
    assert writer.part_count == 4


def test_version_id_of_a_versioned_bucket(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for size in (10, PART + 10):
        with cloudpipe.S3MultipartWriter(bucket, f"v{size}", client=s3, part_size=PART) as w:
            w.write(payload(size))
        head = s3.head_object(Bucket=bucket, Key=f"v{size}")
        assert w.version_id is not None
        assert w.version_id == head["VersionId"]


def test_any_bytes_like_object(s3: Any, bucket: str) -> None:
    import array

    chunks: list[Any] = [
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"0123456789")[2:8],
        array.array("i", [1, 2, 3]),
        memoryview(b"abcdefgh")[::2],  # not contiguous
        memoryview(bytearray(b"0123456789ab")).cast("B", (3, 4)),  # 2-D: 12 bytes, len 3
    ]
    expected = b"".join(bytes(memoryview(chunk)) for chunk in chunks)
    with cloudpipe.S3MultipartWriter(bucket, "kinds", client=s3, part_size=PART) as writer:
        taken = [writer.write(chunk) for chunk in chunks]
        writer.writelines([b"x", b"yz"])
    assert taken == [memoryview(chunk).nbytes for chunk in chunks]
    assert read_object(s3, bucket, "kinds") == expected + b"xyz"


def test_caller_may_reuse_its_buffer(s3: Any, bucket: str) -> None:
    """write() keeps no view of the caller's memory: the bytearray can be resized after."""
    chunk = bytearray(b"a" * 1000)
    with cloudpipe.S3MultipartWriter(bucket, "reuse", client=s3, part_size=PART) as writer:
        writer.write(chunk)
        chunk.extend(b"b" * 10)  # BufferError if a view were kept
        chunk[:] = b"c" * 5
        writer.write(chunk)
        spanning = bytearray(b"d" * (PART + 10))  # cut at a part's end
        writer.write(spanning)
        spanning.extend(b"e")
        view = memoryview(spanning)
        writer.write(view)
        view.release()
        spanning.extend(b"f")
    expected = b"a" * 1000 + b"c" * 5 + b"d" * (PART + 10) + b"d" * (PART + 10) + b"e"
    assert read_object(s3, bucket, "reuse") == expected


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(
        st.one_of(
            st.integers(0, 64),
            st.integers(PART - 3, PART + 3),
            st.integers(0, 2 * PART + 5),
        ),
        max_size=6,
    ),
    seed=st.integers(0, 2**32),
)
def test_any_sequence_of_writes(s3: Any, bucket: str, sizes: list[int], seed: int) -> None:
    data = payload(sum(sizes), seed)
    key = f"prop-{seed}-{len(sizes)}"
    with cloudpipe.S3MultipartWriter(bucket, key, client=s3, part_size=PART) as writer:
        offset = 0
        for size in sizes:
            assert writer.write(data[offset : offset + size]) == size
            offset += size
            assert writer.tell() == offset
    assert read_object(s3, bucket, key) == data
    assert writer.part_count == (0 if len(data) < PART else -(-len(data) // PART))


@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_crc32_combine_is_the_crc32_of_the_concatenation(first: bytes, second: bytes) -> None:
    combined = crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)

"""cloudpipe.open as people expect it: exclusive create ("xb", "x"), compression, access
point ARNs, the text file's mode."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
from typing import Any

import pytest
import zstandard

import cloudpipe
from cloudpipe.text import parse_url
from tests.conftest import PART, assert_no_trace, read_object

DATA = random.Random(8).randbytes(PART // 2) * 3  # compressible: about a part compressed
DECOMPRESS = {
    "gzip": gzip.decompress,
    "bz2": bz2.decompress,
    "xz": lzma.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


def test_xb_on_a_taken_key_fails_at_open_and_leaves_the_object(
    s3: Any, bucket: str, server: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    with pytest.raises(FileExistsError, match="holds an object already") as taken:
        cloudpipe.open(f"s3://{bucket}/k", "xb", client=s3)
    assert taken.value.filename == f"s3://{bucket}/k"
    with pytest.raises(FileExistsError):
        cloudpipe.open(f"s3://{bucket}/k", "x", client=s3)
    assert read_object(s3, bucket, "k") == b"old"
    with cloudpipe.open(f"s3://{bucket}/new", "xb", client=s3, part_size=PART) as fresh:
        fresh.write(DATA)
    assert read_object(s3, bucket, "new") == DATA


def test_xb_on_a_key_taken_while_writing_fails_at_close(s3: Any, bucket: str, server: Any) -> None:
    """The store's If-None-Match refuses the Complete; the other writer's object stays."""
    if server.name == "ceph":
        pytest.xfail("Ceph 16 ignores If-None-Match on CompleteMultipartUpload")
    for size in (PART * 2 + 1, 10):  # a multipart upload, and a single PutObject
        key = f"k{size}"
        writer = cloudpipe.open(f"s3://{bucket}/{key}", "xb", client=s3, part_size=PART)
        writer.write(DATA[:size])
        s3.put_object(Bucket=bucket, Key=key, Body=b"the other writer's")
        with pytest.raises(FileExistsError) as taken:
            writer.close()
        assert isinstance(taken.value, cloudpipe.ObjectExistsError)
        assert isinstance(taken.value, cloudpipe.UploadError)
        assert taken.value.aborted
        assert read_object(s3, bucket, key) == b"the other writer's"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "zstd"])
def test_each_compression_reads_back(s3: Any, bucket: str, codec: str) -> None:
    with cloudpipe.open(
        f"s3://{bucket}/b", "wb", client=s3, part_size=PART, compression=codec
    ) as binary:
        for start in range(0, len(DATA), 100_000):
            binary.write(DATA[start : start + 100_000])
        assert binary.tell() == len(DATA)
    assert DECOMPRESS[codec](read_object(s3, bucket, "b")) == DATA
    assert binary.etag == s3.head_object(Bucket=bucket, Key="b")["ETag"]
    with cloudpipe.open(f"s3://{bucket}/t", "w", client=s3, compression=codec) as text:
        assert text.mode == "w"
        text.write("ünïcode\n" * 1000)
    assert DECOMPRESS[codec](read_object(s3, bucket, "t")) == ("ünïcode\n" * 1000).encode()


def test_infer_takes_the_codec_from_the_key(s3: Any, bucket: str) -> None:
    for key, codec in [("a.csv.gz", "gzip"), ("a.bz2", "bz2"), ("a.xz", "xz"), ("a.zst", "zstd")]:
        with cloudpipe.open(f"s3://{bucket}/{key}", "w", client=s3, compression="infer") as f:
            f.write("a,b\n1,2\n")
        assert DECOMPRESS[codec](read_object(s3, bucket, key)) == b"a,b\n1,2\n"
    with cloudpipe.open(f"s3://{bucket}/plain.csv", "w", client=s3, compression="infer") as f:
        f.write("a,b\n")
    assert read_object(s3, bucket, "plain.csv") == b"a,b\n"


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_a_compressed_write_that_fails_leaves_no_object(s3: Any, bucket: str, mode: str) -> None:
    ended: list[bool] = []
    with (
        pytest.raises(KeyError),
        cloudpipe.open(
            f"s3://{bucket}/k.gz",
            mode,
            client=s3,
            part_size=PART,
            compression="infer",
            on_end=ended.append,
        ) as f,
    ):
        f.write(random.Random(1).randbytes(2 * PART) if mode == "wb" else "x" * 100)
        raise KeyError("the producer failed")
    assert ended == [False]
    assert_no_trace(s3, bucket, "k.gz")


def test_bad_compression_and_mode_are_one_line_errors(s3: Any, bucket: str) -> None:
    with pytest.raises(ValueError, match="compression='lz4' is not one of"):
        cloudpipe.open(f"s3://{bucket}/k", "wb", client=s3, compression="lz4")
    with pytest.raises(ValueError, match="'wb', 'w', 'xb' or 'x'"):
        cloudpipe.open(f"s3://{bucket}/k", "ab", client=s3)
    with pytest.raises(ValueError, match="IfNoneMatch"):
        cloudpipe.open(f"s3://{bucket}/k", "xb", client=s3, extra_args={"IfNoneMatch": "etag"})


def test_access_point_arns_stand_for_the_bucket(s3: Any) -> None:
    arn = "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap"
    assert parse_url(f"s3://{arn}/dir/key.csv") == (arn, "dir/key.csv")
    outpost = "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01/accesspoint/ap"
    assert parse_url(f"s3://{outpost}/k") == (outpost, "k")
    with pytest.raises(ValueError, match="expected an s3://BUCKET/KEY URL"):
        parse_url(f"s3://{arn}")
    writer = cloudpipe.open(f"s3://{arn}/dir/key.csv", "wb", client=s3)  # sends nothing
    assert writer.name == f"s3://{arn}/dir/key.csv"
    writer.abort()

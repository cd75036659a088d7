"""The standard library's producers write into the writer as into any binary file."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, read_object

pytestmark = pytest.mark.usefixtures("concurrency")


def test_copyfileobj_from_a_real_pipe(s3: Any, bucket: str) -> None:
    size = 2 * PART + 333
    producer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes({size}))",
        ],
        stdout=subprocess.PIPE,
    )
    with (
        producer,
        cloudpipe.S3MultipartWriter(bucket, "piped", client=s3, part_size=PART) as writer,
    ):
        assert producer.stdout is not None
        shutil.copyfileobj(producer.stdout, writer)
    assert producer.returncode == 0
    assert read_object(s3, bucket, "piped") == random.Random(7).randbytes(size)
    assert writer.part_count == 3


def test_zipfile_streams_without_seeking(s3: Any, bucket: str) -> None:
    files = {"a.txt": b"hello\n" * 1000, "b.bin": os.urandom(PART + 100)}
    with (
        cloudpipe.S3MultipartWriter(bucket, "x.zip", client=s3, part_size=PART) as writer,
        zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for name, content in files.items():
            with archive.open(name, "w") as member:
                member.write(content)
    with zipfile.ZipFile(io.BytesIO(read_object(s3, bucket, "x.zip"))) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == files


def test_tarfile_plain_and_gzip_stream(s3: Any, bucket: str, tmp_path: Any) -> None:
    source = tmp_path / "tree"
    source.mkdir()
    (source / "one.txt").write_bytes(b"one\n" * 100)
    (source / "two.bin").write_bytes(os.urandom(PART + 5))
    for mode, key in (("w", "t.tar"), ("w|gz", "t.tar.gz")):
        with (
            cloudpipe.S3MultipartWriter(bucket, key, client=s3, part_size=PART) as writer,
            tarfile.open(fileobj=writer, mode=mode) as archive,
        ):
            archive.add(source, arcname="tree")
        with tarfile.open(fileobj=io.BytesIO(read_object(s3, bucket, key))) as archive:
            names = sorted(archive.getnames())
            member = archive.extractfile("tree/two.bin")
            assert member is not None
            assert member.read() == (source / "two.bin").read_bytes()
        assert names == ["tree", "tree/one.txt", "tree/two.bin"]


def test_gzip_file(s3: Any, bucket: str) -> None:
    lines = [f"line {i} {random.random()}\n".encode() for i in range(200_000)]
    with (
        cloudpipe.S3MultipartWriter(bucket, "log.gz", client=s3, part_size=PART) as writer,
        gzip.GzipFile(fileobj=writer, mode="wb") as compressed,
    ):
        compressed.writelines(lines)
    assert gzip.decompress(read_object(s3, bucket, "log.gz")) == b"".join(lines)


def test_text_io_wrapper(s3: Any, bucket: str) -> None:
    text = "".join(f"{i},naïve,€\n" for i in range(300_000))
    with cloudpipe.S3MultipartWriter(bucket, "t.csv", client=s3, part_size=PART) as writer:
        wrapper = io.TextIOWrapper(writer, encoding="utf-8", write_through=False)
        wrapper.write(text)
        wrapper.flush()
        wrapper.detach()
    assert read_object(s3, bucket, "t.csv").decode("utf-8") == text
    assert writer.part_count >= 1


def test_pickle(s3: Any, bucket: str) -> None:
    value = {"numbers": list(range(10_000)), "blob": os.urandom(1000)}
    with cloudpipe.S3MultipartWriter(bucket, "v.pickle", client=s3, part_size=PART) as writer:
        pickle.dump(value, writer)
    assert pickle.loads(read_object(s3, bucket, "v.pickle")) == value

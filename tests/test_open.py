"""cloudpipe.open: s3:// URLs, binary and text modes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

import cloudpipe
import cloudpipe.aio
from tests.conftest import PART, read_object
from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, make_client

pytestmark = pytest.mark.usefixtures("concurrency")


def test_text_mode_round_trip(s3: Any, bucket: str) -> None:
    rows = [f"{i},ünïcode,{i * 2}\n" for i in range(400_000)]
    with cloudpipe.open(f"s3://{bucket}/dir/rows.csv", "w", client=s3, part_size=PART) as f:
        assert isinstance(f, cloudpipe.TextWriter)
        f.writelines(rows)
    assert read_object(s3, bucket, "dir/rows.csv").decode("utf-8") == "".join(rows)
    assert f.buffer.part_count >= 2
    assert f.buffer.etag == s3.head_object(Bucket=bucket, Key="dir/rows.csv")["ETag"]


def test_text_mode_encoding_and_newline(s3: Any, bucket: str) -> None:
    with cloudpipe.open(
        f"s3://{bucket}/latin.txt", "wt", encoding="latin-1", newline="\r\n", client=s3
    ) as f:
        f.write("café\n")
    assert read_object(s3, bucket, "latin.txt") == "café\r\n".encode("latin-1")


def test_binary_mode_is_the_writer(s3: Any, bucket: str) -> None:
    with cloudpipe.open(f"s3://{bucket}/b.bin", "wb", client=s3, part_size=PART) as f:
        assert isinstance(f, cloudpipe.S3MultipartWriter)
        f.write(b"\x00\x01")
    assert read_object(s3, bucket, "b.bin") == b"\x00\x01"


def test_key_keeps_every_character(s3: Any, bucket: str) -> None:
    key = "a b/c?d#e%20f+g/é"
    with cloudpipe.open(f"s3://{bucket}/{key}", "wb", client=s3) as f:
        f.write(b"1")
    assert read_object(s3, bucket, key) == b"1"


@pytest.mark.parametrize(
    ("url", "mode", "message"),
    [
        ("s3://bucket/key", "r", "mode 'r' is not supported"),
        ("s3://bucket/key", "ab", "mode 'ab' is not supported"),
        ("s3://bucket/", "wb", "expected an s3://BUCKET/KEY URL, got 's3://bucket/'"),
        ("s3://bucket", "wb", "expected an s3://BUCKET/KEY URL"),
        ("bucket/key", "wb", "expected an s3://BUCKET/KEY URL"),
        ("https://bucket/key", "wb", "expected an s3://BUCKET/KEY URL"),
    ],
)
def test_bad_urls_and_modes(url: str, mode: str, message: str) -> None:
    client = make_client("http://127.0.0.1:9")
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        cloudpipe.open(url, mode, client=client)  # type: ignore[call-overload]


def test_binary_mode_refuses_text_arguments() -> None:
    with pytest.raises(ValueError, match="binary mode takes no encoding"):
        cloudpipe.open("s3://b/k", "wb", encoding="utf-8")  # type: ignore[call-overload]


def test_endpoint_profile_region_and_session_instead_of_a_client(
    server: Any, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MinIO, R2 or Ceph user names the store; credentials come as boto3 finds them."""
    (tmp_path / "credentials").write_text(
        f"[store]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    (tmp_path / "config").write_text("[profile store]\nregion = us-east-1\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    where = {"endpoint_url": server.endpoint_url}
    with cloudpipe.open(f"s3://{bucket}/p", "wb", profile="store", **where) as f:
        f.write(b"by profile")
    session = boto3.session.Session(ACCESS_KEY, SECRET_KEY, region_name=REGION)
    with cloudpipe.open(f"s3://{bucket}/s", "w", session=session, **where) as text:
        text.write("by session")

    async def by_region() -> None:
        async with cloudpipe.aio.open(
            f"s3://{bucket}/a", profile="store", region=REGION, **where
        ) as w:
            await w.write(b"asyncio, by region")

    asyncio.run(by_region())
    assert read_object(s3, bucket, "p") == b"by profile"
    assert read_object(s3, bucket, "s") == b"by session"
    assert read_object(s3, bucket, "a") == b"asyncio, by region"
    with pytest.raises(ValueError, match="pass client or endpoint_url, not both"):
        cloudpipe.open(f"s3://{bucket}/x", "wb", client=s3, **where)
    with pytest.raises(botocore.exceptions.ProfileNotFound, match="nope"):
        cloudpipe.open(f"s3://{bucket}/x", "wb", profile="nope", **where)

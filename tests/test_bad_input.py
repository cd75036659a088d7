"""One test per row of docs/bad-input.md: the input, the error the user sees, and the proof
that no data was lost (the object already at the key is intact, and nothing is pending)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import PART, aws_env, pending_uploads, read_object
from tests.faultproxy import FaultProxy
from tests.servers import free_ports, make_client

KEY = "precious.bin"
ORIGINAL = b"yesterday's backup, which must survive" * 1000
DOCS = Path(__file__).resolve().parent.parent / "docs" / "bad-input.md"

pytestmark = pytest.mark.usefixtures("concurrency")


@pytest.fixture
def original(s3: Any, bucket: str) -> bytes:
    s3.put_object(Bucket=bucket, Key=KEY, Body=ORIGINAL)
    return ORIGINAL


def assert_intact(s3: Any, bucket: str) -> None:
    assert read_object(s3, bucket, KEY) == ORIGINAL
    assert pending_uploads(s3, bucket) == []


@contextmanager
def raises_one_line(error: type[BaseException], match: str) -> Iterator[None]:
    with pytest.raises(error, match=match) as caught:
        yield
    assert "\n" not in str(caught.value)


def test_wrong_type(s3: Any, bucket: str, original: bytes, proxy: FaultProxy) -> None:
    with raises_one_line(TypeError, "part_size must be an int, not str"):
        cloudpipe.S3MultipartWriter(
            bucket, KEY, client=make_client(proxy.endpoint_url), part_size="8MiB"
        )  # type: ignore[arg-type]
    with raises_one_line(TypeError, "write.. argument must be a bytes-like object, not 'str'"):
        writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=make_client(proxy.endpoint_url))
        try:
            writer.write("text")  # type: ignore[arg-type]
        finally:
            writer.abort()
    assert proxy.requests() == []
    assert_intact(s3, bucket)


def test_size_out_of_range(s3: Any, bucket: str, original: bytes, proxy: FaultProxy) -> None:
    with raises_one_line(ValueError, r"part_size=1048576 is out of range: it must be 5 MiB"):
        cloudpipe.S3MultipartWriter(
            bucket, KEY, client=make_client(proxy.endpoint_url), part_size=2**20
        )
    assert proxy.requests() == []
    assert_intact(s3, bucket)


def test_bad_url(s3: Any, bucket: str, original: bytes, tmp_path: Path, server: Any) -> None:
    with raises_one_line(ValueError, "expected an s3://BUCKET/KEY URL, got 's3:/"):
        cloudpipe.open(f"s3:/{bucket}/{KEY}", "wb", client=s3)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cloudpipe")), f"{bucket}/{KEY}"],
        input=b"new",
        env=aws_env(server.endpoint_url, tmp_path),
        capture_output=True,
    )
    assert done.returncode == 2
    assert b"expected an s3://BUCKET/KEY URL" in done.stderr
    assert_intact(s3, bucket)


def test_missing_bucket(s3: Any, bucket: str, original: bytes) -> None:
    writer = cloudpipe.S3MultipartWriter("no-such-bucket-here", KEY, client=s3, part_size=PART)
    with raises_one_line(cloudpipe.UploadError, "NoSuchBucket"):
        writer.write(b"n" * PART)
    assert writer.closed
    assert_intact(s3, bucket)


def test_wrong_credentials(server: Any, s3: Any, bucket: str, original: bytes) -> None:
    if server.name == "moto":
        pytest.skip("moto's server accepts any credentials")
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="wrong",
        aws_secret_access_key="wrong",
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    for size in (10, PART):  # the single PUT and the multipart path
        writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=client, part_size=PART)
        with raises_one_line(
            cloudpipe.UploadError, r"failed: (InvalidAccessKeyId|SignatureDoes|AccessDenied)"
        ):
            writer.write(b"w" * size)
            writer.close()
    assert_intact(s3, bucket)


def test_unreachable_endpoint(s3: Any, bucket: str, original: bytes) -> None:
    (port,) = free_ports(1)
    client = make_client(f"http://127.0.0.1:{port}", connect_timeout=1)
    writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=client, max_attempts=2)
    writer.write(b"u" * 10)
    with raises_one_line(
        cloudpipe.EndpointUnreachableError,
        re.escape(
            f"PutObject failed: http://127.0.0.1:{port} could not be reached (connection "
            "refused; 2 attempts"
        ),
    ):
        writer.close()
    assert_intact(s3, bucket)


def test_permission_denied_on_complete_only(
    s3: Any, bucket: str, original: bytes, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "Access Denied", method="POST", path_contains="uploadId=")
    writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=proxied, part_size=PART)
    writer.write(b"p" * (2 * PART))
    with raises_one_line(cloudpipe.UploadError, "CompleteMultipartUpload failed: AccessDenied"):
        writer.close()
    assert_intact(s3, bucket)


def test_key_over_1024_bytes(s3: Any, bucket: str, original: bytes) -> None:
    with raises_one_line(ValueError, "key is 1025 bytes in UTF-8; S3 allows at most 1024"):
        cloudpipe.S3MultipartWriter(bucket, "k" * 1025, client=s3)
    assert_intact(s3, bucket)


def test_extra_args_of_the_wrong_type(s3: Any, bucket: str, original: bytes) -> None:
    with raises_one_line(ValueError, "extra_args: Invalid type for parameter Metadata"):
        cloudpipe.S3MultipartWriter(bucket, KEY, client=s3, extra_args={"Metadata": "a=b"})
    with raises_one_line(ValueError, "extra_args: unknown key 'ContentTypo'"):
        cloudpipe.S3MultipartWriter(bucket, KEY, client=s3, extra_args={"ContentTypo": "x"})
    assert_intact(s3, bucket)


def test_writing_after_a_failure(
    s3: Any, bucket: str, original: bytes, proxy: FaultProxy, proxied: Any
) -> None:
    proxy.respond(403, "AccessDenied", "denied", method="PUT", path_contains="partNumber=1")
    writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=proxied, part_size=PART)
    with pytest.raises(cloudpipe.UploadError):
        writer.write(b"f" * PART)
        writer.close()
    with raises_one_line(
        ValueError, r"closed writer .* \(aborted after UploadError: .*AccessDenied"
    ):
        writer.write(b"more")
    assert_intact(s3, bucket)


def test_writing_after_close(s3: Any, bucket: str) -> None:
    writer = cloudpipe.S3MultipartWriter(bucket, "closed", client=s3)
    writer.write(b"kept")
    writer.close()
    with raises_one_line(ValueError, "I/O operation on closed writer .* [(]completed[)]"):
        writer.write(b"lost?")
    assert read_object(s3, bucket, "closed") == b"kept"


def test_callback_that_raises(s3: Any, bucket: str, original: bytes) -> None:
    def drained(number: int, nbytes: int) -> None:
        raise RuntimeError("progress display crashed")

    writer = cloudpipe.S3MultipartWriter(bucket, KEY, client=s3, part_size=PART, on_drained=drained)
    with raises_one_line(RuntimeError, "progress display crashed"):
        writer.write(b"c" * (PART + 1))
        writer.close()
    assert writer.closed
    assert_intact(s3, bucket)


def test_input_shorter_than_expected_size(
    server: Any, s3: Any, bucket: str, original: bytes, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("cloudpipe")),
            f"s3://{bucket}/{KEY}",
            "--part-size",
            "5MiB",
            "--expected-size",
            str(3 * PART),
        ],
        input=b"s" * (2 * PART),
        env=aws_env(server.endpoint_url, tmp_path),
        capture_output=True,
    )
    assert done.returncode == 1
    assert b"short of --expected-size" in done.stderr
    assert_intact(s3, bucket)


def test_key_with_control_characters(s3: Any, bucket: str, original: bytes) -> None:
    writer = cloudpipe.S3MultipartWriter("no-such-bucket-here", "a\nb\tc", client=s3)
    with raises_one_line(
        cloudpipe.UploadError, r"^'s3://no-such-bucket-here/a\\nb\\tc': PutObject failed"
    ):
        writer.write(b"x")
        writer.close()
    with raises_one_line(ValueError, r"closed writer 's3://no-such-bucket-here/a\\nb\\tc'"):
        writer.write(b"more")
    assert_intact(s3, bucket)


def test_numpy_integers(s3: Any, bucket: str, original: bytes) -> None:
    import numpy as np

    with cloudpipe.S3MultipartWriter(
        bucket,
        "numpy",
        client=s3,
        part_size=np.int64(PART),
        expected_size=np.uint32(PART + 3),
        max_attempts=np.int8(2),
        max_concurrency=np.int16(1),
    ) as writer:
        writer.write(b"n" * (PART + 3))
    assert writer.part_count == 2
    assert read_object(s3, bucket, "numpy") == b"n" * (PART + 3)
    with raises_one_line(TypeError, "part_size must be an int, not float64"):
        cloudpipe.S3MultipartWriter(bucket, KEY, client=s3, part_size=np.float64(PART))
    assert_intact(s3, bucket)


SSE_C_KEY = "0123456789abcdef0123456789abcdef"


def test_sse_c_key_is_never_shown(s3: Any, bucket: str, original: bytes) -> None:
    with raises_one_line(ValueError, "extra_args SSECustomerKey must be str or bytes, not int"):
        cloudpipe.S3MultipartWriter(
            bucket, KEY, client=s3, extra_args={"SSECustomerKey": 12345678901234567890}
        )
    messages = []
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY}
    for extra in ({**sse, "SSECustomerAlgorithm": 7}, {**sse, "Unknown": 1}):
        with pytest.raises(ValueError, match=r"^extra_args") as caught:
            cloudpipe.S3MultipartWriter(bucket, KEY, client=s3, extra_args=extra)
        messages.append(str(caught.value))
    writer = cloudpipe.S3MultipartWriter(
        "no-such-bucket-here", KEY, client=s3, part_size=PART, extra_args=sse
    )
    with pytest.raises(cloudpipe.UploadError) as failed:
        writer.write(b"s" * PART)
    messages += [str(failed.value), repr(writer), str(failed.value.__cause__)]
    for message in messages:
        assert SSE_C_KEY not in message
        assert "12345678901234567890" not in message
    assert_intact(s3, bucket)


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        ({"Metadata": {"owner": "Zoë"}}, "extra_args Metadata 'owner': the value is not printable"),
        ({"Metadata": {"note": "a\r\nX-Evil: 1"}}, "extra_args Metadata 'note': the value is not"),
        ({"ContentType": "text/plain\r\n"}, "extra_args ContentType='text/plain\\r\\n' is not"),
    ],
    ids=["non-ascii", "crlf-metadata", "crlf-header"],
)
def test_metadata_that_cannot_be_a_header(
    s3: Any, bucket: str, original: bytes, proxy: FaultProxy, extra_args: Any, message: str
) -> None:
    with raises_one_line(ValueError, re.escape(message)):
        cloudpipe.S3MultipartWriter(
            bucket, KEY, client=make_client(proxy.endpoint_url), extra_args=extra_args
        )
    assert proxy.requests() == []
    assert_intact(s3, bucket)


def test_largest_part_size_with_a_tiny_stream(s3: Any, bucket: str, original: bytes) -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        with cloudpipe.S3MultipartWriter(bucket, "tiny", client=s3, part_size=5 * 2**30) as w:
            w.write(b"tiny!")
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak} bytes traced for a 5-byte stream"
    assert read_object(s3, bucket, "tiny") == b"tiny!"
    assert_intact(s3, bucket)


def test_text_mode_mistakes_leave_nothing_open(
    server: Any, s3: Any, bucket: str, original: bytes, tmp_path: Path
) -> None:
    program = f"""
import gc, cloudpipe
url = "s3://{bucket}/{KEY}"
for kwargs in ({{"encoding": "nope"}}, {{"newline": "\\t"}}):
    try:
        cloudpipe.open(url, "w", **kwargs)
    except (LookupError, ValueError) as error:
        print(type(error).__name__, error)
text = cloudpipe.open(url, "w")
binary = text.detach()
binary.abort()
del text
gc.collect()
print("done")
"""
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", program],
        env=aws_env(server.endpoint_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "LookupError unknown encoding: nope",
        "ValueError illegal newline value: '\\t'",
        "done",
    ]
    assert done.stderr == ""
    assert_intact(s3, bucket)


def test_docs_table_lists_exactly_these_tests() -> None:
    documented = re.findall(r"`(test_\w+)`", DOCS.read_text())
    defined = [
        name
        for name in re.findall(r"^def (test_\w+)", Path(__file__).read_text(), re.M)
        if name != "test_docs_table_lists_exactly_these_tests"
    ]
    assert documented == defined

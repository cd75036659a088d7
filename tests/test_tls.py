"""The writer's and the command's core cases over HTTPS, where botocore signs otherwise.

Over TLS, a body that carries its CRC32 is sent as it is, unhashed (SigV4's UNSIGNED-PAYLOAD,
as botocore does for checksums it computes itself) and uncopied (the part buffer itself is
the request's body); over plain HTTP it is still hashed. The server is SeaweedFS with a
certificate made at start; clients trust it through the CA bundle.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloudpipe
from tests.conftest import (
    PART,
    SELECTED,
    assert_no_trace,
    aws_env,
    fresh_bucket,
    pending_uploads,
    read_object,
)
from tests.servers import SeaweedFSOverTLS, make_client

pytestmark = pytest.mark.skipif(
    "seaweedfs" not in SELECTED, reason="over TLS with SeaweedFS: the runs that choose it"
)

DATA = random.Random(11).randbytes(2 * PART + 777)
UNSIGNED = b"UNSIGNED-PAYLOAD"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[SeaweedFSOverTLS]:
    with SeaweedFSOverTLS() as running:
        yield running


@pytest.fixture
def tls(tls_server: SeaweedFSOverTLS) -> Any:
    """A client of the server over HTTPS, trusting its certificate."""
    return tls_server.client()


@pytest.fixture
def tls_bucket(tls: Any) -> Iterator[str]:
    with fresh_bucket(tls) as name:
        yield name


def bodies(client: Any) -> list[tuple[str, bytes, Any]]:
    """What each body-carrying request sends, as it leaves: operation, payload hash, body."""
    sent: list[tuple[str, bytes, Any]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        sent.append((operation, request.headers["X-Amz-Content-SHA256"], request.body))

    for operation in ("UploadPart", "PutObject"):
        client.meta.events.register(f"before-send.s3.{operation}", record)
    return sent


@pytest.mark.parametrize("concurrency", [1, 3])
def test_parts_go_unhashed_and_uncopied_over_tls(
    tls: Any, tls_bucket: str, concurrency: int
) -> None:
    sent = bodies(tls)
    buffers: set[int] = set()
    with cloudpipe.S3MultipartWriter(
        tls_bucket, "k", client=tls, part_size=PART, max_concurrency=concurrency
    ) as writer:
        for start in range(0, len(DATA), 1 << 20):
            writer.write(DATA[start : start + (1 << 20)])
            buffers.add(id(writer._buffer._data))
    assert read_object(tls, tls_bucket, "k") == DATA
    assert writer.checksum is not None
    assert writer.checksum["type"] == "FULL_OBJECT"
    assert [operation for operation, _, _ in sent] == ["UploadPart"] * 3
    assert all(payload == UNSIGNED for _, payload, _ in sent)
    # each body is one of the writer's own part buffers, handed over as it is
    assert all(type(body) is bytearray for _, _, body in sent)
    assert {id(body) for _, _, body in sent[:2]} <= buffers


def test_the_same_over_plain_http_is_hashed(tls_server: SeaweedFSOverTLS, tls_bucket: str) -> None:
    """The control: SigV4's payload hash stays where nothing else protects the body."""
    http = make_client(tls_server.http_url)
    sent = bodies(http)
    with cloudpipe.S3MultipartWriter(tls_bucket, "k", client=http, part_size=PART) as writer:
        writer.write(DATA)
    assert read_object(http, tls_bucket, "k") == DATA
    assert len(sent) == 3
    assert all(len(payload) == 64 and payload != UNSIGNED for _, payload, _ in sent)


def test_a_client_told_to_sign_payloads_still_does(
    tls_server: SeaweedFSOverTLS, tls_bucket: str
) -> None:
    signing = tls_server.client(s3={"payload_signing_enabled": True})
    sent = bodies(signing)
    with cloudpipe.S3MultipartWriter(tls_bucket, "k", client=signing, part_size=PART) as w:
        w.write(DATA)
    assert read_object(signing, tls_bucket, "k") == DATA
    assert all(payload != UNSIGNED for _, payload, _ in sent)


@pytest.mark.parametrize("checksum", ["crc32", "md5"])
def test_a_short_stream_is_one_unhashed_put_over_tls(
    tls: Any, tls_bucket: str, checksum: str
) -> None:
    sent = bodies(tls)
    with cloudpipe.S3MultipartWriter(tls_bucket, "k", client=tls, checksum=checksum) as writer:
        writer.write(b"short")
    assert read_object(tls, tls_bucket, "k") == b"short"
    assert [(operation, payload) for operation, payload, _ in sent] == [("PutObject", UNSIGNED)]


def test_md5_mode_multipart_over_tls(tls: Any, tls_bucket: str) -> None:
    with cloudpipe.S3MultipartWriter(
        tls_bucket, "k", client=tls, part_size=PART, checksum="md5"
    ) as writer:
        writer.write(DATA)
    assert read_object(tls, tls_bucket, "k") == DATA
    assert writer.etag is not None
    assert writer.etag.endswith('-3"')


def test_abort_over_tls_leaves_nothing(tls: Any, tls_bucket: str) -> None:
    with pytest.raises(RuntimeError):  # noqa: SIM117
        with cloudpipe.S3MultipartWriter(tls_bucket, "k", client=tls, part_size=PART) as w:
            w.write(DATA)
            raise RuntimeError("the producer failed")
    assert w.ending.state is cloudpipe.State.ABORTED
    assert_no_trace(tls, tls_bucket, "k")


def test_kept_upload_resumes_over_tls(tls: Any, tls_bucket: str, tmp_path: Path) -> None:
    journal = tmp_path / "j"
    with pytest.raises(KeyboardInterrupt):  # noqa: SIM117
        with cloudpipe.S3MultipartWriter(
            tls_bucket, "k", client=tls, part_size=PART, journal=journal
        ) as writer:
            writer.write(DATA[: 2 * PART + 5])
            raise KeyboardInterrupt
    assert writer.ending.state is cloudpipe.State.KEPT
    with cloudpipe.resume(journal, client=tls, source=io.BytesIO(DATA)) as resumed:
        assert resumed.tell() == 2 * PART
        resumed.write(DATA[resumed.tell() :])
    assert read_object(tls, tls_bucket, "k") == DATA
    assert not journal.exists()


def test_command_over_tls(
    tls_server: SeaweedFSOverTLS, tls: Any, tls_bucket: str, tmp_path: Path
) -> None:
    env = aws_env(tls_server.endpoint_url, tmp_path)
    assert tls_server.ca_bundle is not None
    env["AWS_CA_BUNDLE"] = tls_server.ca_bundle
    command = [str(Path(sys.executable).with_name("cloudpipe"))]
    url = f"s3://{tls_bucket}/cmd"
    done = subprocess.run(
        [*command, "--part-size", "5MiB", "--json", url],
        input=DATA,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert read_object(tls, tls_bucket, "cmd") == DATA
    failed = subprocess.run(
        [*command, "--part-size", "5MiB", url, "--", "sh", "-c", "head -c 6000000; exit 3"],
        input=DATA,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert failed.returncode == 1, failed.stderr
    assert read_object(tls, tls_bucket, "cmd") == DATA  # the old object stays
    assert not pending_uploads(tls, tls_bucket)

"""examples/asgi_upload.py, a Starlette app served by uvicorn on 127.0.0.1, receiving chunked
bodies of unknown length from real HTTP clients and streaming them through cloudpipe.aio."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PART, assert_no_trace, aws_env, pending_uploads, read_object, wait_until
from tests.faultproxy import FaultProxy, Rule
from tests.servers import proc_status

APP = Path(__file__).resolve().parent.parent / "examples" / "asgi_upload.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def status(self, field: str) -> int:
        """A memory field of the server process's /proc status, in bytes."""
        return proc_status(self.process.pid, field)

    def upload(self, key: str, body: Iterator[bytes]) -> dict[str, Any]:
        """PUT ``body`` chunked (no length given), as a streaming client sends it."""
        with contextlib.closing(self.connection()) as connection:
            connection.request("PUT", f"/upload/{key}", body=body, encode_chunked=True)
            answer = connection.getresponse()
            text = answer.read()
        assert answer.status == 200, text
        return dict(json.loads(text))


@pytest.fixture
def service(proxy: FaultProxy, bucket: str, tmp_path: Path) -> Iterator[Service]:
    """The app, reaching the store through the fault proxy."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(APP), bucket, "--port", str(port), "--part-size", str(PART)],
        env=aws_env(proxy.endpoint_url, tmp_path),
    )
    running = Service(process, port)

    def answers() -> bool:
        assert process.poll() is None, "the service exited"
        try:
            with contextlib.closing(running.connection()) as connection:
                connection.request("GET", "/ping")
                return connection.getresponse().read() == b"pong"
        except OSError:
            return False

    try:
        wait_until(answers, "the service")
        yield running
    finally:
        process.terminate()
        process.wait(timeout=30)


def pieces(data: bytes) -> Iterator[bytes]:
    """Chunks of uneven sizes, as a network delivers them."""
    sizes = random.Random(3)
    start = 0
    while start < len(data):
        step = sizes.randrange(1, 200_000)
        yield data[start : start + step]
        start += step


def test_a_chunked_body_of_unknown_length_lands_as_one_object(
    service: Service, s3: Any, bucket: str
) -> None:
    data = random.Random(1).randbytes(3 * PART + 777)
    answer = service.upload("in/body.bin", pieces(data))
    assert answer["bytes"] == len(data)
    assert answer["parts"] == 4
    assert read_object(s3, bucket, "in/body.bin") == data
    assert answer["etag"] == s3.head_object(Bucket=bucket, Key="in/body.bin")["ETag"]
    assert pending_uploads(s3, bucket) == []


def test_a_client_that_disconnects_midway_leaves_nothing(
    service: Service, s3: Any, bucket: str
) -> None:
    client = socket.create_connection(("127.0.0.1", service.port))
    client.sendall(
        b"PUT /upload/cut.bin HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    block = random.Random(2).randbytes(1 << 20)
    for _ in range(7):  # a part and some: the upload exists, with a part stored
        client.sendall(b"%x\r\n%s\r\n" % (len(block), block))

    def part_stored() -> bool:
        uploads = pending_uploads(s3, bucket)
        return bool(uploads) and bool(
            s3.list_parts(Bucket=bucket, Key="cut.bin", UploadId=uploads[0]["UploadId"]).get(
                "Parts"
            )
        )

    wait_until(part_stored, "part 1 of the upload")
    client.close()  # gone, without the last chunk

    def gone() -> bool:
        return pending_uploads(s3, bucket) == []

    wait_until(gone, "the abort", seconds=20)
    assert_no_trace(s3, bucket, "cut.bin")
    assert service.process.poll() is None  # the service lives on
    answer = service.upload("after.bin", iter([b"still serving"]))
    assert answer["bytes"] == 13


@pytest.mark.alone
def test_server_memory_stays_within_two_parts_while_a_body_streams(
    service: Service, s3: Any, bucket: str
) -> None:
    """Synchronous parts: the part being filled and nothing else grows with the body (were
    the body held, the peak would grow by 20 parts)."""
    service.upload("warm.bin", iter([b"x" * (PART + 1)]))  # imports, client, a part's buffer
    Path(f"/proc/{service.process.pid}/clear_refs").write_text("5")  # restart the peak
    baseline = service.status("VmRSS")
    block = random.Random(4).randbytes(1 << 20)
    answer = service.upload("big.bin", iter([block] * (20 * PART // len(block))))
    assert answer["bytes"] == 20 * PART
    peak = service.status("VmHWM") - baseline
    assert peak <= 2 * PART + 8 * 2**20, f"{peak / 2**20:.1f} MiB over the baseline"
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == 20 * PART


@pytest.mark.alone
def test_ping_answers_while_a_part_uploads(
    service: Service, proxy: FaultProxy, s3: Any, bucket: str
) -> None:
    """The loop serves other requests while an upload's part is on its way (each part
    takes 0.5 s more here; pings come while parts are held)."""
    proxy.add(Rule("hold", method="PUT", path_contains="partNumber=", seconds=0.5, times=10**6))
    block = random.Random(6).randbytes(1 << 20)
    slow: list[float] = []

    def body() -> Iterator[bytes]:
        for _ in range(4 * PART // len(block)):
            yield block
            started = time.perf_counter()
            with contextlib.closing(service.connection()) as connection:
                connection.request("GET", "/ping")
                assert connection.getresponse().read() == b"pong"
            slow.append(time.perf_counter() - started)

    started = time.perf_counter()
    service.upload("pinged.bin", body())
    assert time.perf_counter() - started >= 4 * 0.5
    assert len(slow) == 20
    assert max(slow) < 0.25, sorted(slow)[-3:]
    assert s3.head_object(Bucket=bucket, Key="pinged.bin")["ContentLength"] == 4 * PART

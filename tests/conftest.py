"""Fixtures: real S3 servers started by the suite, a fresh bucket per test, a fault proxy."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import cloudpipe
import cloudpipe.retry
from tests.faultproxy import FaultProxy
from tests.servers import (
    ACCESS_KEY,
    DEFAULT_SERVERS,
    REGION,
    SECRET_KEY,
    SERVERS,
    S3Server,
    make_client,
)

# Never ask the EC2 metadata address for credentials: only 127.0.0.1 is reachable here.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

PART = 5 * 2**20  # S3's smallest part: the tests use it to cross part boundaries cheaply

_bucket_numbers = itertools.count()


FAST_BACKOFF = cloudpipe.retry.Backoff(first=0.01, growth=2.0, cap=0.05)


@pytest.fixture(autouse=True)
def fast_backoff(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries in this process wait milliseconds, not seconds, except in the tests marked
    ``real_backoff``, which measure the real spacing (and in child processes)."""
    if request.node.get_closest_marker("real_backoff") is None:
        monkeypatch.setattr(cloudpipe.retry, "BACKOFF", FAST_BACKOFF)


SELECTED = os.environ.get("CLOUDPIPE_SERVERS", ",".join(DEFAULT_SERVERS)).split(",")


@pytest.fixture(scope="session", params=SELECTED)
def server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """Each S3 server the suite runs against (CLOUDPIPE_SERVERS, default moto and SeaweedFS);
    every test using it runs once per server."""
    with SERVERS[request.param]() as running:
        yield running


SERVER_TESTS_ONLY = os.environ.get("CLOUDPIPE_SERVER_TESTS_ONLY") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``client_timing`` measure cloudpipe's own clock (back-off, deadlines), and
    those marked ``one_server`` check what does not depend on the server (the docs' code):
    the same whatever the server, they run against the first selected server only.

    The writer's tests at a ``max_concurrency`` above 1 (the thread pool, the same whatever
    the server) run against the last selected server only (SeaweedFS by default).

    Tests marked ``long_wait`` are put first.

    With CLOUDPIPE_SERVER_TESTS_ONLY=1 (make test-ceph: a run against one more server after
    make test), the tests that use no server at all, or whose result does not depend on it
    (client_timing, one_server), are left out too: they ran already."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        server_name = params.get("server")
        timing = any(item.get_closest_marker(name) for name in ("client_timing", "one_server"))
        serverless = SERVER_TESTS_ONLY and (server_name is None or timing)
        repeated = timing and server_name not in (None, SELECTED[0])
        pooled = params.get("concurrency", 1) > 1 and server_name not in (None, SELECTED[-1])
        (dropped if serverless or repeated or pooled else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # the tests that wait most of a minute go first, so that none ends the parallel run alone
    items[:] = sorted(kept, key=lambda item: item.get_closest_marker("long_wait") is None)


CONCURRENCY = [int(n) for n in os.environ.get("CLOUDPIPE_CONCURRENCY", "1,3").split(",")]


@pytest.fixture(params=CONCURRENCY, ids=lambda n: f"concurrency{n}")
def concurrency(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Runs a test once per max_concurrency, as the default of every writer it makes.

    Modules that exercise the writer's behaviour opt in with
    ``pytestmark = pytest.mark.usefixtures("concurrency")``.
    """
    defaults = cloudpipe.S3MultipartWriter.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "max_concurrency", request.param)
    return int(request.param)


@pytest.fixture(scope="session")
def s3(server: S3Server) -> Any:
    return server.client()


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A new bucket for one test, emptied and deleted afterwards (servers run out of room)."""
    with fresh_bucket(s3) as name:
        yield name


@contextlib.contextmanager
def fresh_bucket(client: Any) -> Iterator[str]:
    """A new bucket, emptied and deleted when the block ends."""
    name = f"cp-{os.getpid()}-{next(_bucket_numbers)}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        remove_bucket(client, name)


def remove_bucket(s3: Any, name: str) -> None:
    for upload in pending_uploads(s3, name):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    versions = s3.list_object_versions(Bucket=name)
    for entry in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def proxy(server: S3Server) -> Iterator[FaultProxy]:
    running = FaultProxy(server.endpoint_url)
    yield running
    running.close()


@pytest.fixture
def proxied(proxy: FaultProxy) -> Any:
    """A client whose requests go through the fault proxy."""
    return make_client(proxy.endpoint_url)


def aws_env(endpoint_url: str | None, tmp_path: Path, credentials: bool = True) -> dict[str, str]:
    """The environment of a process that should reach only ``endpoint_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
    }
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    if credentials:
        env |= {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    return env


def stream(
    client: Any, bucket: str, data: bytes, key: str = "k", **writer_args: Any
) -> cloudpipe.S3MultipartWriter:
    """Write ``data`` in 1 MiB writes through a writer with 5 MiB parts, and close it."""
    with cloudpipe.S3MultipartWriter(
        bucket, key, client=client, part_size=PART, **writer_args
    ) as writer:
        for start in range(0, len(data), 1 << 20):
            writer.write(data[start : start + (1 << 20)])
    return writer


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} never came"
        time.sleep(0.02)


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def pending_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


def assert_no_trace(s3: Any, bucket: str, key: str) -> None:
    """Nothing of an aborted upload is left: no object, no pending multipart upload."""
    assert not object_exists(s3, bucket, key), f"s3://{bucket}/{key} exists"
    assert pending_uploads(s3, bucket) == [], "a multipart upload was left pending"

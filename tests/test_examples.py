"""Each script in examples/ runs against a local server and stores what it says it does."""

from __future__ import annotations

import csv
import gzip
import io
import json
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PART, assert_no_trace, aws_env, read_object
from tests.servers import free_ports

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.one_server  # what an example does is the same on every store


def run_example(
    name: str, args: list[str], server: Any, tmp_path: Path, *, succeeds: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=aws_env(server.endpoint_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode == 0) == succeeds, done.stderr
    return done


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hello')\n" * 100)
    (root / "README").write_text("a project\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * (PART // 256 + 1000))
    return root


def test_zip_directory(server: Any, s3: Any, bucket: str, tree: Path, tmp_path: Path) -> None:
    run_example("zip_directory.py", [str(tree), f"s3://{bucket}/p.zip"], server, tmp_path)
    with zipfile.ZipFile(io.BytesIO(read_object(s3, bucket, "p.zip"))) as archive:
        assert sorted(archive.namelist()) == ["README", "data.bin", "src/main.py"]
        assert archive.read("data.bin") == (tree / "data.bin").read_bytes()


def test_nightly_backup(server: Any, s3: Any, bucket: str, tree: Path, tmp_path: Path) -> None:
    out = run_example(
        "nightly_backup.py", [str(tree), f"s3://{bucket}/nightly/"], server, tmp_path
    ).stdout
    (listed,) = s3.list_objects_v2(Bucket=bucket, Prefix="nightly/")["Contents"]
    assert listed["Key"].startswith("nightly/project-")
    assert "backup complete" in out
    with tarfile.open(fileobj=io.BytesIO(read_object(s3, bucket, listed["Key"]))) as archive:
        member = archive.extractfile("project/src/main.py")
        assert member is not None
        assert member.read() == (tree / "src" / "main.py").read_bytes()


def test_nightly_backup_of_a_missing_directory_stores_nothing(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    args = ["/nonexistent", f"s3://{bucket}/n"]
    done = run_example("nightly_backup.py", args, server, tmp_path, succeeds=False)
    assert "backup aborted" in done.stdout
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert_no_trace(s3, bucket, "n")


def test_dataframe_to_csv_and_parquet(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    run_example("dataframe_to_s3.py", [f"s3://{bucket}/orders", "50000"], server, tmp_path)
    rows = list(csv.DictReader(io.StringIO(read_object(s3, bucket, "orders/orders.csv").decode())))
    assert len(rows) == 50_000
    assert rows[0]["order_id"] == "0"
    table = pq.read_table(io.BytesIO(read_object(s3, bucket, "orders/orders.parquet")))
    assert table.num_rows == 50_000
    assert table.column_names == ["order_id", "customer", "amount", "placed"]
    assert [float(r["amount"]) for r in rows[:100]] == table.column("amount").to_pylist()[:100]


def test_jsonl_log(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    run_example("jsonl_log.py", [f"s3://{bucket}/log.jsonl.gz", "200000"], server, tmp_path)
    raw = read_object(s3, bucket, "log.jsonl.gz")
    records = [json.loads(line) for line in gzip.decompress(raw).splitlines()]
    assert [r["seq"] for r in records] == list(range(200_000))
    head = s3.head_object(Bucket=bucket, Key="log.jsonl.gz")
    assert head["ContentType"] == "application/x-ndjson"


def test_subprocess_output(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    producer = f"import sys; sys.stdout.buffer.write(bytes(range(256)) * {PART // 128})"
    args = [f"s3://{bucket}/out.bin", sys.executable, "-c", producer]
    run_example("subprocess_output.py", args, server, tmp_path)
    assert read_object(s3, bucket, "out.bin") == bytes(range(256)) * (PART // 128)


def test_subprocess_that_fails_stores_nothing(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    producer = f"import sys; sys.stdout.buffer.write(b'x' * {PART + 1}); sys.exit(3)"
    args = [f"s3://{bucket}/bad.bin", sys.executable, "-c", producer]
    done = run_example("subprocess_output.py", args, server, tmp_path, succeeds=False)
    assert "exited with 3: upload aborted" in done.stderr
    assert_no_trace(s3, bucket, "bad.bin")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_prints_exports_that_the_command_can_use(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """``make serve PORT=N``: the server it starts on that port answers the command with the
    exports it prints, and Ctrl-C or SIGTERM stops it, SeaweedFS with it."""
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "serve.py"), "--bucket", "tryme", "--port", str(port)],
        env=aws_env(None, tmp_path, credentials=False),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        while len(exports) < 4:
            line = server.stdout.readline()
            assert line, "serve.py ended early"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
        env = aws_env(None, tmp_path, credentials=False) | exports
        done = subprocess.run(
            [sys.executable, "-m", "cloudpipe", "s3://tryme/numbers.txt"],
            input=b"1\n2\n3\n",
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert exports["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(stop)
        assert server.wait(timeout=30) == 0
        if server.stdout is not None:
            server.stdout.close()
    with pytest.raises(ConnectionRefusedError):  # SeaweedFS stopped with it: nothing answers
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_dask_partitions_then_a_manifest(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    done = run_example(
        "dask_partitions.py",
        [f"s3://{bucket}/export/", "--partitions", "6", "--rows", "20000", "--workers", "2"],
        server,
        tmp_path,
    )
    assert "exported 120000 rows in 6 objects" in done.stdout
    manifest = json.loads(read_object(s3, bucket, "export/_manifest.json"))
    assert [part["key"] for part in manifest["parts"]] == [
        f"export/part-{n:05d}.csv.gz" for n in range(6)
    ]
    for number, part in enumerate(manifest["parts"]):
        assert part["etag"] == s3.head_object(Bucket=bucket, Key=part["key"])["ETag"]
        rows = list(
            csv.reader(io.StringIO(gzip.decompress(read_object(s3, bucket, part["key"])).decode()))
        )
        assert rows[0] == ["id", "partition", "value"]
        assert len(rows) == 20001
        assert {row[1] for row in rows[1:]} == {str(number)}
    # a rerun into the same prefix fails, and replaces neither the parts nor the manifest
    again = run_example(
        "dask_partitions.py",
        [f"s3://{bucket}/export/", "--partitions", "2", "--rows", "10"],
        server,
        tmp_path,
        succeeds=False,
    )
    assert "FileExistsError" in again.stderr
    assert json.loads(read_object(s3, bucket, "export/_manifest.json")) == manifest
    for part in manifest["parts"]:
        assert part["etag"] == s3.head_object(Bucket=bucket, Key=part["key"])["ETag"]

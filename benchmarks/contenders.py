"""One contender streaming one object, measured from inside its own process.

    python benchmarks/contenders.py NAME ENDPOINT BUCKET KEY SIZE PART_SIZE

Prints one JSON line: wall and CPU seconds of the stream, peak RSS over the baseline taken
after imports, the client and one warm-up request, and the requests the client sent. The
producer writes 64 KiB chunks cut from a 16 MiB block of random bytes, each a fresh ``bytes``
object (as ``read()`` from a pipe or ``str.encode()`` give: a contender that keeps references
rather than copying cannot hide its memory); upload_fileobj and minio, which read instead of
being written to, read them from a pipe filled by a separate process. An https ENDPOINT is
trusted through AWS_CA_BUNDLE (SSL_CERT_FILE for obstore).

Self-contained (standard library plus the contender's own package) so that it also runs in
s3fs's separate virtual environment.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

CHUNK = 64 * 1024
POOL = os.urandom(16 * 2**20)
PRODUCER = (
    "import os, sys\n"
    "pool = os.urandom(16 * 2**20); out = sys.stdout.buffer; size = {size}; sent = 0\n"
    "while sent < size:\n"
    "    n = min({chunk}, size - sent); start = sent % len(pool)\n"
    "    out.write(pool[start:start + n] if start + n <= len(pool) else pool[:n]); sent += n\n"
)


def chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(CHUNK, size - sent)
        start = sent % len(POOL)
        yield POOL[start : start + n] if start + n <= len(POOL) else POOL[:n]
        sent += n


def status(field: str) -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def boto3_client(endpoint: str, connections: int = 10) -> Any:
    """A boto3 client keeping ``connections`` (botocore's default: 10)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(max_pool_connections=connections),
    )


def counted(client: Any) -> list[int]:
    sent = [0]

    def count(**kwargs: Any) -> None:
        sent[0] += 1

    client.meta.events.register("before-send.s3", count)
    return sent


def raw(
    endpoint: str, bucket: str, key: str, size: int, part: int
) -> tuple[Callable[[], None], list[int]]:
    """The floor: one buffer, plain create / upload_part(ContentLength) / complete calls."""
    client = boto3_client(endpoint)
    client.head_bucket(Bucket=bucket)
    sent = counted(client)

    def run() -> None:
        buffer = bytearray(part)
        view = memoryview(buffer)
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts: list[dict[str, Any]] = []
        filled = 0

        def send(body: bytes | bytearray) -> None:
            number = len(parts) + 1
            answer = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=body,
                ContentLength=len(body),
            )
            parts.append({"ETag": answer["ETag"], "PartNumber": number})

        for chunk in chunks(size):
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            if filled == part:
                send(buffer)
                filled = 0
        if filled:
            send(bytes(view[:filled]))
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )

    return run, sent


def cloudpipe_writer(
    concurrency: int | str, checksum: str = "crc32", part_size: int = 0
) -> Callable[..., tuple[Callable[[], None], list[int]]]:
    """The writer with ``max_concurrency=concurrency``, in parts of ``part_size`` bytes (0:
    the run's part size)."""

    def prepare(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
        import cloudpipe

        # auto as the writer's own client would run it (64 connections): with botocore's
        # 10 it stops at 10 parts in flight, and the client is the one thing it cannot choose
        connections = 64 if concurrency == "auto" else max(10, int(concurrency))
        client = boto3_client(endpoint, connections)
        client.head_bucket(Bucket=bucket)
        sent = counted(client)

        def run() -> None:
            with cloudpipe.S3MultipartWriter(
                bucket,
                key,
                client=client,
                part_size=part_size or part,
                max_concurrency=concurrency,
                checksum=checksum,
            ) as writer:
                for chunk in chunks(size):
                    writer.write(chunk)

        return run, sent

    return prepare


def smart_open_writer(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    import smart_open

    client = boto3_client(endpoint)
    client.head_bucket(Bucket=bucket)
    sent = counted(client)

    def run() -> None:
        params = {"client": client, "min_part_size": part}
        with smart_open.open(f"s3://{bucket}/{key}", "wb", transport_params=params) as out:
            for chunk in chunks(size):
                out.write(chunk)

    return run, sent


def s3fs_writer(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
    )
    fs.ls(bucket)
    sent = counted(fs.s3)

    def run() -> None:
        with fs.open(f"{bucket}/{key}", "wb", block_size=part) as out:
            for chunk in chunks(size):
                out.write(chunk)

    return run, sent


def obstore_writer(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    """obstore (Rust object_store): ``open_writer`` with its defaults but the part size."""
    import obstore
    from obstore.store import S3Store

    if "AWS_CA_BUNDLE" in os.environ:
        os.environ["SSL_CERT_FILE"] = os.environ["AWS_CA_BUNDLE"]
    store = S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": endpoint.startswith("http:")},
    )
    obstore.list(store).collect()  # the client and one warm-up request

    def run() -> None:
        with obstore.open_writer(store, key, buffer_size=part) as out:
            for chunk in chunks(size):
                out.write(chunk)

    return run, [0]


def pyarrow_writer(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    """pyarrow's S3FileSystem.open_output_stream (the AWS C++ SDK), its defaults."""
    from pyarrow import fs

    scheme, address = endpoint.split("://")
    s3 = fs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=address,
        scheme=scheme,
    )
    s3.get_file_info(fs.FileSelector(bucket))

    def run() -> None:
        with s3.open_output_stream(f"{bucket}/{key}") as out:
            for chunk in chunks(size):
                out.write(chunk)

    return run, [0]


def minio_writer(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    """minio's ``put_object`` of a stream of unknown length, read from a pipe."""
    import minio

    scheme, address = endpoint.split("://")
    client = minio.Minio(
        address, access_key="testing", secret_key="testing", secure=scheme == "https"
    )
    client.bucket_exists(bucket)

    def run() -> None:
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER.format(size=size, chunk=CHUNK)],
            stdout=subprocess.PIPE,
        )
        assert producer.stdout is not None
        client.put_object(bucket, key, producer.stdout, length=-1, part_size=part)
        producer.stdout.close()
        if producer.wait() != 0:
            raise RuntimeError("the producer failed")

    return run, [0]


def upload_fileobj(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    from boto3.s3.transfer import TransferConfig

    client = boto3_client(endpoint)
    client.head_bucket(Bucket=bucket)
    sent = counted(client)

    def run() -> None:
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER.format(size=size, chunk=CHUNK)],
            stdout=subprocess.PIPE,
        )
        assert producer.stdout is not None
        client.upload_fileobj(producer.stdout, bucket, key, Config=TransferConfig())
        producer.stdout.close()
        if producer.wait() != 0:
            raise RuntimeError("the producer failed")

    return run, sent


def command(endpoint: str, bucket: str, key: str, size: int, part: int) -> Any:
    """The cloudpipe command with its defaults, reading the bytes from a pipe. Measured from
    outside, as the kernel counts them for the process: its wall, CPU and peak RSS over those
    of the same command storing an empty object (start-up: imports, the client, one request;
    kept as "startup_wall" and "startup_cpu")."""
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    argv = [sys.executable, "-m", "cloudpipe", f"s3://{bucket}/{key}"]
    argv += ["--endpoint-url", endpoint, "--json", "--no-progress"]

    def measured(nbytes: int) -> tuple[dict[str, Any], float, float, int]:
        started = time.perf_counter()
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER.format(size=nbytes, chunk=CHUNK)],
            stdout=subprocess.PIPE,
        )
        piped = subprocess.Popen(argv, stdin=producer.stdout, stdout=subprocess.PIPE, env=env)
        assert producer.stdout is not None
        assert piped.stdout is not None
        producer.stdout.close()
        answer = piped.stdout.read()
        _, status, usage = os.wait4(piped.pid, 0)
        piped.returncode = os.waitstatus_to_exitcode(status)
        if producer.wait() != 0 or piped.returncode != 0:
            raise RuntimeError(f"the command failed: {answer!r}")
        wall = time.perf_counter() - started
        cpu = usage.ru_utime + usage.ru_stime
        return json.loads(answer), wall, cpu, usage.ru_maxrss * 1024

    _, start_wall, start_cpu, start_peak = measured(0)
    figures: dict[str, Any] = {"startup_wall": start_wall, "startup_cpu": start_cpu}

    def run() -> None:
        result, wall, cpu, peak = measured(size)
        figures["wall"] = wall - start_wall
        figures["cpu"] = cpu - start_cpu
        figures["peak_rss"] = peak - start_peak
        figures["requests"] = result["parts"] + 2

    run.figures = figures  # type: ignore[attr-defined]
    return run, [0]


CONTENDERS: dict[str, Callable[..., Any]] = {
    "raw": raw,
    "cloudpipe": cloudpipe_writer(1),
    "cloudpipe-c2": cloudpipe_writer(2),
    "cloudpipe-c4": cloudpipe_writer(4),
    "cloudpipe-c8": cloudpipe_writer(8),
    "cloudpipe-auto": cloudpipe_writer("auto"),
    "cloudpipe-md5": cloudpipe_writer(1, "md5"),
    "cloudpipe-none": cloudpipe_writer(1, "none"),
    # auto's 70 MiB budget spent on 5 MiB parts from the first byte, as it keeps them on a
    # link its parts cannot fill in 8 MiB: the least auto could cost there, knowing in advance
    "cloudpipe-c13-5mib": cloudpipe_writer(13, part_size=5 * 2**20),
    "smart_open": smart_open_writer,
    "s3fs": s3fs_writer,
    "upload_fileobj": upload_fileobj,
    "obstore": obstore_writer,
    "pyarrow": pyarrow_writer,
    "minio": minio_writer,
    "command": command,
}


def main() -> None:
    name, endpoint, bucket, key = sys.argv[1:5]
    size, part = int(sys.argv[5]), int(sys.argv[6])
    run, sent = CONTENDERS[name](endpoint, bucket, key, size, part)
    with open("/proc/self/clear_refs", "w") as marks:
        marks.write("5")
    baseline = status("VmRSS")
    requests_before = sent[0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    figures = {
        "wall": wall,
        "cpu": cpu,
        "peak_rss": status("VmHWM") - baseline,
        "requests": sent[0] - requests_before,
    }
    print(json.dumps(figures | getattr(run, "figures", {})))


if __name__ == "__main__":
    main()

"""``cloudpipe verify`` of a large file: its time against the CRC32 (or MD5) of the same bytes,
and its peak memory.

    python -m benchmarks.verify [--size-mib 1024] [--rounds 3]

A file of random bytes (in the page cache, as a backup just written is) is stored in a local
SeaweedFS twice: by cloudpipe (the store keeps its FULL_OBJECT CRC32) and by a boto3 multipart
loop without checksums (the store keeps only the ETag, the MD5 of the parts' MD5s). Prints, as
medians: the time to read the file and CRC32 it in this process, and to MD5 it; then the time of
``cloudpipe.verify()`` in this process, and the time (a process started, its imports included)
and peak RSS of ``cloudpipe verify s3://... --input FILE``, for each object; every verdict
must be identical.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cloudpipe
from cloudpipe.checksums import update_crc32
from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS, proc_status

MiB = 2**20


def read_through(path: Path, digest: Callable[[memoryview], None]) -> float:
    """Seconds to read ``path`` in 1 MiB chunks and pass each to ``digest``."""
    chunk = bytearray(MiB)
    view = memoryview(chunk)
    started = time.perf_counter()
    with path.open("rb", buffering=0) as file:
        while count := file.readinto(chunk):
            digest(view[:count])
    return time.perf_counter() - started


def crc32_time(path: Path) -> float:
    state = [0]

    def step(piece: memoryview) -> None:
        state[0] = update_crc32(piece, state[0])

    return read_through(path, step)


def md5_time(path: Path) -> float:
    digest = hashlib.md5()
    return read_through(path, digest.update)


def timed_verify(command: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """Seconds, peak RSS in MiB (VmHWM, read until the process ends: the fork that starts it
    would count this process's memory in its rusage), and the --json result of one
    ``cloudpipe verify``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        with contextlib.suppress(OSError, KeyError, ValueError):  # it ended meanwhile
            peak = max(peak, proc_status(process.pid, "VmHWM"))
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"verify failed ({process.returncode}): {err.decode()} {out.decode()}")
    return seconds, peak / MiB, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    command = str(Path(sys.executable).with_name("cloudpipe"))
    with tempfile.TemporaryDirectory() as work, SeaweedFS() as server:
        path = Path(work) / "data.bin"
        with path.open("wb") as file:
            for _ in range(size // (64 * MiB)):
                file.write(os.urandom(64 * MiB))
        client = server.client()
        client.create_bucket(Bucket="bench")
        env = os.environ | {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        subprocess.run([command, "s3://bench/cloudpipe", "--input", str(path)], env=env, check=True)
        upload = client.create_multipart_upload(Bucket="bench", Key="loop")["UploadId"]
        parts = []
        with path.open("rb") as file:
            while body := file.read(8 * MiB):
                number = len(parts) + 1
                answer = client.upload_part(
                    Bucket="bench", Key="loop", UploadId=upload, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        client.complete_multipart_upload(
            Bucket="bench", Key="loop", UploadId=upload, MultipartUpload={"Parts": parts}
        )
        rows = []
        crc = statistics.median(crc32_time(path) for _ in range(args.rounds))
        md5 = statistics.median(md5_time(path) for _ in range(args.rounds))
        rows.append(("read + CRC32 in one process", crc, None, ""))
        rows.append(("read + MD5 in one process", md5, None, ""))
        for key in ("cloudpipe", "loop"):
            inside = []
            for _ in range(args.rounds):
                result = cloudpipe.verify("bench", key, source=path, client=client)
                assert result.identical, result
                inside.append(result.seconds)
            rows.append(
                (
                    f"cloudpipe.verify() here, {key} object",
                    statistics.median(inside),
                    None,
                    result.compared,
                )
            )
            runs = [
                timed_verify(
                    [command, "verify", f"s3://bench/{key}", "--input", str(path), "--json"], env
                )
                for _ in range(args.rounds)
            ]
            result = runs[-1][2]
            assert result["verdict"] == "identical", result
            seconds = statistics.median(run[0] for run in runs)
            peak = statistics.median(run[1] for run in runs)
            rows.append((f"cloudpipe verify, {key} object", seconds, peak, str(result["compared"])))
    crc = "ISA-L's" if "isal" in str(update_crc32.__module__) else "zlib's"
    print(f"{args.size_mib} MiB file, medians of {args.rounds}; CRC32: {crc}")
    print(f"{'':40} {'seconds':>8} {'MiB/s':>8} {'peak MiB':>9}  compared")
    for name, seconds, peak, compared in rows:
        shown = f"{peak:9.0f}" if peak is not None else f"{'':9}"
        print(f"{name:40} {seconds:8.2f} {args.size_mib / seconds:8.0f} {shown}  {compared}")


if __name__ == "__main__":
    main()

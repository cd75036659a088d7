"""Resuming a crashed stream: the journal's size per part, and how long a resume takes.

    python -m benchmarks.resume [--size-mib 2048] [--cut-mib 1536] [--part-mib 8]

``cloudpipe --journal`` streams a file of random bytes into a local SeaweedFS and is killed
(SIGKILL) once its journal records ``--cut-mib``; then ``cloudpipe resume JOURNAL --input
FILE --json`` reads the stored prefix back from the file, checks it part by part against the
journal's CRC32s (the verify phase) and sends the rest (the upload phase). Prints the journal's
bytes per part, then each phase's time and rate, and checks the object's ETag against the
file's own multipart ETag.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS

MiB = 2**20


def journaled_parts(journal: Path) -> int:
    try:
        return journal.read_bytes().count(b'{"part"')
    except FileNotFoundError:
        return 0


def multipart_etag(path: Path, part_size: int) -> str:
    digests = []
    with path.open("rb") as file:
        while chunk := file.read(part_size):
            digests.append(hashlib.md5(chunk).digest())
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--cut-mib", type=int, default=1536)
    parser.add_argument("--part-mib", type=int, default=8)
    args = parser.parse_args()
    size, part_size = args.size_mib * MiB, args.part_mib * MiB
    cut_parts = args.cut_mib // args.part_mib
    command = [str(Path(sys.executable).with_name("cloudpipe"))]
    with tempfile.TemporaryDirectory() as work, SeaweedFS() as server:
        data, journal = Path(work) / "data.bin", Path(work) / "upload.journal"
        with data.open("wb") as file:
            for _ in range(size // (64 * MiB)):
                file.write(os.urandom(64 * MiB))
        server.client().create_bucket(Bucket="bench")
        env = os.environ | {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        options = ["--journal", str(journal), "--part-size", f"{args.part_mib}MiB"]
        first = subprocess.Popen(
            [*command, *options, "--input", str(data), "s3://bench/stream"],
            env=env,
        )
        while journaled_parts(journal) < cut_parts and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        parts = journaled_parts(journal)
        per_part = (journal.stat().st_size - len(journal.read_bytes().split(b"\n")[0])) / parts
        started = time.monotonic()
        resumed = subprocess.run(
            [*command, "resume", str(journal), "--input", str(data), "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        total = time.monotonic() - started
        result = json.loads(resumed.stdout)
        expected = multipart_etag(data, part_size)
    verify, stored = result["verify_seconds"], result["resumed_from"]
    upload = total - verify
    print(f"journal: {parts} parts recorded, {per_part:.0f} bytes per part (plus the header)")
    rest = result["bytes"] - stored
    print(f"killed after {stored / MiB:.0f} MiB stored; resume (as the command, process included):")
    for phase, seconds, nbytes in (("verify", verify, stored), ("upload", upload, rest)):
        rate = nbytes / MiB / seconds
        print(f"  {phase} phase: {seconds:.2f} s for {nbytes / MiB:.0f} MiB ({rate:.0f} MiB/s)")
    print(f"  object: {result['bytes']} bytes, ETag {result['etag']}, expected {expected}")
    if result["etag"] != expected or result["bytes"] != size:
        raise SystemExit("the resumed object is not the file")


if __name__ == "__main__":
    main()

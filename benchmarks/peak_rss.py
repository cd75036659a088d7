"""Peak memory of one cloudpipe stream, over the process's baseline, against a local SeaweedFS.

    python -m benchmarks.peak_rss [--size-mib 256] [--part-mib 8]

The measurement runs in a fresh child process: imports, a client and one small PutObject
(which loads botocore's request machinery) make the baseline; then the kernel's peak-RSS mark
is reset (/proc/self/clear_refs) and the stream is written in 64 KiB chunks of random bytes.
Peak RSS over baseline is VmHWM after close() minus VmRSS before the stream.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tests.servers import SeaweedFS

MiB = 2**20

CHILD = r"""
import json, random, sys
import cloudpipe
from tests.servers import make_client

endpoint, bucket, size, part_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

client = make_client(endpoint)
client.put_object(Bucket=bucket, Key="warm-up", Body=b"x")
source = random.Random(1)
with open("/proc/self/clear_refs", "w") as marks:
    marks.write("5")
baseline = status("VmRSS")
with cloudpipe.S3MultipartWriter(bucket, "stream", client=client, part_size=part_size) as w:
    for _ in range(size // 65536):
        w.write(source.randbytes(65536))
print(json.dumps({"baseline": baseline, "peak": status("VmHWM"), "parts": w.part_count}))
"""


def measure(endpoint: str, bucket: str, size: int, part_size: int) -> dict[str, int]:
    root = Path(__file__).resolve().parent.parent
    output = subprocess.run(
        [sys.executable, "-c", CHILD, endpoint, bucket, str(size), str(part_size)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    ).stdout
    result: dict[str, int] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size, part_size = args.size_mib * MiB, args.part_mib * MiB
    with SeaweedFS() as server:
        server.client().create_bucket(Bucket="peak-rss")
        for run in range(1, args.runs + 1):
            result = measure(server.endpoint_url, "peak-rss", size, part_size)
            over = result["peak"] - result["baseline"]
            print(
                f"run {run}: {args.size_mib} MiB in {result['parts']} parts of "
                f"{args.part_mib} MiB: baseline {result['baseline'] / MiB:.1f} MiB, "
                f"peak {result['peak'] / MiB:.1f} MiB, "
                f"over baseline {over / MiB:.2f} MiB = {over / part_size:.2f} parts"
            )


if __name__ == "__main__":
    main()

"""cloudpipe on a distant store: the contenders behind benchmarks/wanproxy.py.

    python -m benchmarks.wan [--profile A|B] [--size-mib 512] [--rounds 1]

Profile A: 30 ms round trip, 16 MB/s per connection, 64 MB/s link; B: 40 ms, 10 MB/s,
128 MB/s. Prints a table of medians (wall and CPU seconds, peak RSS over baseline in parts)
and the proxy's own CPU time. A first cut of issue 11's WAN profile: `make bench` does not
run it yet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.wanproxy import WanProxy
from tests.servers import SeaweedFS

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
PROFILES = {"A": (0.030, 16e6, 64e6), "B": (0.040, 10e6, 128e6)}
NAMES = ["cloudpipe", "cloudpipe-c4", "cloudpipe-c8", "cloudpipe-auto", "upload_fileobj"]


def run_one(name: str, endpoint: str, size: int, part: int) -> dict[str, Any]:
    script = str(ROOT / "benchmarks" / "contenders.py")
    output = subprocess.run(
        [sys.executable, script, name, endpoint, "bench", name, str(size), str(part)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="A")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=NAMES)
    args = parser.parse_args()
    size, part = args.size_mib * MiB, args.part_mib * MiB
    rtt, per_connection, link = PROFILES[args.profile]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.only}
    with SeaweedFS() as server:
        server.client().create_bucket(Bucket="bench")
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        proxy = WanProxy(port, rtt, per_connection, link)
        cpu_before = time.process_time()
        for _ in range(args.rounds):
            for name in args.only:
                runs[name].append(run_one(name, proxy.endpoint_url, size, part))
                print(f"{name}: {runs[name][-1]}", file=sys.stderr)
        proxy_cpu = time.process_time() - cpu_before
        proxy.close()
    print(
        f"profile {args.profile}: {rtt * 1000:.0f} ms, {per_connection / 1e6:.0f} MB/s per "
        f"connection, {link / 1e6:.0f} MB/s link; {args.size_mib} MiB in {args.part_mib} MiB "
        f"parts, median of {args.rounds}"
    )
    print("| contender | wall s | CPU s | peak RSS MiB | parts |")
    print("|---|---|---|---|---|")
    for name, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        peak = statistics.median(r["peak_rss"] for r in results) / MiB
        print(f"| {name} | {wall:.1f} | {cpu:.2f} | {peak:.1f} | {peak / args.part_mib:.2f} |")
    print(f"proxy CPU: {proxy_cpu:.1f} s for {args.rounds * len(runs) * args.size_mib} MiB")


if __name__ == "__main__":
    main()

"""CPU the cloudpipe command spends over the library for the same stream, on a local SeaweedFS.

    python -m benchmarks.cli_overhead [--size-mib 256] [--rounds 3]

Each contender is a fresh process reading the same bytes from a real OS pipe (filled by a
separate producer process) and storing them in 8 MiB parts: the library through
``shutil.copyfileobj``, the command with and without its progress bar. CPU is user + system
time of that process alone (os.wait4), imports included; the median of the rounds is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.servers import SeaweedFS

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
PRODUCER = (
    "import os, sys; block = os.urandom(1 << 20); out = sys.stdout.buffer\n"
    "for _ in range({mib}): out.write(block)\n"
)
LIBRARY = (
    "import shutil, sys, cloudpipe\n"
    "with cloudpipe.S3MultipartWriter('bench', sys.argv[1]) as w:\n"
    "    shutil.copyfileobj(sys.stdin.buffer, w, 1 << 20)\n"
)
COMMAND = str(Path(sys.executable).with_name("cloudpipe"))
CONTENDERS = {
    "library (copyfileobj)": [sys.executable, "-c", LIBRARY, "{key}"],
    "command --no-progress": [COMMAND, "s3://bench/{key}", "--no-progress", "--quiet"],
    "command --progress": [COMMAND, "s3://bench/{key}", "--progress", "--quiet"],
}


def cpu_seconds(argv: list[str], size_mib: int, env: dict[str, str]) -> tuple[float, float]:
    """(CPU, wall) seconds of the process running ``argv`` fed by a producer process."""
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER.format(mib=size_mib)], stdout=subprocess.PIPE
    )
    assert producer.stdout is not None
    started = os.times().elapsed
    consumer = subprocess.Popen(
        argv, stdin=producer.stdout, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    producer.stdout.close()
    _, status, usage = os.wait4(consumer.pid, 0)
    wall = os.times().elapsed - started
    consumer.returncode = os.waitstatus_to_exitcode(status)
    if producer.wait() != 0 or consumer.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed with {consumer.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with SeaweedFS() as server:
        server.client().create_bucket(Bucket="bench")
        env = server.environment()
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
        for round_number in range(args.rounds):
            for name, template in CONTENDERS.items():
                argv = [part.format(key=f"r{round_number}") for part in template]
                figures[name].append(cpu_seconds(argv, args.size_mib, env))
    library_cpu = statistics.median(cpu for cpu, _ in figures["library (copyfileobj)"])
    print(f"{args.size_mib} MiB in 8 MiB parts, median of {args.rounds} rounds\n")
    print("| contender | CPU s | wall s | CPU over library |")
    print("|---|---|---|---|")
    for name, runs in figures.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(
            f"| {name} | {cpu:.2f} | {wall:.2f} | {cpu - library_cpu:+.2f} s "
            f"({cpu / library_cpu:.2f}x) |"
        )


if __name__ == "__main__":
    main()

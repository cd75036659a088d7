"""The demo behind ``make demo``: a real backup pipeline into a local S3 server, verified.

1. starts SeaweedFS on 127.0.0.1 (the server the tests use) and creates a bucket;
2. generates a 200 MiB log file (CLOUDPIPE_DEMO_LOG_MIB to change it) beside a copy of this
   project's file list;
3. runs ``cloudpipe s3://demo/backup.tar.gz --progress -- tar czf - ...``: cloudpipe runs tar
   itself and stores the object only if tar exits 0;
4. downloads the object and checks the tar listing and every member's sha256 against the
   source files;
5. runs a producer that fails halfway (a tar of a file that vanishes) into the same key, and
   shows that the verified backup is still there, byte for byte;
6. stops the server. It exits 0 only if both checks held.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import SeaweedFS  # noqa: E402

MiB = 2**20
SKIP = {
    ".git",
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def project_files() -> list[str]:
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = sorted(
            d
            for d in subfolders
            if d not in SKIP and not d.startswith(".venv") and not d.endswith(".egg-info")
        )
        files += [os.path.relpath(os.path.join(folder, name), ROOT) for name in sorted(names)]
    return files


def generate_log(path: Path, size: int) -> None:
    """A web-server-like access log: compressible the way real logs are."""
    rng = random.Random(2026)
    paths = ["/", "/api/orders", "/api/users", "/static/app.js", "/health", "/login"]
    written = 0
    with path.open("w") as log:
        while written < size:
            lines = "".join(
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - - "
                f"[26/Nov/2026:{rng.randrange(24):02}:{rng.randrange(60):02}:"
                f'{rng.randrange(60):02} +0000] "GET {rng.choice(paths)}?id={rng.getrandbits(40)}'
                f' HTTP/1.1" {rng.choice((200, 200, 200, 304, 404, 500))} '
                f"{rng.randrange(100, 90_000)}\n"
                for _ in range(10_000)
            )
            log.write(lines)
            written += len(lines)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cloudpipe-demo-") as scratch, SeaweedFS() as server:
        work = Path(scratch)
        say(f"SeaweedFS is answering S3 at {server.endpoint_url}")
        client = server.client()
        client.create_bucket(Bucket="demo")

        log = work / "access.log"
        log_mib = int(os.environ.get("CLOUDPIPE_DEMO_LOG_MIB", "200"))
        say(f"generating a {log_mib} MiB access log to back up with the project's source tree")
        generate_log(log, log_mib * MiB)
        sources = {name: ROOT / name for name in project_files()}
        sources["access.log"] = log
        listing = work / "files"
        listing.write_text("\n".join(f"project/{n}" for n in sources if n != "access.log"))

        url = "s3://demo/backup.tar.gz"
        command = str(Path(sys.executable).with_name("cloudpipe"))
        tar = ["tar", "czf", "-", "-C", str(work), "-T", str(listing), "access.log"]
        say(f"cloudpipe {url} --progress -- tar czf - project/ access.log")
        env = server.environment()
        (work / "project").symlink_to(ROOT)
        started = time.monotonic()
        done = subprocess.run([command, url, "--progress", "--verbose", "--", *tar], env=env)
        if done.returncode != 0:
            print(f"FAILED: cloudpipe exited {done.returncode}")
            return 1
        seconds = time.monotonic() - started

        say("downloading the object and checking it against the sources")
        head = client.head_object(Bucket="demo", Key="backup.tar.gz")
        archive_path = work / "downloaded.tar.gz"
        client.download_file("demo", "backup.tar.gz", str(archive_path))
        checked = 0
        with tarfile.open(archive_path) as archive:
            members = {m.name: m for m in archive.getmembers() if m.isfile()}
            expected = {f"project/{n}" for n in sources if n != "access.log"} | {"access.log"}
            if set(members) != expected:
                print(f"FAILED: listing differs: {sorted(set(members) ^ expected)[:10]}")
                return 1
            for name, member in members.items():
                source = sources[name.removeprefix("project/")]
                extracted = archive.extractfile(member)
                assert extracted is not None
                if sha256(extracted.read()) != sha256(source.read_bytes()):
                    print(f"FAILED: {name} differs from {source}")
                    return 1
                checked += 1
        parts = head.get("PartsCount") or head["ETag"].strip('"').partition("-")[2] or "1"
        say("verified")
        print(
            f"s3://demo/backup.tar.gz: {head['ContentLength'] / MiB:.1f} MiB in {parts} parts, "
            f"streamed in {seconds:.1f} s\n"
            f"tar listing matches ({len(members)} files), and the sha256 of all {checked} "
            f"members matches the source files (access.log: {log.stat().st_size / MiB:.0f} MiB)"
        )

        failing = ["sh", "-c", f"{' '.join(tar)}; echo 'tar: disk error' >&2; exit 2"]
        say(f"cloudpipe {url} -- (the same tar, which now fails at the end with status 2)")
        done = subprocess.run([command, url, "--", *failing], env=env)
        kept = client.head_object(Bucket="demo", Key="backup.tar.gz")
        if done.returncode != 1 or kept["ETag"] != head["ETag"]:
            print(f"FAILED: cloudpipe exited {done.returncode}; ETag {kept['ETag']}")
            return 1
        say("the failed run stored nothing: the verified backup is untouched")
        print(f"s3://demo/backup.tar.gz: still ETag {kept['ETag']}, exit status 1")
    say("server stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

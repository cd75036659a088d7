"""cloudpipe.aio under load: a 1 GiB request body through examples/asgi_upload.py, and the
event loop's lag while an in-process asyncio writer streams 1 GiB.

    python -m benchmarks.asgi [--size-mib 1024] [--part-mib 8] [--delay-ms 0]

Against a local SeaweedFS (with --delay-ms, behind benchmarks/wanproxy.py at that round
trip, so that parts take a while). Prints: the service's peak RSS over its baseline (after a
warm-up upload) while the body streams, and how long a GET /ping took meanwhile; then the
loop lag (how late a 5 ms sleep wakes) during the in-process stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cloudpipe.aio
from benchmarks.wanproxy import WanProxy
from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS, make_client, proc_status

MiB = 2**20
ROOT = Path(__file__).resolve().parent.parent
BLOCK = os.urandom(64 * 1024)


def body(size: int) -> Iterator[bytes]:
    for _ in range(size // len(BLOCK)):
        yield BLOCK


def request(port: int, method: str, path: str, data: Iterator[bytes] | None = None) -> bytes:
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=600)) as c:
        c.request(method, path, body=data, encode_chunked=data is not None)
        answer = c.getresponse()
        text = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{method} {path}: {answer.status} {text!r}")
        return text


def service(endpoint: str, size: int, part: int) -> dict[str, float]:
    """The example service receiving ``size`` bytes in one chunked PUT, pinged meanwhile."""
    port = 18000 + os.getpid() % 1000
    env = os.environ | {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    app = str(ROOT / "examples" / "asgi_upload.py")
    argv = [sys.executable, app, "bench", "--port", str(port), "--part-size", str(part)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request(port, "GET", "/ping")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        request(port, "PUT", "/upload/warm", body(part + len(BLOCK)))
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        baseline = proc_status(process.pid, "VmRSS")
        pings: list[float] = []
        done = threading.Event()

        def ping() -> None:
            while not done.is_set():
                started = time.perf_counter()
                request(port, "GET", "/ping")
                pings.append(time.perf_counter() - started)
                time.sleep(0.05)

        pinger = threading.Thread(target=ping)
        pinger.start()
        started = time.perf_counter()
        request(port, "PUT", "/upload/big", body(size))
        wall = time.perf_counter() - started
        done.set()
        pinger.join()
        return {
            "wall": wall,
            "peak_over_baseline": proc_status(process.pid, "VmHWM") - baseline,
            "pings": len(pings),
            "ping_median": statistics.median(pings),
            "ping_max": max(pings),
        }
    finally:
        process.terminate()
        process.wait()


def loop_lag(endpoint: str, size: int, part: int) -> dict[str, float]:
    """How late the loop runs a 5 ms sleep while an AsyncS3MultipartWriter streams."""
    client = make_client(endpoint, max_pool_connections=64)
    lags: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - started - 0.005)

    async def main() -> float:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        started = time.perf_counter()
        async with cloudpipe.aio.open("s3://bench/lag", client=client, part_size=part) as f:
            for block in body(size):
                await f.write(block)
        wall = time.perf_counter() - started
        stop.set()
        await ticking
        return wall

    wall = asyncio.run(main())
    lags.sort()
    return {
        "wall": wall,
        "ticks": len(lags),
        "lag_median": lags[len(lags) // 2],
        "lag_p99": lags[int(len(lags) * 0.99)],
        "lag_max": lags[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    size, part = args.size_mib * MiB, args.part_mib * MiB
    with SeaweedFS() as server:
        server.client().create_bucket(Bucket="bench")
        endpoint = server.endpoint_url
        proxy = None
        if args.delay_ms:
            port = int(endpoint.rsplit(":", 1)[1])
            proxy = WanProxy(port, args.delay_ms / 1000, 1e12, 1e12)
            endpoint = proxy.endpoint_url
        served = service(endpoint, size, part)
        lag = loop_lag(endpoint, size, part)
        if proxy is not None:
            proxy.close()
    where = f", {args.delay_ms:.0f} ms round trip" if args.delay_ms else ""
    print(f"{args.size_mib} MiB body in {args.part_mib} MiB parts, synchronous{where}:")
    print(
        f"service: {served['wall']:.1f} s; peak RSS {served['peak_over_baseline'] / MiB:.1f} MiB "
        f"over baseline ({served['peak_over_baseline'] / part:.2f} parts); "
        f"GET /ping meanwhile ({served['pings']:.0f}): median "
        f"{served['ping_median'] * 1000:.1f} ms, max {served['ping_max'] * 1000:.1f} ms"
    )
    print(
        f"in-process writer: {lag['wall']:.1f} s; loop lag over {lag['ticks']:.0f} ticks: "
        f"median {lag['lag_median'] * 1000:.2f} ms, p99 {lag['lag_p99'] * 1000:.2f} ms, "
        f"max {lag['lag_max'] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()

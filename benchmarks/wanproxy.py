"""A TCP proxy that makes a local S3 server look distant: latency and rate caps.

    WanProxy(upstream_port, rtt=0.030, connection_rate=16e6, link_rate=64e6)

Each new connection costs two round trips (TCP and TLS handshakes) before its first byte is
forwarded; then, each time the traffic on a connection changes direction (a request after an
answer, an answer after a request), the first bytes wait half a round trip. Uploads are capped
per connection and for the link as a whole (token buckets, bytes a second); answers are not.
Standard library only (Linux: bytes move with ``os.splice``, without being copied into
Python); one thread per direction of each connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class _Bucket:
    """A token bucket: ``rate`` bytes a second, bursts of at most ``burst`` bytes."""

    rate: float
    burst: float = 256 * 1024
    _tokens: float = 0.0
    _stamp: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, count: int) -> None:
        """Wait until ``count`` bytes may go."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= count:
                    self._tokens -= count
                    return
                wait = (count - self._tokens) / self.rate
            time.sleep(wait)


class WanProxy:
    """A running proxy on 127.0.0.1 in front of ``upstream_port``."""

    def __init__(
        self,
        upstream_port: int,
        rtt: float = 0.030,
        connection_rate: float = 16e6,
        link_rate: float = 64e6,
    ) -> None:
        self.rtt = rtt
        self.connection_rate = connection_rate
        self._upstream = upstream_port
        self._link = _Bucket(link_rate)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        time.sleep(2 * self.rtt)  # the handshakes of a new connection to a distant store
        try:
            server = socket.create_connection(("127.0.0.1", self._upstream))
        except OSError:
            client.close()
            return
        turn = [""]  # which direction spoke last, shared by the two pumps
        upload = _Bucket(self.connection_rate)
        threading.Thread(
            target=self._pump, args=(client, server, "up", turn, upload), daemon=True
        ).start()
        self._pump(server, client, "down", turn, None)

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        direction: str,
        turn: list[str],
        bucket: _Bucket | None,
    ) -> None:
        pipe_out, pipe_in = os.pipe()  # bytes go socket -> pipe -> socket, never into Python
        try:
            while count := os.splice(source.fileno(), pipe_in, CHUNK):
                if turn[0] != direction:  # the other side spoke last: half a round trip
                    turn[0] = direction
                    time.sleep(self.rtt / 2)
                if bucket is not None:
                    bucket.take(count)
                    self._link.take(count)
                while count:
                    count -= os.splice(pipe_out, target.fileno(), count)
        except OSError:
            pass
        finally:
            os.close(pipe_out)
            os.close(pipe_in)
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

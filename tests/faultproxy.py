"""A fault-injecting HTTP proxy for the tests: sits between a client and a real S3 server.

It forwards every request unchanged (the Host header included, so signatures still hold)
unless a rule matches, and then, depending on the rule:

* ``respond``: answers with the rule's status and body without forwarding;
* ``reset``: reads ``after_bytes`` of the request body, then resets the connection;
* ``drop_response``: forwards the request, lets the server handle it, then resets the
  connection instead of answering;
* ``stall``: forwards, then holds the answer for ``seconds`` before resetting the connection;
* ``hold``: holds the request for ``seconds``, then forwards it (even if the client left);
* ``trickle``: forwards, then sends the answer one byte every ``seconds``;
* ``kill_before``: reads ``after_bytes`` of the request body, kills process ``pid`` with
  SIGKILL (a client crashing mid-request), then resets the connection;
* ``kill_after``: forwards the request, lets the server handle it, then kills process ``pid``
  before the answer reaches it (a crash after the store acted, before the client heard).

``outage(seconds)`` makes the endpoint unreachable for a while: every request in that window
has its connection reset before anything is read or forwarded.

Every request is logged as ``(method, path, headers, action)``, with the time it came and the
requests in flight then, for the tests to inspect.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class Rule:
    """Which requests to spoil (method and substrings of the path and query), how, how often."""

    action: str
    method: str | None = None
    path_contains: str = ""
    times: int = 1
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int = 0
    seconds: float = 0.0
    pid: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and self.path_contains in path
        )


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    action: str
    at: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    """Requests the proxy was handling when this one came, this one included."""


@dataclass
class FaultProxy:
    """A running proxy in front of ``upstream`` (``http://host:port``)."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._in_flight = 0
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def respond(self, status: int, code: str, message: str = "injected", **match: object) -> Rule:
        """Answer matching requests with an S3 error document."""
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
        ).encode()
        return self.add(Rule("respond", status=status, body=body, **match))  # type: ignore[arg-type]

    def outage(self, seconds: float) -> None:
        """Reset every connection for the next ``seconds``, as an endpoint that is down."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def is_down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Logged]:
        with self._lock:
            return [
                entry
                for entry in self.log
                if (method is None or entry.method == method) and path_contains in entry.path
            ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _record(self, entry: Logged) -> None:
        with self._lock:
            entry.in_flight = self._in_flight
            self.log.append(entry)

    def _busy(self, change: int) -> None:
        with self._lock:
            self._in_flight += change


def _kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone, so that it cannot act on what follows."""
    assert pid > 0, "a kill rule needs the pid of the process to kill"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # a zombie still answers: its parent has not reaped it yet
        except ProcessLookupError:
            return
        if _is_zombie(pid):
            return
        time.sleep(0.01)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets are the point of this server, not errors worth a traceback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass

    def _handle(self) -> None:
        if self.owner.is_down():
            self.owner._record(Logged(self.command, self.path, {}, "outage"))
            self._reset()
            return
        rule = self.owner._take_rule(self.command, self.path)
        action = rule.action if rule else "forward"
        seen = {k.lower(): v for k, v in self.headers.items()}
        self.owner._record(Logged(self.command, self.path, seen, action))
        length = int(self.headers.get("Content-Length") or 0)
        if rule and rule.action in ("reset", "kill_before"):
            self.rfile.read(min(rule.after_bytes, length))
            if rule.action == "kill_before":
                _kill(rule.pid)
            self._reset()
            return
        body = self.rfile.read(length)
        if rule and rule.action == "respond":
            headers = {"Content-Type": "application/xml"} | rule.headers
            self._answer(rule.status, "Injected", headers, rule.body)
            return
        if rule and rule.action == "hold":
            time.sleep(rule.seconds)
        status, reason, answer_headers, answer = self._forward(body)
        if rule and rule.action in ("drop_response", "kill_after"):
            if rule.action == "kill_after":
                _kill(rule.pid)
            self._reset()
            return
        if rule and rule.action == "stall":
            time.sleep(rule.seconds)
            self._reset()
            return
        if rule and rule.action == "trickle":
            self._trickle(status, reason, answer_headers, answer, rule.seconds)
            return
        self._answer(status, reason, answer_headers, answer)

    def _counted(self) -> None:
        self.owner._busy(+1)
        try:
            self._handle()
        finally:
            self.owner._busy(-1)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _counted

    def _forward(self, body: bytes) -> tuple[int, str, dict[str, str], bytes]:
        target = urlsplit(self.owner.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.putrequest(
                self.command, self.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            answer = response.read()
            headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, response.reason, headers, answer
        finally:
            connection.close()

    def _answer(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.send_response_only(status, reason)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "date", "server"):
                self.send_header(name, value)
        length = headers.get("Content-Length", headers.get("content-length", str(len(body))))
        self.send_header("Content-Length", length if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _trickle(
        self, status: int, reason: str, headers: dict[str, str], body: bytes, seconds: float
    ) -> None:
        """The whole answer, one byte every ``seconds``, until it is sent or the client leaves."""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(body)}")
        answer = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.close_connection = True
        for index in range(len(answer)):
            try:
                self.wfile.write(answer[index : index + 1])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(seconds)

    def _reset(self) -> None:
        """Close with an RST rather than a FIN, as a crashed peer or middlebox would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

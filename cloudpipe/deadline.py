"""Deadlines for requests: a request still running when its deadline passes is cut off.

botocore's ``read_timeout`` bounds each socket read, not a request: a server that trickles a
byte every few seconds, or reads a body that slowly, holds a request (and the ``write()``
waiting on it) forever. Neither botocore nor urllib3 offers a total timeout, and urllib3's
own advice is a watcher thread. This module is that thread: each request registers its
deadline, and when one passes, the watcher shuts down the socket the request's thread is
blocked on. The request then fails as a broken connection does, and is retried like one.

The socket is found in the blocked thread's innermost frames (the socket, urllib3's
connection or the socket file http.client reads from, or the socket urllib3 is connecting),
since botocore hands out neither the connection nor its socket. Shutting down a socket that
is still connecting ends the connect, so a store that never answers is cut off as well.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import sys
import threading
import time
from types import FrameType, TracebackType

_FRAMES_SEARCHED = 12
"""How far out from the innermost frame the socket is looked for (the I/O is always near it)."""


class Deadline:
    """One request's deadline, a context manager around the request.

    ``expired`` is True when the watcher cut the request off; ``connecting`` too when it
    was cut off before its connection was made.
    """

    __slots__ = ("_watcher", "_when", "connecting", "expired", "seconds", "thread_id")

    def __init__(self, watcher: Watcher, seconds: float) -> None:
        self._watcher = watcher
        self.seconds = seconds
        self.thread_id = threading.get_ident()
        self._when = 0.0
        self.expired = False
        self.connecting = False

    def __enter__(self) -> Deadline:
        self._when = time.monotonic() + self.seconds
        self._watcher.start(self, self._when)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._watcher.finish(self)


class Watcher:
    """One thread per process that cuts off the requests whose deadline has passed."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._running: set[Deadline] = set()
        self._order = itertools.count()
        self._pid = -1
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: no watcher thread, and a lock the fork may have caught held."""
        self._condition = threading.Condition()
        self._heap = []
        self._running = set()
        self._pid = -1

    def deadline(self, seconds: float) -> Deadline:
        return Deadline(self, seconds)

    def start(self, deadline: Deadline, when: float) -> None:
        with self._condition:
            if self._pid != os.getpid():  # first use here: no thread yet
                self._pid = os.getpid()
                threading.Thread(
                    target=self._watch, name="cloudpipe-deadlines", daemon=True
                ).start()
            self._running.add(deadline)
            wake = not self._heap or when < self._heap[0][0]
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if wake:
                self._condition.notify()

    def finish(self, deadline: Deadline) -> None:
        with self._condition:
            self._running.discard(deadline)
            if len(self._heap) > 2 * len(self._running) + 16:
                # finished deadlines leave the heap lazily, when they come due; a long
                # stream would hold thousands of them (memory that grows with the parts)
                self._heap = [entry for entry in self._heap if entry[2] in self._running]
                heapq.heapify(self._heap)

    def _watch(self) -> None:
        pid = os.getpid()
        with self._condition:
            while self._pid == pid:
                while self._heap and self._heap[0][2] not in self._running:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._condition.wait()
                    continue
                when, _, deadline = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._running.discard(deadline)
                deadline.expired, deadline.connecting = _cut_off(deadline.thread_id)


def _cut_off(thread_id: int) -> tuple[bool, bool]:
    """Shut down the socket thread ``thread_id`` is blocked on: whether one was found, and
    whether it was still connecting."""
    frame: FrameType | None = sys._current_frames().get(thread_id)
    for _ in range(_FRAMES_SEARCHED):
        if frame is None:
            return False, False
        in_use = _socket_of(frame.f_locals.get("self"))
        sock = in_use or _socket_of(frame.f_locals.get("sock"))  # the one being connected
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                return False, False  # closed meanwhile: the request has ended on its own
            return True, in_use is None
        frame = frame.f_back
    return False, False


def _socket_of(owner: object) -> socket.socket | None:
    """The socket itself, a connection's ``sock``, or a socket file's ``_sock``."""
    if isinstance(owner, socket.socket):
        return owner
    for attribute in ("sock", "_sock"):
        candidate = getattr(owner, attribute, None)
        if isinstance(candidate, socket.socket):
            return candidate
    return None


WATCHER = Watcher()
"""The process's watcher: requests of every writer share its one thread."""

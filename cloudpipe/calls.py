"""One call at a time into a writer, from the process that made it, never from its callbacks.

A lock makes each call whole whatever the threads. A call from one of the writer's own
callbacks (``on_drained`` calling ``write()``) is refused rather than run inside the call
that fired it, and so is a call from a forked child, which inherits the writer's upload id
and buffered bytes but must never send a request for them.
"""

from __future__ import annotations

import os
import threading

_forks = 0
"""How many times this process's line has forked (os.register_at_fork): cheaper to read on
every call than os.getpid(), which is a system call."""


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class Calls:
    """The guard a writer's calls pass: ``enter`` before the call's work, ``leave`` after."""

    def __init__(self, shown: str) -> None:
        self._shown = shown
        self._lock = threading.Lock()
        self._caller: int | None = None  # the thread inside a call (its callbacks included)
        self.pid = os.getpid()
        self._forks = _forks

    @property
    def forked(self) -> bool:
        """True in a process other than the one that made the writer."""
        return self._forks != _forks

    def refuse(self, what: str) -> None:
        """Raise RuntimeError for a call ``what`` from another process or from a callback."""
        if self.forked:
            raise RuntimeError(
                f"{self._shown}: {what}() in a forked child: the writer belongs to "
                f"process {self.pid}, and no other process may send its requests"
            )
        if self._caller == threading.get_ident():
            raise RuntimeError(
                f"{self._shown}: {what}() called from one of the writer's own callbacks, "
                "inside the call that fired it: not allowed (raise an exception to abort)"
            )

    def enter(self, what: str, wait: bool) -> bool:
        """Start call ``what`` once no other runs, refused from a callback (the caller has
        refused a forked child's); without ``wait``, False at once if another runs."""
        caller = threading.get_ident()
        if self._caller == caller:
            self.refuse(what)
        if not self._lock.acquire(wait):
            return False
        self._caller = caller
        return True

    def leave(self) -> None:
        self._caller = None
        self._lock.release()

"""Writers still open at interpreter exit are abandoned while the interpreter still works.

A writer still open when the interpreter exits (a module global, a writer a thread left
behind) would otherwise be garbage collected during shutdown, when the modules its abort
needs are being torn down: its parts would stay stored, and billed. ``atexit`` runs while
everything still works, so every writer still open then is abandoned there, once.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Protocol


class Abandonable(Protocol):
    def _abandon_at_exit(self) -> None: ...


_open: weakref.WeakSet[Abandonable] = weakref.WeakSet()


def track(writer: Abandonable) -> None:
    """Abandon ``writer`` at interpreter exit if it is still open then."""
    _open.add(writer)


def untrack(writer: Abandonable) -> None:
    """``writer`` has ended: nothing to do for it at exit."""
    _open.discard(writer)


@atexit.register
def _abandon_open_writers() -> None:
    for writer in list(_open):
        writer._abandon_at_exit()

"""The command's progress bar: bytes in binary units from the first byte, rate, parts, time,
and a request being retried (without --verbose: a retry is what a stalled bar most needs to
explain)."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from tqdm import tqdm

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def binary_size(count: float) -> str:
    """``0 B``, ``512 B``, ``1.5 KiB``, ``12.3 MiB``, ``1.25 GiB``: what ``ls -h`` users read."""
    for unit in _UNITS:
        if count < 1024 or unit == _UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A tqdm bar on standard error whose figures cloudpipe formats itself (tqdm's own
    scaling shows ``0.00iB`` and ``kB`` for KiB)."""

    def __init__(self, label: str, total: int | None, enabled: bool, parts: bool = True) -> None:
        """``parts``: show the parts stored (not when verifying an object)."""
        self._label = label
        self._show_parts = parts
        self._total = total
        self._parts = 0
        self._retrying = ""  # the retry under way, until a part is stored
        self._retries = _RetriesShown(self)
        self.count = 0
        """Bytes taken (or verified) so far."""
        share = " {percentage:3.0f}%|{bar}|" if total else ""
        timing = " [{elapsed}<{remaining}]" if total else " [{elapsed}]"
        self._bar = tqdm(
            total=total,
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            desc=self._figures(0, 0.0),
            bar_format="{desc}" + share + timing,
        )

    def add(self, count: int) -> None:
        """``count`` more bytes were taken."""
        self.count += count
        if not self._bar.disable:
            self._bar.update(count)
            self._show()

    def part_stored(self, number: int, nbytes: int) -> None:
        """An ``on_drained`` callback."""
        self._parts = number
        self._retrying = ""
        if not self._bar.disable:
            self._show()

    def verified(self, number: int, nbytes: int) -> None:
        """An ``on_verified`` callback: a stored part was checked against the input."""
        self.add(nbytes)
        self.part_stored(number, nbytes)

    def relabel(self, label: str) -> None:
        """Name the next phase (the upload, after the verifying of a resume), once the
        figures of the phase that ends are shown."""
        if not self._bar.disable:
            self._show()
            self._bar.refresh()
        self._label = label
        if not self._bar.disable:
            self._show()

    def retrying(self, retry: object) -> None:
        """A request is about to be tried again (a cloudpipe.retry.Retrying)."""
        self._retrying = f" ({retry})"
        if not self._bar.disable:
            self._show()
            self._bar.refresh()

    def _show(self) -> None:
        figures = self._figures(self._bar.n, self._bar.format_dict["elapsed"])
        self._bar.set_description_str(figures, refresh=False)

    def _figures(self, done: float, elapsed: float) -> str:
        rate = binary_size(done / elapsed if elapsed else 0)
        total = f" / {binary_size(self._total)}" if self._total else ""
        figures = f"{binary_size(done)}{total}, {rate}/s"
        figures += f", parts={self._parts}" if self._show_parts else ""
        return f"{self._label}: {figures}{self._retrying}"

    def __enter__(self) -> Progress:
        if not self._bar.disable:
            logging.getLogger("cloudpipe").addHandler(self._retries)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger("cloudpipe").removeHandler(self._retries)
        if not self._bar.disable:
            self._show()
        self._bar.close()


class _RetriesShown(logging.Handler):
    """Hands cloudpipe's retry records (those with a ``retry``) to a progress bar."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.WARNING)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        retry = getattr(record, "retry", None)
        if retry is not None:
            self._progress.retrying(retry)

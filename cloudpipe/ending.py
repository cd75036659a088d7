"""What the store holds once a writer has ended, recorded as one value.

A writer ends one way, and that way is a fact about the store, not a phrase: the object was
completed; the upload was aborted (or never created), so nothing of it is stored; it was kept
for a resume, with the journal that records it; or it was left pending, because its abort
failed, with the upload id that is still stored and billed. The writer sets its Ending once,
where it learns which it is, and every report is derived from it: ``repr``, the errors of
later calls, ``UploadError``'s line and attributes, ``on_end``, the logs, and the command's
message, JSON and exit status. Nothing reads the words back to decide anything.
"""

from __future__ import annotations

import enum
import logging
import warnings
from dataclasses import dataclass

LOG = logging.getLogger("cloudpipe")


class State(enum.Enum):
    """What the store holds of a writer's upload."""

    OPEN = "open"
    """Still being written: nothing is decided yet."""
    COMPLETED = "completed"
    """The object is stored, with exactly the bytes written."""
    ABORTED = "aborted"
    """Nothing of the upload is stored: aborted, or never created; an object already at the
    key is untouched."""
    KEPT = "kept"
    """The upload and its parts stay stored for ``cloudpipe.resume`` from ``journal``."""
    PENDING = "pending"
    """The abort failed: upload ``upload_id`` stays stored, and billed, until aborted."""
    FORKED = "forked"
    """A forked child's copy of a writer: the upload belongs to the parent process, which
    ends it; the child sent nothing."""


@dataclass(frozen=True)
class Ending:
    """How a writer ended: its State and what a report needs to say about it.

    Attributes:
        state: What the store holds.
        url: The object's ``s3://bucket/key``, as messages show it.
        upload_id: The multipart upload's id, None when none was created.
        journal: The journal to resume from (``KEPT``).
        cause: What ended the writer, in a few words (``"UploadError: ..."``); "" when the
            caller asked (``close()``, ``abort()``).
        why: For ``PENDING``, why the abort failed; for ``ABORTED`` where a journal would
            have kept the upload, why it could not.
    """

    state: State
    url: str = ""
    upload_id: str | None = None
    journal: str | None = None
    cause: str = ""
    why: str = ""

    @property
    def aborted(self) -> bool:
        """True when nothing of the upload is left stored (aborted, or never created)."""
        return self.state is State.ABORTED

    @property
    def completed(self) -> bool:
        return self.state is State.COMPLETED

    def outcome(self) -> str:
        """What the store holds, in words that end a message: ``upload aborted``, ``the
        upload is kept: resume from journal J (...)``, ``the abort failed (...): upload U
        stays stored ...``."""
        if self.state is State.ABORTED:
            words = "upload aborted" if self.upload_id else "nothing was stored"
            return f"{words} ({self.why})" if self.why else words
        if self.state is State.KEPT:
            return f"the upload is kept: {self.resume_hint()}"
        if self.state is State.PENDING:
            return f"the abort failed {self.leftover()}"
        if self.state is State.FORKED:
            return "left to the process that made the writer"
        return str(self.state.value)

    def resume_hint(self) -> str:
        """How to take up a kept upload: ``resume from journal J (...)``."""
        journal = shown(self.journal or "")
        return f"resume from journal {journal} (cloudpipe.resume, or: cloudpipe resume {journal})"

    def leftover(self) -> str:
        """``(why): upload U stays stored and billed until aborted, e.g. with: ...``."""
        return (
            f"({self.why}): upload {self.upload_id} stays stored and billed until aborted, "
            f"e.g. with: cloudpipe uploads {self.url} --abort"
        )

    def summary(self) -> str:
        """A few words for ``repr`` and the errors of calls after the end: ``aborted after
        UploadError: ...``, ``left pending after ... (the abort failed ...)``."""
        words = {
            State.KEPT: "kept for a resume",
            State.PENDING: "left pending",
            State.FORKED: "left to the process that made it",
        }.get(self.state, self.state.value)
        if self.cause:
            words += f" after {self.cause}"
        if self.state is State.PENDING:
            words += f" (the abort failed {self.leftover()})"
        elif self.why:
            words += f" ({self.why})"
        return words

    def log(self, written: int, parts: int, seconds: float) -> None:
        """Say in the log how the writer ended (INFO; WARNING when the abort failed), after
        ``written`` bytes, ``parts`` stored parts and ``seconds`` of writing."""
        url, upload = self.url, f"upload {self.upload_id}"
        if self.state is State.PENDING:
            LOG.warning("%s: the abort failed %s", url, self.leftover())
        elif self.state is State.COMPLETED:
            how = upload if self.upload_id else "one PutObject"
            LOG.info(
                "%s: completed (%s): %d bytes, %d parts, %.1f s",
                *(url, how, written, parts or 1, seconds),
            )
        elif self.state is State.KEPT:
            LOG.info("%s: %s kept: %s", url, upload, self.outcome())
        elif self.state is State.ABORTED and self.upload_id is not None:
            LOG.info(
                "%s: %s aborted: %d bytes written, %d stored parts discarded",
                *(url, upload, written, parts),
            )

    def warn_unclosed(self, how: str, source: object) -> None:
        """Warn that nobody closed the writer (``how``: ``was garbage collected while
        open``), saying what the store holds: ResourceWarning when aborted, as for any file
        left open, RuntimeWarning when its upload stays stored."""
        what = f"{self.url} {how}"
        if self.state is State.ABORTED:
            warning: Warning = ResourceWarning(
                f"{what}: its upload was aborted, not completed (close it, or use a with block)"
            )
        elif self.state is State.PENDING:
            warning = RuntimeWarning(f"{what}, and its abort failed {self.leftover()}")
        elif self.state is State.KEPT:
            warning = RuntimeWarning(f"{what}: its upload is kept: {self.resume_hint()}")
        else:
            return
        warnings.warn(warning, stacklevel=3, source=source)

    def as_json(self) -> dict[str, object]:
        """The fields the command's ``--json`` prints about the ending."""
        return {
            "state": self.state.value,
            "aborted": self.aborted,
            "upload_id": self.upload_id,
            "journal": self.journal if self.state is State.KEPT else None,
        }


OPEN = Ending(State.OPEN)


def shown(text: str) -> str:
    """``text`` as is when printable, else its repr: a key with a newline stays one line."""
    return text if text.isprintable() else repr(text)

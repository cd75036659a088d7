"""The error a failed upload raises, and which botocore failures are worth another try."""

from __future__ import annotations

import os

from botocore.exceptions import (
    ChecksumError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from cloudpipe.ending import Ending, State, shown

RETRYABLE_CODES = frozenset(
    {
        "BadDigest",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)
"""Error codes S3 (and stores that copy it) answer for a request that may succeed if sent again."""


class UploadError(OSError):
    """A request to S3 failed for good; what the store holds after it is ``ending``.

    ``str(error)`` is one line naming the object, the request and the cause, for example
    ``s3://bucket/key: part 3 failed after 3 attempts: SlowDown: Please reduce your request
    rate.``; when the upload was not aborted (kept for a resume, or left pending because the
    abort failed too), the same line says so and names what is left. The botocore exception,
    when there is one, is ``__cause__``.

    Attributes:
        bucket: The bucket.
        key: The object's key.
        upload_id: The multipart upload's id, None before one was created.
        part_number: The part whose request failed, None for the other requests.
        ending: What the store holds after the failure (``cloudpipe.Ending``): its ``state``
            is ``ABORTED`` (nothing left), ``KEPT`` (for a resume from ``ending.journal``)
            or ``PENDING`` (the abort failed: ``ending.upload_id`` stays stored); None for
            an error no writer has ended on (the upload is then as it was).
        resumable: False for a failure a resume cannot mend (a stream that outgrew S3's
            part limit): a writer with a journal aborts after it all the same.
    """

    def __init__(
        self,
        message: str,
        *,
        bucket: str | None = None,
        key: str | None = None,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self.part_number = part_number
        self.ending: Ending | None = None
        self.resumable = True

    @property
    def aborted(self) -> bool:
        """True when nothing of the upload is left stored; False when it was kept for a
        resume or the abort failed, so that its parts stay stored (and billed)."""
        return self.ending is None or self.ending.aborted

    @property
    def journal(self) -> str | None:
        """The journal to resume from, when the upload was kept for a resume."""
        return self.ending.journal if self.ending and self.ending.state is State.KEPT else None

    def __str__(self) -> str:
        ending = self.ending
        if ending is None or (ending.state in (State.ABORTED, State.COMPLETED) and not ending.why):
            return super().__str__()
        if ending.state is State.PENDING:
            return f"{super().__str__()}; and the abort failed too {ending.leftover()}"
        return f"{super().__str__()}; {ending.outcome()}"


class ObjectExistsError(UploadError, FileExistsError):
    """An exclusive write (``IfNoneMatch="*"``, mode ``"xb"``) found the key taken: the store
    refused to replace the object there, which stays as it was; the upload was aborted."""


class EndpointUnreachableError(UploadError, ConnectionError):
    """A request gave up without a connection to the endpoint ever having been made (a wrong
    or missing endpoint, almost always: a store that is there accepts one within a second),
    after a few seconds rather than the minute of retries that rides out an outage."""


class ResumeError(Exception):
    """A journal cannot be resumed as asked: it is not a cloudpipe journal, its upload is
    gone, the store holds other parts than it records, the source differs from what was
    stored, or the SSE-C key is not the upload's. ``str(error)`` is one line; the upload
    and the journal are left as they were.

    Attributes:
        journal: The journal's path.
        ending: What the store holds: the upload kept as it was, for a resume from the
            journal (``KEPT``), or nothing (``ABORTED``) when the upload no longer exists.
    """

    def __init__(self, message: str, journal: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.journal = journal
        state = State.ABORTED if gone else State.KEPT
        self.ending = Ending(state, journal=None if gone else journal)


class JournalError(OSError):
    """The journal could not be written (a full disk, a file size limit): the upload cannot
    be kept for a resume, so the writer aborts it. ``str(error)`` names the journal."""

    def __init__(self, path: str, what: str, cause: OSError) -> None:
        super().__init__(f"cannot write journal {shown(path)} ({what}): {cause.strerror or cause}")
        self.errno = cause.errno  # not strerror or filename, which would make another line


class MemoryBudgetError(ValueError):
    """``max_memory`` holds fewer than two parts (one uploading, one filling).

    Attributes:
        budget: The ``max_memory`` given, in bytes.
        part_size: The part size the writer chose (from ``part_size`` or ``expected_size``).
    """

    def __init__(self, budget: int, part_size: int) -> None:
        super().__init__(
            f"max_memory={budget} holds fewer than two parts of {part_size} bytes (one "
            "uploading, one filling): raise it, or lower part_size"
        )
        self.budget = budget
        self.part_size = part_size


def error_code(error: BaseException | None) -> str:
    """S3's error code (``NoSuchUpload``, ``PreconditionFailed``...) for an answer, else ""."""
    if not isinstance(error, ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_retryable(error: BaseException) -> bool:
    """True for throttling, 5xx answers, timeouts, broken connections and bad digests."""
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or status == 429 or code in RETRYABLE_CODES
    transient = (BotocoreConnectionError, HTTPClientError, IncompleteReadError, ChecksumError)
    return isinstance(error, transient)


def never_connected(error: BaseException) -> bool:
    """True for a failure to make a connection at all: refused, unresolved, timed out while
    connecting, a TLS handshake or a proxy that failed."""
    return isinstance(error, BotocoreConnectionError)


def describe(error: BaseException) -> str:
    """One line for a botocore failure: ``Code: message`` for S3's answers."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "HTTP"
        message = details.get("Message") or _status_text(error)
        return _one_line(f"{code}: {message}")
    return _one_line(f"{type(error).__name__}: {error}")


def short_cause(error: BaseException | None, cut_off: float | None = None) -> str:
    """Why a try failed, in a few words: ``connection refused``, ``no answer within 4 s``,
    ``SlowDown``, or the error's type."""
    if cut_off is not None:
        return f"no answer within {cut_off:.0f} s"
    if isinstance(error, ClientError):
        return error_code(error) or _status_text(error)
    seen: list[BaseException] = []
    cause = error
    while cause is not None and cause not in seen:  # the OS's reason, deep in the chain
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        seen.append(cause)
        kwargs = getattr(cause, "kwargs", {})
        inner = kwargs.get("error") if isinstance(kwargs, dict) else None
        cause = (
            inner if isinstance(inner, BaseException) else (cause.__cause__ or cause.__context__)
        )
    return type(error).__name__ if error is not None else "no answer"


def _status_text(error: ClientError) -> str:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"HTTP {status}" if status else "no message"


def _one_line(text: str) -> str:
    return " ".join(text.split())

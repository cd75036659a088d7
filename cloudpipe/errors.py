"""The error a failed upload raises, and which botocore failures are worth another try."""

from __future__ import annotations

from botocore.exceptions import (
    ChecksumError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

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
    """A request to S3 failed for good; the upload has been aborted, unless ``aborted`` is False.

    ``str(error)`` is one line naming the object, the request and the cause, for example
    ``s3://bucket/key: part 3 failed after 3 attempts: SlowDown: Please reduce your request
    rate.``; when the abort that followed failed too, the same line says so and names the
    upload left stored. The botocore exception, when there is one, is ``__cause__``.

    Attributes:
        bucket: The bucket.
        key: The object's key.
        upload_id: The multipart upload's id, None before one was created.
        part_number: The part whose request failed, None for the other requests.
        aborted: True when nothing of the upload is left stored (the abort succeeded, or
            there was nothing to abort); False when the abort failed too, or when the
            writer has a journal and kept the upload for a resume, so that the upload's
            parts stay stored (and billed) until it is resumed or aborted.
        resumable: False for a failure a resume cannot mend (a stream that outgrew S3's
            part limit): a writer with a journal aborts after it all the same.
        journal: The journal to resume from, when the upload was kept for a resume.
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
        self.aborted = True
        self.resumable = True
        self.journal: str | None = None
        self._outcome = ""

    def abort_failed(self, failure: UploadError) -> None:
        """Record that the abort after this error failed too (``failure``)."""
        self.aborted = False
        self._outcome = "and the abort failed too " + leftover(failure)

    def kept(self, journal: str, hint: str) -> None:
        """Record that the upload was left stored for a resume from ``journal``."""
        self.aborted = False
        self.journal = journal
        self._outcome = f"the upload is kept: {hint}"

    def __str__(self) -> str:
        return super().__str__() + (f"; {self._outcome}" if self._outcome else "")


class ObjectExistsError(UploadError, FileExistsError):
    """An exclusive write (``IfNoneMatch="*"``, mode ``"xb"``) found the key taken: the store
    refused to replace the object there, which stays as it was; the upload was aborted."""


class ResumeError(Exception):
    """A journal cannot be resumed as asked: it is not a cloudpipe journal, its upload is
    gone, the store holds other parts than it records, the source differs from what was
    stored, or the SSE-C key is not the upload's. ``str(error)`` is one line; the upload
    and the journal are left as they were.

    Attributes:
        journal: The journal's path.
    """

    def __init__(self, message: str, journal: str) -> None:
        super().__init__(message)
        self.journal = journal


def leftover(failure: UploadError) -> str:
    """Why an abort failed, what it leaves behind and how to remove it: ``(cause): upload
    ID stays stored ...``, to follow words such as "the abort failed too"."""
    cause = describe(failure.__cause__) if failure.__cause__ is not None else str(failure)
    where = f"s3://{failure.bucket}/{failure.key}"
    return (
        f"({cause}): upload {failure.upload_id} stays stored "
        f"and billed until aborted, e.g. with: cloudpipe uploads {shown(where)} --abort"
    )


def shown(text: str) -> str:
    """``text`` as is when printable, else its repr: a key with a newline stays one line."""
    return text if text.isprintable() else repr(text)


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


def describe(error: BaseException) -> str:
    """One line for a botocore failure: ``Code: message`` for S3's answers."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "HTTP"
        message = details.get("Message") or _status_text(error)
        return _one_line(f"{code}: {message}")
    return _one_line(f"{type(error).__name__}: {error}")


def _status_text(error: ClientError) -> str:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"HTTP {status}" if status else "no message"


def _one_line(text: str) -> str:
    return " ".join(text.split())

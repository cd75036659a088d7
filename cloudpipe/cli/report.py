"""What a run of the command ended as, said once: each failure's one line, exit status and
--json object are derived here from what the store holds (the writer's recorded ending, or
what a run had made before it failed), never from the words of an error."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, NoCredentialsError

from cloudpipe.ending import Ending, State, shown
from cloudpipe.errors import (
    EndpointUnreachableError,
    MemoryBudgetError,
    ObjectExistsError,
    ResumeError,
    UploadError,
)
from cloudpipe.producer import ProducerError
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    pass


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_HUNG_UP = 0, 1, 2, 130, 129

MiB = 2**20

_NO_CREDENTIALS_HINT = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "pass --profile, or run 'aws configure'"
)


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind (aborting the upload, or keeping it with a
    journal) and exit 130 (129 for SIGHUP)."""

    def __init__(self, signum: int) -> None:
        self.name = signal.Signals(signum).name
        super().__init__(self.name)
        self.status = EXIT_HUNG_UP if signum == signal.SIGHUP else EXIT_INTERRUPTED


NOTHING = Ending(State.ABORTED)
"""The ending of a run that sent nothing (or nothing that stays)."""


@dataclass
class Job:
    """What a run has made so far, so that a failure reports what the store holds: the
    writer (whose ending says it), or the journal a resume has not taken up yet."""

    writer: S3MultipartWriter | None = None
    journal: str | None = None
    files: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    """The input files it opened, closed when it ends."""

    def ending(self, error: BaseException) -> Ending:
        if self.writer is not None and self.writer.closed:
            return self.writer.ending
        known = error.ending if isinstance(error, (UploadError, ResumeError)) else None
        if known is not None:
            return known
        if self.journal is not None:  # a resume that failed before it changed anything
            return Ending(State.KEPT, journal=self.journal)
        return NOTHING


class StreamLengthError(Exception):
    """The input did not have the length --expected-size promised."""


class ExistsError(Exception):
    """--no-clobber, and the key exists."""


class InputError(Exception):
    """The input cannot be read at all (a usage error, exit 2)."""


FLAGS = {
    "ContentType": "--content-type",
    "ContentEncoding": "--content-encoding",
    "ContentDisposition": "--content-disposition",
    "CacheControl": "--cache-control",
    "Metadata": "--metadata",
    "Tagging": "--tag",
    "ACL": "--acl",
    "StorageClass": "--storage-class",
    "ServerSideEncryption": "--sse",
    "SSEKMSKeyId": "--sse-kms-key-id",
    "IfNoneMatch": "--no-clobber",
}
"""The flag that sets each request member, so that errors name what the user typed."""


def flag_message(message: str) -> str:
    """A message about request members, in the flags' words."""
    for member, flag in FLAGS.items():
        message = message.replace(f"extra_args {member}", flag)
    return message.replace("extra_args", "--extra-arg")


def size_text(size: int) -> str:
    """``size`` bytes as the size options take them: 40MiB, 1GiB, or bytes."""
    for unit, name in ((2**30, "GiB"), (2**20, "MiB")):
        if size % unit == 0:
            return f"{size // unit}{name}"
    return f"{size} bytes"


def failure_json(message: str, status: int, ending: Ending | None) -> dict[str, Any]:
    """What --json prints for a failure: the message, the status, and what the store holds
    (the ending's state, whether nothing is left, the upload id, the journal to resume)."""
    return {"error": message, "status": status} | (ending or NOTHING).as_json()


def print_json(result: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # standard output gone (a hangup): the status says it
        print(json.dumps(result), flush=True)


def fail(message: str, status: int, as_json: bool, ending: Ending) -> NoReturn:
    with contextlib.suppress(OSError):  # standard error gone (a hangup): the status says it
        print(f"cloudpipe: {message}", file=sys.stderr, flush=True)
    if as_json:
        print_json(failure_json(message, status, ending))
    raise SystemExit(status)


def error_message(error: BaseException) -> str:
    if isinstance(error, UploadError) and isinstance(error.__cause__, NoCredentialsError):
        return f"s3://{error.bucket}/{error.key}: {_NO_CREDENTIALS_HINT}"
    if isinstance(error, ObjectExistsError):  # --no-clobber, refused by the store at the end
        where = shown(f"s3://{error.bucket}/{error.key}")
        return f"{where} exists already (--no-clobber): left untouched"
    if isinstance(error, MemoryBudgetError):
        return (
            f"--max-memory {size_text(error.budget)} holds fewer than two parts of "
            f"{size_text(error.part_size)} (--part-size, or --expected-size / 10000): raise "
            "--max-memory, or lower --part-size"
        )
    return flag_message(" ".join(str(error).split()) or type(error).__name__)


def outcome_words(error: BaseException, ending: Ending) -> str:
    """The end of a failure's line: what the store holds (an UploadError a writer ended on
    says it in its own line already)."""
    if isinstance(error, UploadError) and error.ending is not None:
        return ""
    if ending.state is State.ABORTED:
        return f": {ending.outcome()}"
    return f"; {ending.outcome()}"


def _unreachable(error: BaseException, endpoint_from: str) -> str | None:
    """The line for an endpoint that never answered, naming where it was chosen
    (``endpoint_from``); None for any other failure, or when that is not known."""
    if isinstance(error, EndpointUnreachableError) and endpoint_from:
        return f"{error_message(error)}: check the endpoint ({endpoint_from})"
    return None


def request_failure(error: BaseException, endpoint_from: str) -> str:
    """The line for a request that failed for good; ``endpoint_from``: where the endpoint
    was chosen, named when it never answered."""
    return _unreachable(error, endpoint_from) or error_message(error)


def failure(error: Exception, ending: Ending, endpoint_from: str = "") -> tuple[str, int]:
    """A failure's line and exit status; ``endpoint_from``: where the endpoint was chosen,
    named when it never answered."""
    unreachable = _unreachable(error, endpoint_from)
    if unreachable is not None:
        return unreachable, EXIT_FAILED
    if isinstance(error, ResumeError):
        return str(error).replace("the source", "the input"), EXIT_FAILED
    if isinstance(error, ProducerError):
        return f"{error}{outcome_words(error, ending)}", error.status
    if isinstance(error, ExistsError):
        return str(error), EXIT_FAILED
    if isinstance(error, (InputError, ValueError, TypeError, BotoCoreError)):  # arguments
        words = "" if ending.aborted else outcome_words(error, ending)
        return error_message(error) + words, EXIT_USAGE
    return error_message(error) + outcome_words(error, ending), EXIT_FAILED


def summary(result: dict[str, Any]) -> str:
    rate = result["bytes"] / MiB / result["seconds"] if result["seconds"] else 0.0
    count = result["parts"]
    parts = f"{count} part{'s' * (count != 1)}" if result["upload_id"] else "1 PutObject"
    resumed = ""
    if "resumed_from" in result:
        resumed = (
            f" (resumed: {result['resumed_from'] / MiB:.1f} MiB already stored, checked "
            f"against the input in {result['verify_seconds']:.1f} s)"
        )
    return (
        f"cloudpipe: {result['url']}: {result['bytes'] / MiB:.1f} MiB ({result['bytes']} bytes) "
        f"in {parts}, {result['seconds']:.1f} s, {rate:.1f} MiB/s, ETag {result['etag']}{resumed}"
    )

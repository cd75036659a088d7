"""The ``cloudpipe`` command: standard input, a file or a producer's output into one S3 object.

    producer | cloudpipe [OPTIONS] [-] s3://BUCKET/KEY
    cloudpipe [OPTIONS] s3://BUCKET/KEY -- COMMAND [ARG...]
    cloudpipe resume JOURNAL [OPTIONS] [--input FILE | -- COMMAND [ARG...]]
    cloudpipe uploads s3://BUCKET[/PREFIX] [--older-than AGE] [--abort]

Exit status: 0 stored; 1 the upload failed (or the producer did) and was aborted; 2 usage
error; 130 interrupted (SIGINT or SIGTERM), 129 hung up (SIGHUP), upload aborted. An interrupt
that comes while the object is being completed is answered by asking the store: if it holds
the object, the status is 0 and the message says so. Every failure's message, JSON and status
come from the writer's recorded ending (cloudpipe.Ending), never from the words of an error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from cloudpipe._version import __version__
from cloudpipe.autoconcurrency import MAX_CONCURRENCY
from cloudpipe.checksums import MODES
from cloudpipe.ending import Ending, State, shown
from cloudpipe.errors import (
    JournalError,
    MemoryBudgetError,
    ObjectExistsError,
    ResumeError,
    UploadError,
    describe,
)
from cloudpipe.partsize import DEFAULT_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from cloudpipe.producer import Producer, ProducerError
from cloudpipe.progress import Progress
from cloudpipe.resume import resume
from cloudpipe.s3 import configured_attempts, make_client, object_exists
from cloudpipe.text import parse_url
from cloudpipe.uploads import abort_rule, pending_uploads
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_HUNG_UP = 0, 1, 2, 130, 129
DEFAULT_ATTEMPTS = 10
"""The command's tries per request when neither --attempts nor the AWS configuration says:
spaced as they are, ten span more than two minutes (a one-minute outage is ridden out)."""
CHUNK = 1 << 20
MiB = 2**20
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)
_AGE = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*", re.IGNORECASE)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
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

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What ends the command as an interrupt: Ctrl-C, kill, and the terminal or ssh session
going away (SIGHUP would otherwise kill it at once and leave its upload pending)."""


@dataclass
class Job:
    """What a run has made so far, so that a failure reports what the store holds: the
    writer (whose ending says it), or the journal a resume has not taken up yet."""

    writer: S3MultipartWriter | None = None
    journal: str | None = None

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


def parse_size(text: str) -> int:
    """Bytes from ``8MiB``, ``64M``, ``1G``, ``512k`` or ``1048576`` (units are powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes or a number with K, M, G or T (e.g. 64MiB)"
        )
    number, unit, _ = match.groups()
    return int(number) * _UNITS[unit.lower()]


def parse_concurrency(text: str) -> int | str:
    """``auto``, or a number of parts."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid concurrency {text!r}: a number, or auto"
        ) from None


def parse_age(text: str) -> datetime.timedelta:
    """A duration from ``90s``, ``30m``, ``12h``, ``1d``, ``2w`` (or plain seconds)."""
    match = _AGE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: use e.g. 30m, 12h, 1d or 2w")
    number, unit = match.groups()
    return datetime.timedelta(seconds=int(number) * _AGE_UNITS[unit.lower()])


def parse_pair(what: str) -> Callable[[str], tuple[str, str]]:
    """A parser of ``KEY=VALUE`` for the option that takes ``what``."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: use KEY=VALUE")
        return name, value

    return parse


def parse_extra_arg(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``; a VALUE that is JSON (a number, an object, true) is taken as such."""
    name, value = parse_pair("--extra-arg")(text)
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


class _Parser(argparse.ArgumentParser):
    json_errors = False
    """--json was given: a usage error prints its JSON object too."""

    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: errors in this command are always one line."""
        if self.json_errors:
            print_json(failure_json(f"{message} (see {self.prog} --help)", EXIT_USAGE, None))
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.json_errors = "--json" in (sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--endpoint-url", help="an S3-compatible endpoint (or AWS_ENDPOINT_URL)")
    aws.add_argument("--profile", help="a profile from ~/.aws/config")
    aws.add_argument("--region", help="the bucket's region")
    aws.add_argument(
        "--debug", action="store_true", help="tracebacks for errors, and DEBUG logs (each part)"
    )


def build_uploads_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cloudpipe uploads",
        description="List the multipart uploads left pending in a bucket (by crashed or "
        "killed writers), and abort them with --abort. Also says whether a lifecycle rule "
        "aborts them automatically.",
    )
    parser.add_argument("url", metavar="s3://BUCKET[/PREFIX]", help="the bucket and key prefix")
    parser.add_argument(
        "--older-than",
        type=parse_age,
        default=datetime.timedelta(0),
        metavar="AGE",
        help="only uploads started longer ago than AGE (e.g. 30m, 12h, 1d, 2w)",
    )
    parser.add_argument("--abort", action="store_true", help="abort the uploads listed")
    parser.add_argument("--json", action="store_true", help="print the uploads as JSON")
    add_aws_options(parser)
    return parser


EXAMPLES = """examples:
  pg_dump mydb | cloudpipe s3://backups/mydb.sql
  cloudpipe --no-clobber s3://backups/home.tar.gz -- tar czf - /home
      (stored only if tar exits 0, and only if the key is new)

  cloudpipe --journal db.journal s3://backups/db.dump -- pg_dump -Fc mydb
  cloudpipe resume db.journal -- pg_dump -Fc mydb
      (after a crash: checks the stored prefix against the re-run dump, sends the rest)

other commands:
  cloudpipe resume JOURNAL [--input FILE | -- COMMAND]   resume a crashed upload
  cloudpipe uploads s3://BUCKET[/PREFIX] [--abort]   list or abort pending uploads

exit status: 0 stored; 1 failed, upload aborted; 2 usage error; 130 interrupted, aborted"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cloudpipe",
        usage="%(prog)s [OPTIONS] [-] s3://BUCKET/KEY [-- COMMAND [ARG...]]",
        description="Stream standard input, a file or a command's output into one S3 object "
        "by multipart upload, in memory bounded by one part. With -- COMMAND, cloudpipe "
        "runs the command, streams its standard output, and stores the object only if the "
        "command exits 0.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="[-] s3://BUCKET/KEY", help="where the object goes"
    )
    source = parser.add_argument_group("input and parts")
    source.add_argument("--input", metavar="FILE", help="read FILE instead of standard input")
    source.add_argument(
        "--part-size",
        type=parse_size,
        default=DEFAULT_PART_SIZE,
        metavar="SIZE",
        help="bytes per part, 5MiB to 5GiB (default 8MiB); grows for very long streams",
    )
    source.add_argument(
        "--expected-size",
        type=parse_size,
        metavar="SIZE",
        help="the exact input size: sizes parts up front, shows an ETA, "
        "and refuses an input that is shorter or longer",
    )
    add_transfer_options(source)
    source.add_argument(
        "--checksum", choices=MODES, default="crc32", help="what the store verifies (crc32)"
    )
    source.add_argument(
        "--journal",
        metavar="FILE",
        help="record the upload in FILE (which must not exist), part by part: after a crash, "
        "a failure or an interrupt the upload is kept, and 'cloudpipe resume FILE' takes it "
        "up; FILE is removed once the object is stored",
    )
    add_aws_options(parser)
    obj = parser.add_argument_group("object")
    obj.add_argument(
        "--no-clobber",
        action="store_true",
        help="store the object only if the key does not exist (atomic on the store)",
    )
    obj.add_argument("--content-type", help="Content-Type of the object")
    obj.add_argument("--content-encoding", help="Content-Encoding, e.g. gzip")
    obj.add_argument("--content-disposition", help="Content-Disposition")
    obj.add_argument("--cache-control", help="Cache-Control")
    obj.add_argument(
        "--metadata",
        type=parse_pair("metadata"),
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="user metadata (repeatable)",
    )
    obj.add_argument(
        "--tag",
        type=parse_pair("tag"),
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an object tag (repeatable)",
    )
    obj.add_argument("--acl", help="a canned ACL: private, bucket-owner-full-control, ...")
    obj.add_argument("--storage-class", help="e.g. STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE")
    obj.add_argument("--sse", metavar="ALGORITHM", help="server-side encryption: AES256, aws:kms")
    obj.add_argument("--sse-kms-key-id", metavar="KEY_ID", help="the KMS key for --sse aws:kms")
    obj.add_argument(
        "--extra-arg",
        type=parse_extra_arg,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other CreateMultipartUpload/PutObject member, e.g. ObjectLockMode=GOVERNANCE "
        "(VALUE is read as JSON when it is JSON; repeatable)",
    )
    add_output_options(parser)
    return parser


def add_transfer_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--attempts",
        type=int,
        metavar="N",
        help="tries per request (default: AWS_MAX_ATTEMPTS or the profile's max_attempts, "
        f"else {DEFAULT_ATTEMPTS}, which rides out a one-minute outage)",
    )
    group.add_argument(
        "--concurrency",
        type=parse_concurrency,
        default="auto",
        metavar="N|auto",
        help="parts uploading at once (default auto: as many as raise the throughput, "
        "within --max-memory; 1: each part stored before more input is read)",
    )
    group.add_argument(
        "--max-memory",
        type=parse_size,
        metavar="SIZE",
        help="the part buffers' memory budget for --concurrency auto (default 72MiB)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on standard error (default: when it is a terminal)",
    )
    out.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    out.add_argument(
        "--verbose",
        action="store_true",
        help="a summary line on success even when standard error is not a terminal, and "
        "INFO and WARNING logs (retries; the upload created, completed, aborted)",
    )
    out.add_argument("--quiet", action="store_true", help="no summary line, even on a terminal")
    out.add_argument("--version", action="version", version=f"cloudpipe {__version__}")


def build_resume_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cloudpipe resume",
        usage="%(prog)s JOURNAL [OPTIONS] [-] [--input FILE | -- COMMAND [ARG...]]",
        description="Take up an upload that a 'cloudpipe --journal JOURNAL' run left stored "
        "(killed, failed or interrupted). The input is read again from its start (standard "
        "input, --input FILE, or the output of COMMAND run again): the stored parts are "
        "checked against it, CRC32 by CRC32, and the rest is sent. The input must be the "
        "same stream: a file, or a command whose output is the same each time (zfs send of "
        "a snapshot, tar of a snapshot, pg_dump --snapshot).",
    )
    parser.add_argument("journal", metavar="JOURNAL", help="the --journal FILE of the run")
    parser.add_argument(
        "stdin", nargs="?", choices=["-"], metavar="-", help="read standard input (the default)"
    )
    source = parser.add_argument_group("input")
    source.add_argument("--input", metavar="FILE", help="read FILE instead of standard input")
    add_transfer_options(source)
    source.add_argument(
        "--extra-arg",
        type=parse_extra_arg,
        action="append",
        default=[],
        metavar="SSECustomerKey=KEY",
        help="the SSE-C key of an SSE-C upload (the journal keeps only its MD5)",
    )
    add_aws_options(parser)
    add_output_options(parser)
    return parser


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


def extra_args_from(options: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The request members the options set; --extra-arg may not repeat one a flag sets."""
    pairs = {
        "ContentType": options.content_type,
        "ContentEncoding": options.content_encoding,
        "ContentDisposition": options.content_disposition,
        "CacheControl": options.cache_control,
        "ACL": options.acl,
        "StorageClass": options.storage_class,
        "ServerSideEncryption": options.sse,
        "SSEKMSKeyId": options.sse_kms_key_id,
        "Metadata": dict(options.metadata) or None,
        "Tagging": urllib.parse.urlencode(options.tag) or None,
        "IfNoneMatch": "*" if options.no_clobber else None,
    }
    chosen = {name: value for name, value in pairs.items() if value is not None}
    for name, value in options.extra_arg:
        if name in chosen:
            parser.error(f"--extra-arg {name} repeats {FLAGS[name]}: give it once")
        chosen[name] = value
    return chosen


def check_ranges(options: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Sizes and counts out of range, named by their flags and in their units."""
    if not MIN_PART_SIZE <= options.part_size <= MAX_PART_SIZE:
        size = options.part_size
        size = f"{size // 2**20}MiB" if size % 2**20 == 0 else f"{size} bytes"
        parser.error(
            f"--part-size {size} is too {'small' if options.part_size < MIN_PART_SIZE else 'large'}"
            ": 5MiB to 5GiB"
        )
    limit = MAX_PARTS * MAX_PART_SIZE
    if options.expected_size is not None and options.expected_size > limit:
        parser.error(f"--expected-size {options.expected_size} is more than S3 allows: 48.8TiB")
    check_transfer_ranges(options, parser)


def check_transfer_ranges(options: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if options.attempts is not None and options.attempts < 1:
        parser.error(f"--attempts {options.attempts} is too small: 1 or more")
    if options.concurrency != "auto" and not 1 <= options.concurrency <= MAX_CONCURRENCY:
        parser.error(
            f"--concurrency {options.concurrency} is out of range: 1 to {MAX_CONCURRENCY}, or auto"
        )
    if options.max_memory is not None and options.concurrency != "auto":
        parser.error("--max-memory applies to --concurrency auto only")


def flag_message(message: str) -> str:
    """A message about request members, in the flags' words."""
    for member, flag in FLAGS.items():
        message = message.replace(f"extra_args {member}", flag)
    return message.replace("extra_args", "--extra-arg")


def client_for(options: argparse.Namespace) -> S3Client:
    """The client the options name (--endpoint-url, --profile, --region)."""
    return make_client(options.endpoint_url, options.profile, options.region)


@contextmanager
def interruptible() -> Iterator[list[Callable[[int], None]]]:
    """Turn SIGINT, SIGTERM and SIGHUP into Interrupted, after passing them to the callables in the
    list it yields (the producer); a second signal waits for the abort to finish."""
    forward: list[Callable[[int], None]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for target in forward:
            target(signum)
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield forward  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield forward
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def copy(source: IO[bytes], writer: S3MultipartWriter, bar: Progress, expected: int | None) -> None:
    """Copy ``source`` into ``writer``; refuse an input that does not match ``expected``."""
    chunk = bytearray(CHUNK)
    view = memoryview(chunk)
    while count := source.readinto(chunk):  # type: ignore[attr-defined]
        if expected is not None and writer.tell() + count > expected:
            raise StreamLengthError(f"the input is longer than --expected-size {expected} bytes")
        writer.write(view[:count])
        bar.add(count)
    if expected is not None and writer.tell() != expected:
        raise StreamLengthError(
            f"the input ended after {writer.tell()} bytes, short of --expected-size {expected}"
        )


def start_producer(
    command: list[str], forward: list[Callable[[int], None]]
) -> tuple[IO[bytes], Producer]:
    """Run the producer, passing it the signals cloudpipe receives; its output is the input."""
    producer = Producer(command)
    forward.append(producer.signal)
    return producer.stdout, producer


def feed(
    writer: S3MultipartWriter,
    begin: Callable[[], tuple[IO[bytes], Producer | None]],
    bar: Progress,
    expected: int | None,
) -> tuple[int, str | None]:
    """In the writer's with block: ``begin()`` the input, copy it, hear the producer's exit,
    and close. The object's size, and the signal that interrupted a completion the store had
    carried out, if any."""
    size = 0
    try:
        with writer:
            source, producer = begin()
            try:
                copy(source, writer, bar, expected)
                if producer is not None:
                    producer.finish()
            except BaseException:
                if producer is not None:
                    producer.stop()
                raise
            size = writer.tell()
    except Interrupted as signal_name:
        if writer.etag is None:
            raise
        return size, str(signal_name)  # during Complete, which the store had carried out
    return size, None


def result_of(
    url: str, writer: S3MultipartWriter, size: int, started: float, interrupted: str | None
) -> dict[str, Any]:
    """What --json prints about a stored object."""
    bucket, key = parse_url(url)
    return {
        "url": url,
        "bucket": bucket,
        "key": key,
        "bytes": size,
        "parts": writer.part_count,
        "upload_id": writer.upload_id,
        "etag": writer.etag,
        "version_id": writer.version_id,
        "checksum": writer.checksum,
        "seconds": round(time.monotonic() - started, 3),
        "interrupted": interrupted,
        "state": writer.ending.state.value,
    }


def bar_label(url: str) -> str:
    return url if len(url) <= 40 else "…" + url[-39:]


def show_progress(options: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if options.progress is None else bool(options.progress)


def upload(
    options: argparse.Namespace,
    parser: argparse.ArgumentParser,
    url: str,
    command: list[str] | None,
    forward: list[Callable[[int], None]],
    job: Job,
) -> dict[str, Any]:
    """Stream the input into the object; the result that --json prints."""
    bucket, key = parse_url(url)
    extra_args = extra_args_from(options, parser)
    client = client_for(options)
    attempts = options.attempts or configured_attempts(options.profile, DEFAULT_ATTEMPTS)
    if options.no_clobber:
        refuse_existing(client, bucket, key, url)
    source = open_input(options.input) if command is None else None
    started = time.monotonic()
    with Progress(bar_label(url), options.expected_size, show_progress(options)) as bar:
        try:
            writer = S3MultipartWriter(
                bucket,
                key,
                client=client,
                part_size=options.part_size,
                expected_size=options.expected_size,
                max_attempts=attempts,
                max_concurrency=options.concurrency,
                max_memory=options.max_memory,
                checksum=options.checksum,
                extra_args=extra_args,
                on_drained=bar.part_stored,
                journal=options.journal,
            )
        except OSError as error:  # only the journal's file can fail here
            raise InputError(journal_problem(options.journal, error)) from None
        job.writer = writer

        def begin() -> tuple[IO[bytes], Producer | None]:
            writer.start()  # fails fast, before any input is read or produced
            if command is not None:
                return start_producer(command, forward)
            assert source is not None
            return source, None

        size, interrupted = feed(writer, begin, bar, options.expected_size)
    return result_of(url, writer, size, started, interrupted)


def journal_problem(path: str, error: OSError) -> str:
    if isinstance(error, JournalError):
        return str(error)
    if isinstance(error, FileExistsError):
        return (
            f"--journal {path} exists already: resume its upload with 'cloudpipe resume "
            f"{path}', or remove it"
        )
    return f"cannot create --journal {path}: {error.strerror or error}"


def resume_upload(
    options: argparse.Namespace,
    command: list[str] | None,
    forward: list[Callable[[int], None]],
    job: Job,
) -> dict[str, Any]:
    """Check the stored prefix against the input, then stream the rest of it; the result."""
    started = time.monotonic()
    try:
        with open(options.journal, "rb"):
            pass
    except OSError as error:
        reason = error.strerror or error
        raise InputError(f"cannot read journal {options.journal}: {reason}") from None
    job.journal = options.journal  # until the writer exists, the upload is as it was
    try:
        with open(options.journal, "r+b"):
            pass
    except OSError as error:
        reason = error.strerror or error
        raise InputError(f"cannot write journal {options.journal}: {reason}") from None
    if command is None:
        source, producer = open_input(options.input), None
    else:
        source, producer = start_producer(command, forward)
    client = client_for(options)
    attempts = options.attempts or configured_attempts(options.profile, DEFAULT_ATTEMPTS)
    label = "verifying " + bar_label(os.path.basename(options.journal))
    with Progress(label, None, show_progress(options)) as bar:
        try:
            writer = resume(
                options.journal,
                client=client,
                source=source,
                extra_args=dict(options.extra_arg),
                max_attempts=attempts,
                max_concurrency=options.concurrency,
                max_memory=options.max_memory,
                on_drained=bar.part_stored,
                on_verified=bar.verified,
            )
            job.writer = writer
            verified = bar.count if writer.closed else writer.tell()
            if writer.closed:
                finish_completed(writer, source, producer, verified)
        except Exception as error:
            if producer is not None:  # a producer that failed is what to blame, not the input
                failed = producer.failure()
                producer.stop()
                if failed is not None:
                    raise failed from error
            raise
        except BaseException:
            if producer is not None:
                producer.stop()
            raise
        verify_seconds = time.monotonic() - started
        size, interrupted = verified, None
        if not writer.closed:
            bar.relabel(bar_label(writer.name))
            size, interrupted = feed(writer, lambda: (source, producer), bar, None)
    result = result_of(writer.name, writer, size, started, interrupted)
    result["resumed_from"] = verified
    result["verify_seconds"] = round(verify_seconds, 3)
    return result


def finish_completed(
    writer: S3MultipartWriter, source: IO[bytes], producer: Producer | None, size: int
) -> None:
    """The upload was completed before the crash: the input must end where the object does."""
    if source.read(1):
        raise ResumeError(
            f"{writer.name} was completed before the crash, with {size} bytes, but the input "
            "goes on past them: it is not the stream the object was made from (the object is "
            "left as it is)",
            "",
        )
    if producer is not None:
        producer.finish()


def refuse_existing(client: S3Client, bucket: str, key: str, url: str) -> None:
    """Fail before reading any input when --no-clobber meets an existing key (the store's own
    If-None-Match at the end is what makes it atomic; this only saves the wait)."""
    if object_exists(client, bucket, key):
        raise ExistsError(f"{url} exists already (--no-clobber): left untouched")


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


def size_text(size: int) -> str:
    """``size`` bytes as the size options take them: 40MiB, 1GiB, or bytes."""
    for unit, name in ((2**30, "GiB"), (2**20, "MiB")):
        if size % unit == 0:
            return f"{size // unit}{name}"
    return f"{size} bytes"


def open_input(path: str | None) -> IO[bytes]:
    if path is None:
        if sys.stdin is None:
            raise InputError(
                "standard input is closed: pipe data in, or use --input FILE or -- COMMAND"
            )
        return cast(IO[bytes], sys.stdin.buffer)
    try:
        return open(path, "rb")
    except OSError as error:
        raise InputError(f"cannot read --input {path}: {error.strerror or error}") from None


def uploads_main(argv: Sequence[str]) -> int:
    """``cloudpipe uploads``: list (and with --abort, abort) pending multipart uploads."""
    parser = build_uploads_parser()
    options = parser.parse_args(argv)
    scheme, sep, rest = options.url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not sep or not bucket:
        parser.error(f"expected an s3://BUCKET[/PREFIX] URL, got {options.url!r}")
    verb = "aborted" if options.abort else "pending"
    now = datetime.datetime.now(datetime.UTC)
    try:
        client = client_for(options)
        found = pending_uploads(client, bucket, prefix, options.older_than)
        for upload in found:
            if options.abort:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload.key, UploadId=upload.upload_id
                )
            if not options.json:
                age = str(upload.age(now)).split(".")[0]
                print(f"{verb}  s3://{bucket}/{upload.key}  {upload.upload_id}  age {age}")
        rule = abort_rule(client, bucket)
    except (BotoCoreError, ClientError) as error:
        if options.debug:
            raise
        fail(f"s3://{bucket}/{prefix}: {describe(error)}", EXIT_FAILED, options.json, NOTHING)
    if options.json:
        listed = [
            {"key": u.key, "upload_id": u.upload_id, "initiated": u.initiated.isoformat()}
            for u in found
        ]
        print(json.dumps({"uploads": listed, "aborted": options.abort, "lifecycle": rule}))
    print(f"cloudpipe: {len(found)} upload(s) {verb} in s3://{bucket}/{prefix}", file=sys.stderr)
    print(f"cloudpipe: {rule}", file=sys.stderr)
    return EXIT_OK


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """The options, and the producer's command after ``--`` (None without one)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def target(options: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The URL, from ``s3://B/K`` or ``- s3://B/K`` (the ``aws s3 cp -`` habit)."""
    paths = options.paths
    if len(paths) == 2 and paths[0] == "-":
        if options.input:
            parser.error("'-' (standard input) and --input FILE both name the input: choose one")
        paths = paths[1:]
    elif len(paths) == 2:
        parser.error(
            f"the input is standard input ('-'), --input FILE or -- COMMAND, not {paths[0]!r}"
        )
    if len(paths) != 1:
        parser.error(f"one s3://BUCKET/KEY, not {len(paths)} paths")
    try:
        parse_url(paths[0])
    except ValueError as error:
        parser.error(str(error))
    return str(paths[0])


def run(
    options: argparse.Namespace,
    command: list[str] | None,
    work: Callable[[list[Callable[[int], None]], Job], dict[str, Any]],
) -> int:
    """Do ``work`` (an upload or a resume), turning every failure into one line, a status and
    a JSON object, each derived from what the store holds (the job's ending)."""
    show_logs(options)
    as_json = options.json
    job = Job()
    try:
        if command is not None:
            Producer.check(command)
        with interruptible() as forward:
            result = work(forward, job)
    except Interrupted as interrupt:
        ending = job.ending(interrupt)
        words = outcome_words(interrupt, ending)
        fail(f"interrupted by {interrupt.name}{words}", interrupt.status, as_json, ending)
    except Exception as error:
        if options.debug:
            raise
        ending = job.ending(error)
        fail(*failure(error, ending), as_json, ending)
    if as_json:
        print_json(result)
    if result["interrupted"]:  # said even with --quiet: the user pressed Ctrl-C, and it stored
        print(
            f"cloudpipe: interrupted by {result['interrupted']}, but the object was already "
            f"stored: {summary(result).removeprefix('cloudpipe: ')}",
            file=sys.stderr,
        )
    elif (options.verbose or sys.stderr.isatty()) and not options.quiet:
        print(summary(result), file=sys.stderr)
    return EXIT_OK


def failure(error: Exception, ending: Ending) -> tuple[str, int]:
    """A failure's line and exit status."""
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


def show_logs(options: argparse.Namespace) -> None:
    """--verbose: cloudpipe's INFO and WARNING records on standard error (retries, the upload
    created, completed or aborted); --debug: its DEBUG records too (each part). Never
    botocore's, whose debug records carry request headers (SSE-C keys among them)."""
    if not (options.verbose or options.debug):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cloudpipe: %(levelname)s: %(message)s"))
    log = logging.getLogger("cloudpipe")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if options.debug else logging.INFO)


def resume_main(argv: list[str]) -> int:
    """``cloudpipe resume JOURNAL``: take up an upload a --journal run left stored."""
    argv, command = split_command(argv)
    parser = build_resume_parser()
    options = parser.parse_intermixed_args(argv)  # the '-' may come after options
    if options.stdin and options.input:
        parser.error("'-' (standard input) and --input FILE both name the input: choose one")
    if command is not None and (not command or options.input or options.stdin):
        parser.error("-- takes a command to run, whose output is the input (and no --input)")
    check_transfer_ranges(options, parser)
    return run(options, command, lambda forward, job: resume_upload(options, command, forward, job))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["uploads"]:
        return uploads_main(argv[1:])
    if argv[:1] == ["resume"]:
        return resume_main(argv[1:])
    argv, command = split_command(argv)
    parser = build_parser()
    options = parser.parse_args(argv)
    url = target(options, parser)
    check_ranges(options, parser)
    if command is not None and (not command or options.input):
        parser.error("-- takes a command to run, whose output is the input (and no --input)")
    return run(
        options,
        command,
        lambda forward, job: upload(options, parser, url, command, forward, job),
    )


def entry_point() -> None:
    """The console script."""
    raise SystemExit(main())

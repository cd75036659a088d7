"""The ``cloudpipe`` command: standard input (or a file) into one S3 object.

    producer | cloudpipe [OPTIONS] s3://BUCKET/KEY
    cloudpipe uploads s3://BUCKET[/PREFIX] [--older-than AGE] [--abort]

Exit status: 0 stored; 1 the upload failed and was aborted; 2 usage error; 130 interrupted
(SIGINT or SIGTERM), upload aborted. An interrupt that comes while the object is being
completed is answered by asking the store: if it holds the object, the status is 0 and the
message says so.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tqdm import tqdm

from cloudpipe._version import __version__
from cloudpipe.errors import UploadError, describe
from cloudpipe.partsize import DEFAULT_PART_SIZE
from cloudpipe.text import parse_url
from cloudpipe.uploads import abort_rule, pending_uploads
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
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
    """SIGINT or SIGTERM arrived: unwind (aborting the upload) and exit 130."""


class StreamLengthError(Exception):
    """The input did not have the length --expected-size promised."""


def parse_size(text: str) -> int:
    """Bytes from ``8MiB``, ``64M``, ``1G``, ``512k`` or ``1048576`` (units are powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes or a number with K, M, G or T (e.g. 64MiB)"
        )
    number, unit, _ = match.groups()
    return int(number) * _UNITS[unit.lower()]


def parse_age(text: str) -> datetime.timedelta:
    """A duration from ``90s``, ``30m``, ``12h``, ``1d``, ``2w`` (or plain seconds)."""
    match = _AGE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: use e.g. 30m, 12h, 1d or 2w")
    number, unit = match.groups()
    return datetime.timedelta(seconds=int(number) * _AGE_UNITS[unit.lower()])


def parse_metadata(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"invalid metadata {text!r}: use KEY=VALUE")
    return name, value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: errors in this command are always one line."""
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    aws = parser.add_argument_group("AWS")
    aws.add_argument("--endpoint-url", help="an S3-compatible endpoint (or AWS_ENDPOINT_URL)")
    aws.add_argument("--profile", help="a profile from ~/.aws/config")
    aws.add_argument("--region", help="the bucket's region")
    aws.add_argument("--debug", action="store_true", help="tracebacks for errors")


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cloudpipe",
        description="Stream standard input (or a file) into one S3 object by multipart upload, "
        "in memory bounded by one part.",
        epilog="Exit status: 0 stored; 1 failed (upload aborted); 2 usage error; "
        "130 interrupted (upload aborted).",
    )
    parser.add_argument("url", metavar="s3://BUCKET/KEY", help="where the object goes")
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
    source.add_argument(
        "--attempts", type=int, default=3, metavar="N", help="tries per request (default 3)"
    )
    add_aws_options(parser)
    obj = parser.add_argument_group("object")
    obj.add_argument("--content-type", help="Content-Type of the object")
    obj.add_argument(
        "--metadata",
        type=parse_metadata,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="user metadata (repeatable)",
    )
    obj.add_argument("--storage-class", help="e.g. STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE")
    obj.add_argument("--sse", metavar="ALGORITHM", help="server-side encryption: AES256, aws:kms")
    obj.add_argument("--sse-kms-key-id", metavar="KEY_ID", help="the KMS key for --sse aws:kms")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on standard error (default: when it is a terminal)",
    )
    out.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    out.add_argument("--quiet", action="store_true", help="no summary line")
    out.add_argument("--version", action="version", version=f"cloudpipe {__version__}")
    return parser


def extra_args_from(options: argparse.Namespace) -> dict[str, Any]:
    pairs = {
        "ContentType": options.content_type,
        "StorageClass": options.storage_class,
        "ServerSideEncryption": options.sse,
        "SSEKMSKeyId": options.sse_kms_key_id,
        "Metadata": dict(options.metadata) or None,
    }
    return {name: value for name, value in pairs.items() if value is not None}


def make_client(options: argparse.Namespace) -> S3Client:
    """A client as the AWS CLI would make it, with botocore's retries left to cloudpipe."""
    session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
    return session.client(
        "s3",
        endpoint_url=options.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into Interrupted; a second signal waits for the abort to finish."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def copy(
    source: io.BufferedIOBase, writer: S3MultipartWriter, bar: tqdm[Any], expected: int | None
) -> None:
    """Copy ``source`` into ``writer``; refuse an input that does not match ``expected``."""
    chunk = bytearray(CHUNK)
    view = memoryview(chunk)
    while count := source.readinto(chunk):
        if expected is not None and writer.tell() + count > expected:
            raise StreamLengthError(f"the input is longer than --expected-size {expected} bytes")
        writer.write(view[:count])
        bar.update(count)
    if expected is not None and writer.tell() != expected:
        raise StreamLengthError(
            f"the input ended after {writer.tell()} bytes, short of --expected-size {expected}"
        )


def upload(options: argparse.Namespace, source: io.BufferedIOBase) -> dict[str, Any]:
    """Stream ``source`` into the object; the result that --json prints."""
    bucket, key = parse_url(options.url)
    show = sys.stderr.isatty() if options.progress is None else options.progress
    started = time.monotonic()
    with tqdm(
        total=options.expected_size,
        unit="iB",
        unit_scale=True,
        unit_divisor=1024,
        disable=not show,
        file=sys.stderr,
        dynamic_ncols=True,
        desc=options.url if len(options.url) <= 40 else "…" + options.url[-39:],
    ) as bar:

        def drained(number: int, nbytes: int) -> None:
            bar.set_postfix(parts=number, refresh=False)

        writer = S3MultipartWriter(
            bucket,
            key,
            client=make_client(options),
            part_size=options.part_size,
            expected_size=options.expected_size,
            max_attempts=options.attempts,
            extra_args=extra_args_from(options),
            on_drained=drained,
        )
        interrupted = None
        try:
            with writer:
                copy(source, writer, bar, options.expected_size)
                size = writer.tell()
        except Interrupted as signal_name:
            if writer.etag is None:
                raise
            interrupted = str(signal_name)  # during Complete, which the store had carried out
    seconds = time.monotonic() - started
    return {
        "url": options.url,
        "bucket": bucket,
        "key": key,
        "bytes": size,
        "parts": writer.part_count,
        "upload_id": writer.upload_id,
        "etag": writer.etag,
        "version_id": writer.version_id,
        "seconds": round(seconds, 3),
        "interrupted": interrupted,
    }


def summary(result: dict[str, Any]) -> str:
    rate = result["bytes"] / MiB / result["seconds"] if result["seconds"] else 0.0
    parts = f"{result['parts']} parts" if result["upload_id"] else "1 PutObject"
    return (
        f"cloudpipe: {result['url']}: {result['bytes'] / MiB:.1f} MiB ({result['bytes']} bytes) "
        f"in {parts}, {result['seconds']:.1f} s, {rate:.1f} MiB/s, ETag {result['etag']}"
    )


def fail(message: str, status: int) -> NoReturn:
    print(f"cloudpipe: {message}", file=sys.stderr)
    raise SystemExit(status)


def error_message(error: BaseException) -> str:
    if isinstance(error, UploadError) and isinstance(error.__cause__, NoCredentialsError):
        return f"s3://{error.bucket}/{error.key}: {_NO_CREDENTIALS_HINT}"
    return " ".join(str(error).split()) or type(error).__name__


def open_input(path: str | None) -> io.BufferedIOBase:
    if path is None:
        return cast(io.BufferedIOBase, sys.stdin.buffer)
    try:
        return open(path, "rb")
    except OSError as error:
        fail(f"cannot read --input {path}: {error.strerror or error}", EXIT_USAGE)


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
        client = make_client(options)
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
        fail(f"s3://{bucket}/{prefix}: {describe(error)}", EXIT_FAILED)
    if options.json:
        listed = [
            {"key": u.key, "upload_id": u.upload_id, "initiated": u.initiated.isoformat()}
            for u in found
        ]
        print(json.dumps({"uploads": listed, "aborted": options.abort, "lifecycle": rule}))
    print(f"cloudpipe: {len(found)} upload(s) {verb} in s3://{bucket}/{prefix}", file=sys.stderr)
    print(f"cloudpipe: {rule}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["uploads"]:
        return uploads_main(argv[1:])
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        parse_url(options.url)
    except ValueError as error:
        parser.error(str(error))
    source = open_input(options.input)
    try:
        with interruptible(), source:
            result = upload(options, source)
    except Interrupted as signal_name:
        fail(f"interrupted by {signal_name}: upload aborted", EXIT_INTERRUPTED)
    except (ValueError, TypeError, BotoCoreError) as error:  # arguments, profiles, regions
        if options.debug:
            raise
        fail(error_message(error), EXIT_USAGE)
    except (UploadError, StreamLengthError, OSError) as error:
        if options.debug:
            raise
        aborted = "" if isinstance(error, UploadError) else ": upload aborted"
        fail(error_message(error) + aborted, EXIT_FAILED)
    if options.json:
        print(json.dumps(result))
    if result["interrupted"]:  # said even with --quiet: the user pressed Ctrl-C, and it stored
        print(
            f"cloudpipe: interrupted by {result['interrupted']}, but the object was already "
            f"stored: {summary(result).removeprefix('cloudpipe: ')}",
            file=sys.stderr,
        )
    elif not options.quiet:
        print(summary(result), file=sys.stderr)
    return EXIT_OK


def entry_point() -> None:
    """The console script."""
    raise SystemExit(main())

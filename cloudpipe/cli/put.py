"""``cloudpipe [OPTIONS] [-] s3://BUCKET/KEY [-- COMMAND [ARG...]]``: standard input, a file or
a producer's output into one object."""

from __future__ import annotations

import argparse
import time
import urllib.parse
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from cloudpipe.checksums import MODES
from cloudpipe.cli.options import (
    Parser,
    add_aws_options,
    add_extra_arg,
    add_output_options,
    add_transfer_options,
    attempts_for,
    bar_label,
    check_transfer_ranges,
    client_for,
    parse_pair,
    parse_size,
    show_progress,
    split_command,
)
from cloudpipe.cli.report import FLAGS, ExistsError, InputError, Job
from cloudpipe.cli.stream import feed, open_input, result_of, run, start_producer
from cloudpipe.clients import object_exists
from cloudpipe.errors import JournalError
from cloudpipe.partsize import DEFAULT_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from cloudpipe.producer import Producer
from cloudpipe.progress import Progress
from cloudpipe.text import parse_url
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
  cloudpipe verify s3://BUCKET/KEY [--input FILE | -- COMMAND]   compare without downloading

exit status: 0 stored; 1 failed, upload aborted; 2 usage error; 130 interrupted, aborted"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    _add_object_options(parser.add_argument_group("object"))
    add_output_options(parser)
    return parser


def _add_object_options(obj: argparse._ArgumentGroup) -> None:
    """The options that set the object's headers, metadata, encryption and conditions."""
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
    add_extra_arg(
        obj,
        "NAME=VALUE",
        "any other CreateMultipartUpload/PutObject member, e.g. ObjectLockMode=GOVERNANCE "
        "(VALUE is read as JSON when it is JSON; repeatable)",
    )


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


def refuse_existing(client: S3Client, bucket: str, key: str, url: str) -> None:
    """Fail before reading any input when --no-clobber meets an existing key (the store's own
    If-None-Match at the end is what makes it atomic; this only saves the wait)."""
    if object_exists(client, bucket, key):
        raise ExistsError(f"{url} exists already (--no-clobber): left untouched")


def journal_problem(path: str, error: OSError) -> str:
    if isinstance(error, JournalError):
        return str(error)
    if isinstance(error, FileExistsError):
        return (
            f"--journal {path} exists already: resume its upload with 'cloudpipe resume "
            f"{path}', or remove it"
        )
    return f"cannot create --journal {path}: {error.strerror or error}"


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
    attempts = attempts_for(options)
    if options.no_clobber:
        refuse_existing(client, bucket, key, url)
    source = open_input(options.input, job.files) if command is None else None
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


def put_main(argv: list[str]) -> int:
    """``cloudpipe s3://BUCKET/KEY``: stream the input into the object."""
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

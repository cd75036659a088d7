"""``cloudpipe verify s3://BUCKET/KEY [- | --input FILE | -- COMMAND [ARG...]]``: whether an
object holds exactly the input's bytes, from what the store keeps of it, without downloading
it (cloudpipe.verify)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import IO, NoReturn

from botocore.exceptions import BotoCoreError

from cloudpipe.cli import options as shared  # the options every command takes
from cloudpipe.cli.report import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    Interrupted,
    error_message,
    print_json,
    request_failure,
)
from cloudpipe.cli.stream import interruptible, open_input
from cloudpipe.partsize import MAX_PART_SIZE, MIN_PART_SIZE
from cloudpipe.producer import Producer, ProducerError
from cloudpipe.progress import Progress
from cloudpipe.text import parse_url
from cloudpipe.verify import Verdict, Verification, verify

EXAMPLES = """examples:
  cloudpipe verify s3://backups/home.tar.gz --input home.tar.gz
  cloudpipe verify s3://backups/db.sql -- pg_dump --snapshot=... mydb
  cloudpipe verify s3://backups/secret.bin --input secret.bin \\
      --extra-arg SSECustomerKey=0123456789abcdef0123456789abcdef

exit status: 0 identical; 1 different, or nothing kept to tell, or it could not be asked
(the line on standard output says which); 2 usage error; 130 interrupted"""


def build_verify_parser() -> argparse.ArgumentParser:
    parser = shared.Parser(
        prog="cloudpipe verify",
        usage="%(prog)s s3://BUCKET/KEY [OPTIONS] [- | --input FILE | -- COMMAND [ARG...]]",
        description="Check that an S3 object holds exactly the bytes of the input (standard "
        "input, --input FILE, or the output of COMMAND, which must exit 0), without "
        "downloading it: the input is read once and compared with what the store keeps of "
        "the object (its FULL_OBJECT CRC32, else its parts' checksums, else its ETag), the "
        "size first.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="s3://BUCKET/KEY [-]", help="the object, and '-' for stdin"
    )
    source = parser.add_argument_group("input")
    source.add_argument("--input", metavar="FILE", help="read FILE instead of standard input")
    source.add_argument(
        "--part-size",
        type=shared.parse_size,
        metavar="SIZE",
        help="the upload's part size, for an object whose store keeps neither a checksum "
        "nor its part sizes (default: cloudpipe's, 8MiB)",
    )
    source.add_argument(
        "--attempts", type=int, metavar="N", help="tries per request (default: as uploads)"
    )
    shared.add_extra_arg(
        source,
        "NAME=VALUE",
        "SSECustomerKey=KEY for an SSE-C object; ExpectedBucketOwner, RequestPayer",
    )
    shared.add_aws_options(parser)
    shared.add_output_options(parser)
    return parser


def verify_main(argv: Sequence[str]) -> int:
    """``cloudpipe verify``: compare the input with the object; 0 identical, 1 not."""
    arguments, command = shared.split_command(list(argv))
    parser = build_verify_parser()
    options = parser.parse_intermixed_args(arguments)  # '-' may follow the options
    url = _target(options, parser, command)
    shared.show_logs(options)
    try:
        with interruptible() as forward, contextlib.ExitStack() as files:
            producer = None
            if command is not None:
                Producer.check(command)
                producer = Producer(command)
                forward.append(producer.signal)
                files.callback(producer.stop)
                source: IO[bytes] = producer.stdout
            else:
                source = open_input(options.input, files)
            found = _compare(options, url, source)
            if producer is not None:
                _check_producer(producer, found)
    except Interrupted as interrupt:
        _fail(f"interrupted by {interrupt.name}: not verified", interrupt.status, options)
    except ProducerError as error:
        words = "" if error.status == EXIT_USAGE else ": its output is not the stream; not verified"
        _fail(f"{error}{words}", error.status, options)
    except (InputError, ValueError, TypeError, BotoCoreError) as error:
        if options.debug:
            raise
        _fail(error_message(error), EXIT_USAGE, options)
    except OSError as error:  # UploadError: a request failed; or the input could not be read
        if options.debug:
            raise
        _fail(request_failure(error, shared.endpoint_source(options)), EXIT_FAILED, options)
    if options.json:
        print_json(found.as_json())
    elif not options.quiet:
        with contextlib.suppress(OSError):  # standard output gone: the status still says it
            print(found, flush=True)
    return EXIT_OK if found.identical else EXIT_FAILED


def _check_producer(producer: Producer, found: Verification) -> None:
    """A ProducerError unless the producer exited 0: output that ended with a failure is
    not the stream, whatever it compared as. A difference found before its output ended
    stops it, unless it had failed already."""
    if found.verdict is not Verdict.DIFFERENT:
        producer.finish()  # its output read to the end
        return
    failed = producer.failure(seconds=0.2)
    if failed is not None:
        raise failed


def _compare(options: argparse.Namespace, url: str, source: IO[bytes]) -> Verification:
    label = f"verify {shared.bar_label(url)}"
    with Progress(label, None, shared.show_progress(options), parts=False) as bar:
        return verify(
            url,
            source=source,
            client=shared.client_for(options),
            part_size=options.part_size,
            extra_args=dict(options.extra_arg),
            max_attempts=shared.attempts_for(options),
            on_read=bar.add,
        )


def _target(
    options: argparse.Namespace, parser: argparse.ArgumentParser, command: list[str] | None
) -> str:
    """The URL, from ``s3://B/K``, ``s3://B/K -`` or ``- s3://B/K``; the input checked."""
    paths = [path for path in options.paths if path != "-"]
    stdin = len(paths) < len(options.paths)
    if len(paths) != 1 or len(options.paths) > 2:
        parser.error(f"one s3://BUCKET/KEY and at most '-', not {' '.join(options.paths)!r}")
    inputs = [stdin, options.input is not None, command is not None]
    if sum(inputs) > 1:
        parser.error("the input is one of '-' (standard input), --input FILE or -- COMMAND")
    if command is not None and not command:
        parser.error("-- takes a command to run, whose output is the input")
    size = options.part_size
    if size is not None and not MIN_PART_SIZE <= size <= MAX_PART_SIZE:
        parser.error(f"--part-size {size} bytes is out of range: 5MiB to 5GiB")
    if options.attempts is not None and options.attempts < 1:
        parser.error(f"--attempts {options.attempts} is too small: 1 or more")
    try:
        parse_url(paths[0])
    except ValueError as error:
        parser.error(str(error))
    return str(paths[0])


def _fail(message: str, status: int, options: argparse.Namespace) -> NoReturn:
    """One line on standard error (and the JSON object, with --json); exit ``status``."""
    with contextlib.suppress(OSError):
        print(f"cloudpipe verify: {message}", file=sys.stderr, flush=True)
    if options.json:
        print_json({"error": message, "status": status, "verdict": None})
    raise SystemExit(status)

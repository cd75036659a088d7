"""``cloudpipe resume JOURNAL [--input FILE | -- COMMAND]``: take up an upload a ``--journal``
run left stored, after checking the stored prefix against the input read again."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from cloudpipe.cli import options as shared  # the options every command takes
from cloudpipe.cli.report import InputError, Job
from cloudpipe.cli.stream import feed, open_input, result_of, run, start_producer
from cloudpipe.errors import ResumeError
from cloudpipe.producer import Producer
from cloudpipe.progress import Progress
from cloudpipe.resume import resume
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    pass


def build_resume_parser() -> argparse.ArgumentParser:
    parser = shared.Parser(
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
    shared.add_transfer_options(source)
    shared.add_extra_arg(
        source,
        "SSECustomerKey=KEY",
        "the SSE-C key of an SSE-C upload (the journal keeps only its MD5)",
    )
    shared.add_aws_options(parser)
    shared.add_output_options(parser)
    return parser


def resume_upload(
    options: argparse.Namespace,
    command: list[str] | None,
    forward: list[Callable[[int], None]],
    job: Job,
) -> dict[str, Any]:
    """Check the stored prefix against the input, then stream the rest of it; the result."""
    started = time.monotonic()
    _check_journal(options.journal, "rb", "read")
    job.journal = options.journal  # until the writer exists, the upload is as it was
    _check_journal(options.journal, "r+b", "write")
    if command is None:
        source, producer = open_input(options.input, job.files), None
    else:
        source, producer = start_producer(command, forward)
    client = shared.client_for(options)
    attempts = shared.attempts_for(options)
    label = "verifying " + shared.bar_label(os.path.basename(options.journal))
    with Progress(label, None, shared.show_progress(options)) as bar:
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
            bar.relabel(shared.bar_label(writer.name))
            size, interrupted = feed(writer, lambda: (source, producer), bar, None)
    result = result_of(writer.name, writer, size, started, interrupted)
    result["resumed_from"] = verified
    result["verify_seconds"] = round(verify_seconds, 3)
    return result


def _check_journal(path: str, mode: str, verb: str) -> None:
    """Refuse a journal the command cannot ``verb`` (open in ``mode``), before any input."""
    try:
        with open(path, mode):
            pass
    except OSError as error:
        raise InputError(f"cannot {verb} journal {path}: {error.strerror or error}") from None


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


def resume_main(argv: list[str]) -> int:
    """``cloudpipe resume JOURNAL``: take up an upload a --journal run left stored."""
    argv, command = shared.split_command(argv)
    parser = build_resume_parser()
    options = parser.parse_intermixed_args(argv)  # the '-' may come after options
    if options.stdin and options.input:
        parser.error("'-' (standard input) and --input FILE both name the input: choose one")
    if command is not None and (not command or options.input or options.stdin):
        parser.error("-- takes a command to run, whose output is the input (and no --input)")
    shared.check_transfer_ranges(options, parser)
    return run(options, command, lambda forward, job: resume_upload(options, command, forward, job))

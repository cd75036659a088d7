"""Running one upload or resume: signals turned into an interrupt (and passed to the producer),
the input copied into the writer inside its with block, and the result or the failure
reported (cloudpipe.cli.report)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, cast

from cloudpipe.cli.options import endpoint_source, show_logs
from cloudpipe.cli.report import (
    EXIT_OK,
    InputError,
    Interrupted,
    Job,
    StreamLengthError,
    fail,
    failure,
    outcome_words,
    print_json,
    summary,
)
from cloudpipe.producer import Producer
from cloudpipe.progress import Progress
from cloudpipe.text import parse_url
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    pass


CHUNK = 1 << 20

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What ends the command as an interrupt: Ctrl-C, kill, and the terminal or ssh session
going away (SIGHUP would otherwise kill it at once and leave its upload pending)."""


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


def open_input(path: str | None, files: ExitStack) -> IO[bytes]:
    """Standard input, or the --input file (closed when ``files`` closes)."""
    if path is None:
        if sys.stdin is None:
            raise InputError(
                "standard input is closed: pipe data in, or use --input FILE or -- COMMAND"
            )
        return cast(IO[bytes], sys.stdin.buffer)
    try:
        return files.enter_context(open(path, "rb"))
    except OSError as error:
        raise InputError(f"cannot read --input {path}: {error.strerror or error}") from None


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
        with interruptible() as forward, job.files:
            result = work(forward, job)
    except Interrupted as interrupt:
        ending = job.ending(interrupt)
        words = outcome_words(interrupt, ending)
        fail(f"interrupted by {interrupt.name}{words}", interrupt.status, as_json, ending)
    except Exception as error:
        if options.debug:
            raise
        ending = job.ending(error)
        fail(*failure(error, ending, endpoint_source(options)), as_json, ending)
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

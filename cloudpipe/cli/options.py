"""What the commands share: size and count parsers, the AWS, transfer and output options, their
range checks, the client the options name, and the logs --verbose shows."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from cloudpipe._version import __version__
from cloudpipe.arguments import DEFAULT_AUTO_MEMORY
from cloudpipe.autoconcurrency import MAX_CONCURRENCY
from cloudpipe.cli.report import EXIT_USAGE, failure_json, print_json
from cloudpipe.clients import configured_attempts, make_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


COMMAND_ATTEMPTS = 10
"""The command's tries per request when neither --attempts nor the AWS configuration says:
spaced as they are, ten span more than two minutes (a one-minute outage is ridden out)."""

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}

_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``8MiB``, ``64M``, ``1G``, ``512k`` or ``1048576`` (units are powers of 1024).
    ``MB``, ``GB``... are refused rather than guessed: they mean powers of 1000 to some and of
    1024 to others (the AWS CLI)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes, or a number with K, M, G or T, or KiB, MiB, "
            "GiB or TiB (powers of 1024, e.g. 64MiB)"
        )
    number, unit, suffix = match.groups()
    if unit and suffix and suffix.lower() == "b":
        mebi = f"{number}{unit.upper()}iB"
        decimal = int(number) * 1000 ** " kmgt".index(unit.lower())
        raise argparse.ArgumentTypeError(
            f"ambiguous size {text!r}: write {mebi} ({int(number) * _UNITS[unit.lower()]} "
            f"bytes) or {decimal} (bytes)"
        )
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


def add_extra_arg(group: argparse._ArgumentGroup, metavar: str, help: str) -> None:  # noqa: A002
    """``--extra-arg NAME=VALUE``, repeatable: request members no flag of the command sets."""
    group.add_argument(
        "--extra-arg",
        type=parse_extra_arg,
        action="append",
        default=[],
        metavar=metavar,
        help=help,
    )


class Parser(argparse.ArgumentParser):
    json_errors = False
    """--json was given: a usage error prints its JSON object too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """No abbreviations: ``--part`` is not taken for ``--part-size``, so that an option
        added later cannot change what an old command line means."""
        super().__init__(*args, **(kwargs | {"allow_abbrev": False}))

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


def add_transfer_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--attempts",
        type=int,
        metavar="N",
        help="tries per request (default: AWS_MAX_ATTEMPTS or the profile's max_attempts, "
        f"else {COMMAND_ATTEMPTS}, which rides out a one-minute outage)",
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
        help="the part buffers' memory budget for --concurrency auto "
        f"(default {DEFAULT_AUTO_MEMORY // 2**20}MiB)",
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


def check_transfer_ranges(options: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if options.attempts is not None and options.attempts < 1:
        parser.error(f"--attempts {options.attempts} is too small: 1 or more")
    if options.concurrency != "auto" and not 1 <= options.concurrency <= MAX_CONCURRENCY:
        parser.error(
            f"--concurrency {options.concurrency} is out of range: 1 to {MAX_CONCURRENCY}, or auto"
        )
    if options.max_memory is not None and options.concurrency != "auto":
        parser.error("--max-memory applies to --concurrency auto only")


def attempts_for(options: argparse.Namespace) -> int:
    """Tries per request: --attempts, else the AWS configuration's, else COMMAND_ATTEMPTS."""
    return int(options.attempts or configured_attempts(options.profile, COMMAND_ATTEMPTS))


def client_for(options: argparse.Namespace) -> S3Client:
    """The client the options name (--endpoint-url, --profile, --region)."""
    return make_client(options.endpoint_url, options.profile, options.region)


def endpoint_source(options: argparse.Namespace) -> str:
    """Where the endpoint the client talks to was chosen, in the words a user acts on (the
    order botocore takes them in)."""
    if options.endpoint_url:
        return "--endpoint-url"
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return name
    profile = options.profile or os.environ.get("AWS_PROFILE") or "default"
    return f"the AWS configuration (profile {profile}), or AWS's own for the region"


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """The options, and the producer's command after ``--`` (None without one)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


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


def show_progress(options: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if options.progress is None else bool(options.progress)


def bar_label(url: str) -> str:
    return url if len(url) <= 40 else "…" + url[-39:]

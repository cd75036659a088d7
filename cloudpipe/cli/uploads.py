"""``cloudpipe uploads s3://BUCKET[/PREFIX] [--older-than AGE] [--abort]``: list, and abort,
the multipart uploads left pending in a bucket."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cloudpipe.cli.options import Parser, add_aws_options, client_for
from cloudpipe.cli.report import EXIT_FAILED, EXIT_OK, NOTHING, fail
from cloudpipe.errors import (
    describe,
)
from cloudpipe.text import parse_url
from cloudpipe.uploads import abort_rule, pending_uploads

if TYPE_CHECKING:
    pass


_AGE = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*", re.IGNORECASE)

_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> datetime.timedelta:
    """A duration from ``90s``, ``30m``, ``12h``, ``1d``, ``2w`` (or plain seconds)."""
    match = _AGE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: use e.g. 30m, 12h, 1d or 2w")
    number, unit = match.groups()
    return datetime.timedelta(seconds=int(number) * _AGE_UNITS[unit.lower()])


def build_uploads_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


def uploads_main(argv: Sequence[str]) -> int:
    """``cloudpipe uploads``: list (and with --abort, abort) pending multipart uploads."""
    parser = build_uploads_parser()
    options = parser.parse_args(argv)
    try:
        bucket, prefix = parse_url(options.url, prefix=True)
    except ValueError as error:
        parser.error(str(error))
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
    if found and not options.abort:  # what becomes of the uploads left: said where some are
        print(f"cloudpipe: {rule}", file=sys.stderr)
    return EXIT_OK

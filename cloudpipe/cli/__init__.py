"""The ``cloudpipe`` command: standard input, a file or a producer's output into one S3 object.

    producer | cloudpipe [OPTIONS] [-] s3://BUCKET/KEY
    cloudpipe [OPTIONS] s3://BUCKET/KEY -- COMMAND [ARG...]
    cloudpipe resume JOURNAL [OPTIONS] [--input FILE | -- COMMAND [ARG...]]
    cloudpipe uploads s3://BUCKET[/PREFIX] [--older-than AGE] [--abort]
    cloudpipe verify s3://BUCKET/KEY [- | --input FILE | -- COMMAND [ARG...]]

One module per command (put, resume, uploads, verify), the options they share (options),
running a job and its signals (stream), and one place that turns how a job ended into a line,
an exit status and a JSON object (report).

Exit status (verify has its own: 0 identical, 1 not): 0 stored; 1 the upload failed (or the
producer did) and was aborted; 2 usage error; 130 interrupted (SIGINT or SIGTERM), 129 hung up
(SIGHUP), upload aborted. An interrupt that comes while the object is being completed is
answered by asking the store: if it holds the object, the status is 0 and the message says so.
Every failure's message, JSON and status come from the writer's recorded ending
(cloudpipe.Ending), never from the words of an error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cloudpipe.cli.put import put_main
from cloudpipe.cli.resume import resume_main
from cloudpipe.cli.uploads import uploads_main
from cloudpipe.cli.verify import verify_main

COMMANDS = {"resume": resume_main, "uploads": uploads_main, "verify": verify_main}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (by default the process's) names; its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = COMMANDS.get(argv[0]) if argv else None
    return command(argv[1:]) if command is not None else put_main(argv)


def entry_point() -> None:
    """The console script."""
    raise SystemExit(main())

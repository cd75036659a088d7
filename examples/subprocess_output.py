"""Store a command's standard output in S3 as it runs, like ``COMMAND | cloudpipe URL``.

    python examples/subprocess_output.py s3://BUCKET/KEY COMMAND [ARGS...]

For example, a database dump: ``... s3://backups/db.sql pg_dump mydb``. If the command fails,
the upload is aborted, so a failed dump never looks like a good one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import cloudpipe


def store_output(url: str, command: list[str]) -> int:
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        with cloudpipe.open(url, "wb") as writer:
            shutil.copyfileobj(process.stdout, writer, length=1 << 20)
            size = writer.tell()
            if process.wait() != 0:
                raise SystemExit(f"{command[0]} exited with {process.returncode}: upload aborted")
    print(f"{url}: {size} bytes from {command[0]}, ETag {writer.etag}")
    return size


if __name__ == "__main__":
    store_output(sys.argv[1], sys.argv[2:])

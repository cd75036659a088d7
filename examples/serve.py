"""A local S3 server to try cloudpipe by hand (``make serve``): SeaweedFS on 127.0.0.1 with a
bucket named ``demo``, and the AWS_* variables that point the command at it.

    python examples/serve.py [--bucket demo] [--port 9000]

Runs until Ctrl-C or SIGTERM; the data lives in a temporary directory, removed when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bucket", default="my-bucket", help="the bucket to create (my-bucket: the docs' examples)"
    )
    parser.add_argument("--port", type=int, default=0, help="S3's port (default: a free one)")
    args = parser.parse_args()
    # SIGTERM (make's, a service manager's) stops the server as Ctrl-C does, not orphaning it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with SeaweedFS(port=args.port) as server:
        server.client().create_bucket(Bucket=args.bucket)
        exports = {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        print("# SeaweedFS is answering S3; in another shell:")
        for name, value in exports.items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"# then, for example: seq 1000000 | cloudpipe s3://{args.bucket}/numbers.txt")
        print("# Ctrl-C (or SIGTERM) stops the server and removes its data.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

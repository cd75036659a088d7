"""The command's producer mode: ``cloudpipe s3://B/K -- COMMAND [ARG...]``.

In a shell pipeline (``pg_dump db | cloudpipe s3://b/db.sql``) cloudpipe sees only the end of
its input, never the producer's exit status: a dump that fails halfway ends the input as a
finished one does, and the truncated object replaces the good one. ``set -o pipefail`` only
makes the pipeline's status non-zero afterwards, once the object is already stored. Here
cloudpipe runs the producer itself, streams its standard output, and learns its exit status
before it completes the object.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
from typing import IO


class ProducerError(Exception):
    """The producer could not be started (``status`` 2, a usage error), or ended without
    success (``status`` 1)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Producer:
    """A running command whose standard output is the stream.

    Its standard input and standard error are cloudpipe's own (a password prompt and its
    messages pass through); only its standard output is taken.
    """

    @staticmethod
    def check(argv: list[str]) -> None:
        """Refuse, before any upload starts, a command that is not there to run."""
        if shutil.which(argv[0]) is None:
            raise ProducerError(f"cannot run {quoted(argv)}: command not found", status=2)

    def __init__(self, argv: list[str]) -> None:
        self.name = quoted(argv)
        try:
            self._process = subprocess.Popen(argv, stdout=subprocess.PIPE)
        except OSError as error:
            message = f"cannot run {self.name}: {error.strerror or error}"
            raise ProducerError(message, status=2) from None
        assert self._process.stdout is not None
        self.stdout: IO[bytes] = self._process.stdout

    def signal(self, signum: int) -> None:
        """Pass a signal cloudpipe received on to the producer, if it still runs."""
        if self._process.poll() is None:
            self._process.send_signal(signum)

    def finish(self) -> None:
        """Wait for the producer, whose output has ended; a ProducerError unless it exited 0."""
        self.stdout.close()
        self._process.wait()
        failed = self.failure()
        if failed is not None:
            raise failed

    def failure(self, seconds: float = 1.0) -> ProducerError | None:
        """The producer's failure, if it has exited without success (waiting ``seconds``
        for it to exit): when its output ended early, it is what to blame, not the input."""
        try:
            status = self._process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
        if status > 0:
            return ProducerError(f"the producer {self.name} exited with status {status}")
        if status < 0:
            name = signal.Signals(-status).name
            return ProducerError(f"the producer {self.name} was killed by {name}")
        return None

    def stop(self) -> None:
        """End the producer after a failure of cloudpipe's own: nothing reads its output now."""
        self.stdout.close()
        if self._process.poll() is None:
            self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


SHOWN = 80
"""Characters of a command a message shows; a longer one is cut, with "..."."""


def quoted(argv: list[str]) -> str:
    """The command as a shell would take it, quoted once for a message: ``'pg_dump db'``,
    ``"sh -c 'tar c .'"`` (never a shell quote escaped again), cut after SHOWN characters,
    and a repr where it holds what cannot be printed (a newline)."""
    text = shlex.join(argv)
    if len(text) > SHOWN:
        text = text[: SHOWN - 3] + "..."
    if not text.isprintable():
        return repr(text)
    return f'"{text}"' if "'" in text else f"'{text}'"

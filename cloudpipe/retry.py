"""Retries: how many tries a request gets, how long each may take, how long to wait between
them, and which failures are worth another try.

Retries compose with botocore's own: cloudpipe's ``max_attempts`` counts its own tries, and
each try is one botocore call. The client cloudpipe makes when given none has botocore's
retries turned off (``total_max_attempts=1``), so ``max_attempts`` is the exact number of
requests per part. A client passed in keeps its own retry configuration, and its retries
happen inside each of cloudpipe's tries; pass one built with
``Config(retries={"total_max_attempts": 1})`` for exact counts.

Tries are spaced to ride out an outage rather than to give up quickly: the first retry comes
after about a second, the second about five seconds later, then every twenty seconds, so the
default three tries span more than five seconds and ten tries more than a minute. Every try
has a deadline, past which it is cut off and counts as a failed one.

All that holds once a connection to the endpoint has been made. Before one ever has, a failure
to connect is almost always a wrong or missing endpoint rather than an outage, and a minute of
silence would look like a hang: the tries stop after FIRST_CONTACT seconds in all
(EndpointUnreachable).
Each retry is logged with a ``retry`` attribute (a Retrying) that the command's progress line
shows.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloudpipe.deadline import WATCHER
from cloudpipe.errors import describe, is_retryable, never_connected, short_cause

LOG = logging.getLogger("cloudpipe")

MIN_RATE = 256 * 1024
"""Bytes a second: a request body slower than this (plus the client's timeouts) is cut off."""
COMPLETE_SECONDS_PER_PART = 0.1
"""Extra deadline CompleteMultipartUpload gets for each part (S3 may take minutes for many)."""
FIRST_CONTACT = 3.0
"""Seconds a request's tries may take in all (plus time for its body) while no connection to
the endpoint has ever been made: a store that is there accepts one in well under a second."""


@dataclass(frozen=True)
class Backoff:
    """The wait before each retry: ``first`` seconds, times ``growth`` each time, at most
    ``cap``, stretched by up to ``jitter`` (never shortened, so an outage of a known length
    is always ridden out)."""

    first: float = 1.0
    growth: float = 5.0
    cap: float = 20.0
    jitter: float = 0.25

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        nominal = min(self.cap, self.first * self.growth ** (retry - 1))
        return nominal * random.uniform(1.0, 1.0 + self.jitter)


BACKOFF = Backoff()


class GaveUp(Exception):
    """A request failed for good: ``str()`` says which and why in one line (``part 3 failed
    after 3 attempts: SlowDown: ...``); the last botocore failure is ``__cause__``."""


class EndpointUnreachable(GaveUp):
    """A request gave up without a connection to the endpoint having ever been made."""


@dataclass(frozen=True)
class Retrying:
    """A request about to be tried again: what a progress line says about it."""

    what: str
    attempt: int
    """The try about to be made (2 for the first retry)."""
    max_attempts: int
    delay: float
    cause: str
    """Why the last try failed, in a few words (``connection refused``, ``SlowDown``)."""

    def __str__(self) -> str:
        return (
            f"retrying {self.what} in {self.delay:.0f} s: {self.cause}, attempt "
            f"{self.attempt} of {self.max_attempts}"
        )


class Retries:
    """The tries of one writer's requests: at most ``max_attempts`` each, each within its
    deadline (the client's timeouts, ``patience`` seconds, plus time for what it carries)."""

    def __init__(self, max_attempts: int, patience: float, url: str, endpoint: str) -> None:
        self.max_attempts = max_attempts
        self.retried = 0
        """Requests sent again so far (a sign of throttling, for max_concurrency="auto")."""
        self.reached = False
        """Whether a connection to the endpoint has been made yet."""
        self._patience = patience
        self._url = url
        self._endpoint = endpoint
        self._parts_stopped = False
        self._hurried = False

    def stop_parts(self) -> None:
        """The upload is being abandoned: a part request in flight gets no more tries."""
        self._parts_stopped = True

    def hurry(self) -> None:
        """Someone is waiting to be let go (an interrupt came while the writer was ending):
        no request is tried again from now on, so that the ending takes one try each."""
        self._hurried = True

    def call(
        self, what: str, request: Callable[..., Mapping[str, Any]], part: bool, **params: Any
    ) -> dict[str, Any]:
        """``request(**params)``'s answer, tried until it succeeds, fails for good (GaveUp),
        or the tries run out; ``part``: it is a part's, which an abandoned upload stops."""
        started = time.monotonic()
        first_contact = started + FIRST_CONTACT + self.carrying(params)
        attempt = 1
        while True:
            seconds = self.deadline(params)
            if not self.reached:
                seconds = max(0.1, min(seconds, first_contact - time.monotonic()))
            failure: ClientError | BotoCoreError | None = None
            with WATCHER.deadline(seconds) as deadline:
                try:
                    response = dict(request(**params))
                except (ClientError, BotoCoreError) as error:
                    failure = error
            if failure is None and not deadline.expired:
                self.reached = True
                return response
            if deadline.expired:
                self.reached |= not deadline.connecting
            else:
                self.reached |= failure is not None and not never_connected(failure)
            # cut off at its deadline, whatever botocore made of the half-read answer
            retryable = deadline.expired or (failure is not None and is_retryable(failure))
            stopped = self._hurried or (self._parts_stopped and part)
            delay = BACKOFF.delay(attempt)
            cause = short_cause(failure, seconds if deadline.expired else None)
            unreached = not self.reached and retryable
            late = unreached and time.monotonic() + delay >= first_contact
            if unreached and (late or attempt >= self.max_attempts or stopped):
                spent = time.monotonic() - started
                raise EndpointUnreachable(
                    f"{what} failed: {self._endpoint} could not be reached ({cause}; {attempt} "
                    f"attempt{'s' * (attempt > 1)} in {spent:.1f} s)"
                ) from failure
            if attempt >= self.max_attempts or not retryable or stopped:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                described = describe(failure) if failure is not None else "an answer cut short"
                if deadline.expired:
                    described = f"cut off at its deadline of {seconds:.0f} s ({described})"
                raise GaveUp(f"{what} failed{tries}: {described}") from failure
            self.retried += 1
            LOG.warning(
                "%s: %s failed (attempt %d of %d): %s; retrying in %.2f s",
                self._url,
                what,
                attempt,
                self.max_attempts,
                describe(failure) if failure is not None else "cut off at its deadline",
                delay,
                extra={"retry": Retrying(what, attempt + 1, self.max_attempts, delay, cause)},
            )
            time.sleep(delay)
            attempt += 1

    def deadline(self, params: Mapping[str, Any]) -> float:
        """Seconds a request may take: the client's timeouts, plus time in proportion to what
        it carries."""
        return self._patience + self.carrying(params)

    @staticmethod
    def carrying(params: Mapping[str, Any]) -> float:
        """Seconds for what a request carries: its body at MIN_RATE, or the parts
        CompleteMultipartUpload joins."""
        body = params.get("Body")
        parts = params.get("MultipartUpload", {}).get("Parts", ())
        return (len(body) / MIN_RATE if body is not None else 0.0) + len(
            parts
        ) * COMPLETE_SECONDS_PER_PART

"""A writer's arguments, checked and made whole before the writer exists (as ``zipfile``
checks its mode before it opens a file): a wrong one is a TypeError or ValueError naming it,
with nothing sent, nothing created and nothing left to clean up."""

from __future__ import annotations

import logging
import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudpipe.autoconcurrency import MAX_CONCURRENCY, AutoPace, FixedPace
from cloudpipe.clients import configured_attempts, default_client
from cloudpipe.errors import MemoryBudgetError
from cloudpipe.partsize import MAX_PART_SIZE, MIN_PART_SIZE, MiB, PartPolicy, PartSizeSchedule

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LOG = logging.getLogger("cloudpipe")
MAX_KEY_BYTES = 1024
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # what botocore itself lets through
DEFAULT_AUTO_MEMORY = 70 * 2**20
"""max_memory for max_concurrency="auto" when not given: the least that holds 13 parts of
5 MiB in flight beside one filling (what a link whose connections each carry a tenth of it
needs), which holds 7 of 8 MiB; raised to two parts (one uploading, one filling) when parts
are larger than half of it."""
CALLBACKS = ("on_ready", "on_drained", "on_error", "on_end")


@dataclass(frozen=True)
class WriterArguments:
    """What a writer is made from, every argument checked, defaults resolved."""

    bucket: str
    key: str
    client: S3Client
    schedule: PartSizeSchedule
    pace: FixedPace | None
    """None: synchronous (each part stored before ``write()`` returns)."""
    max_attempts: int
    extra_args: Mapping[str, Any]
    checksum: str
    callbacks: dict[str, Callable[..., object] | None]
    journal: str | None


def check_arguments(
    bucket: object,
    key: object,
    *,
    client: S3Client | None,
    part_size: object,
    expected_size: object = None,
    max_attempts: object,
    extra_args: object,
    checksum: object,
    max_concurrency: object,
    max_memory: object,
    callbacks: Mapping[str, object],
    journal: object = None,
    part_policy: object = None,
) -> WriterArguments:
    """The writer's arguments, checked; a TypeError or ValueError for the first wrong one."""
    bucket = check_bucket(bucket)
    key = check_key(key)
    size = check_int("part_size", part_size, MIN_PART_SIZE, MAX_PART_SIZE, "5 MiB to 5 GiB")
    expected = None
    if expected_size is not None:
        expected = check_int("expected_size", expected_size, 0, None, "0 or more")
    attempts = configured_attempts() if max_attempts is None else max_attempts
    attempts = check_int("max_attempts", attempts, 1, None, "1 or more")
    concurrency, memory = _check_concurrency(max_concurrency, max_memory)
    if not isinstance(checksum, str):
        raise TypeError(f"checksum must be a str, not {type(checksum).__name__}")
    if extra_args is not None and not isinstance(extra_args, Mapping):
        raise TypeError(f"extra_args must be a dict, not {type(extra_args).__name__}")
    for name, callback in callbacks.items():
        check_callback(name, callback)
    if part_policy is not None and not isinstance(part_policy, PartPolicy):
        raise TypeError(
            f"part_policy must be a cloudpipe.PartPolicy or None, not {type(part_policy).__name__}"
        )
    if journal is not None and not isinstance(journal, (str, os.PathLike)):
        raise TypeError(f"journal must be a path or None, not {type(journal).__name__}")
    if journal is not None and checksum == "none":
        raise ValueError("journal needs checksum 'crc32' or 'md5': it records each part's CRC32")
    client = default_client() if client is None else client
    policy = part_policy or PartPolicy.for_endpoint(client.meta.endpoint_url)
    schedule = PartSizeSchedule.choose(size, expected, policy)
    connections = getattr(client.meta.config, "max_pool_connections", MAX_CONCURRENCY)
    return WriterArguments(
        bucket=bucket,
        key=key,
        client=client,
        schedule=schedule,
        pace=pace_for(concurrency, memory, schedule.base, connections),
        max_attempts=attempts,
        extra_args=extra_args or {},
        checksum=checksum,
        callbacks=dict(callbacks),  # type: ignore[arg-type]  # checked callable above
        journal=None if journal is None else os.fspath(journal),
    )


def _check_concurrency(concurrency: object, memory: object) -> tuple[int | str, int | None]:
    if isinstance(concurrency, str) and concurrency != "auto":
        raise ValueError(
            f"max_concurrency={concurrency!r}: an int 1 to {MAX_CONCURRENCY}, or 'auto'"
        )
    if concurrency == "auto":
        if memory is None:
            return "auto", None
        return "auto", check_int("max_memory", memory, 1, None, "1 or more")
    allowed = f"1 to {MAX_CONCURRENCY}, or 'auto'"
    parts = check_int("max_concurrency", concurrency, 1, MAX_CONCURRENCY, allowed)
    if memory is not None:
        raise ValueError("max_memory applies to max_concurrency='auto' only")
    return parts, None


def pace_for(
    concurrency: int | str, memory: int | None, part_size: int, connections: int
) -> FixedPace | None:
    """How many parts fly at once; None: synchronous, one part, uploaded in ``write()``.
    Auto stays within the client's ``connections`` (more would open a connection per part)."""
    if concurrency != "auto":
        return FixedPace(int(concurrency)) if int(concurrency) > 1 else None
    if memory is None:
        memory = max(DEFAULT_AUTO_MEMORY, 2 * part_size)
        if memory > DEFAULT_AUTO_MEMORY:
            LOG.info(
                "max_memory for max_concurrency='auto' is %d MiB, two parts of %d MiB "
                "(the default, %d MiB, holds fewer)",
                memory // MiB,
                part_size // MiB,
                DEFAULT_AUTO_MEMORY // MiB,
            )
    elif memory < 2 * part_size:
        raise MemoryBudgetError(memory, part_size)
    return AutoPace(memory, part_size, connections, smallest=MIN_PART_SIZE)


def check_callback(name: str, callback: object) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable or None, not {type(callback).__name__}")


def check_int(name: str, value: object, low: int, high: int | None, allowed: str) -> int:
    """``value`` as an int (any integer type: NumPy's too), checked against its range."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name}={number} is out of range: it must be {allowed}")
    return number


def check_bucket(bucket: object) -> str:
    if not isinstance(bucket, str):
        raise TypeError(f"bucket must be a str, not {type(bucket).__name__}")
    if not (_BUCKET_NAME.fullmatch(bucket) or bucket.startswith("arn:")):
        hint = " (cloudpipe.open takes s3:// URLs)" if "/" in bucket else ""
        raise ValueError(f"bucket {bucket!r} is not a valid bucket name{hint}")
    return bucket


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"key {key!r} is not valid Unicode text") from None
    if size > MAX_KEY_BYTES:
        raise ValueError(f"key is {size} bytes in UTF-8; S3 allows at most {MAX_KEY_BYTES}")
    return key

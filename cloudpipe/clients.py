"""The clients cloudpipe makes, and the user's AWS configuration they honour (profiles, the
AWS_* variables, ``max_attempts``)."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloudpipe.autoconcurrency import MAX_CONCURRENCY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CRC32_HEADER = "x-amz-checksum-crc32"
DEFAULT_ATTEMPTS = 3
"""Tries per request when neither the caller nor the AWS configuration says (the seed's 3)."""


CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, max_pool_connections=MAX_CONCURRENCY)
"""For the clients cloudpipe makes: no retries of botocore's (cloudpipe retries, and counts),
and a connection kept for each part that may be in flight (botocore keeps 10)."""


def default_client() -> S3Client:
    """``boto3.client("s3")``, which honours AWS_* variables and profiles, with CLIENT_CONFIG."""
    return boto3.client("s3", config=CLIENT_CONFIG)


def make_client(
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    session: boto3.session.Session | None = None,
) -> S3Client:
    """A client as the AWS CLI would make it (the profile's credentials and settings, the
    AWS_* variables), for ``endpoint_url`` if given, with CLIENT_CONFIG."""
    if session is None:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    elif profile is not None:
        raise ValueError("pass a boto3 session or a profile, not both")
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=CLIENT_CONFIG)


def sign_checksummed_bodies_unhashed(client: S3Client) -> None:
    """Have ``client`` sign an UploadPart or PutObject body that goes over TLS with its CRC32
    header without hashing it (UNSIGNED-PAYLOAD in SigV4), as botocore does for checksums it
    computes itself: TLS and the CRC32 the store checks keep the body whole, and the SHA256
    would cost a quarter of an upload's CPU. Over plain HTTP the body is hashed as before."""
    for operation in ("UploadPart", "PutObject"):
        client.meta.events.register(
            f"before-sign.s3.{operation}",
            _checksum_in_header,
            unique_id=f"cloudpipe-checksum-in-header-{operation}",
        )


def _checksum_in_header(request: Any, **_: Any) -> None:
    """Tell botocore's signer where the body's checksum is: it looks only where its own
    checksum would be (Content-MD5 unless it computed one), and hashes the body otherwise."""
    checksum = request.context.get("checksum", {})
    if (
        request.url.startswith("https:")
        and "request_algorithm" not in checksum
        and CRC32_HEADER in request.headers
    ):
        where = {"algorithm": "crc32", "in": "header", "name": CRC32_HEADER}
        request.context["checksum"] = checksum | {"request_algorithm": where}


def object_exists(client: S3Client, bucket: str, key: str) -> bool:
    """Whether HeadObject finds an object at the key; False when it cannot tell (no read
    permission, say): an exclusive write's If-None-Match decides at the end, atomically."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        return False
    return True


CLIENT_ARGS = ("endpoint_url", "profile", "region", "session")
"""What open() takes instead of a client: where the store is and who you are there."""


def with_client(writer_args: dict[str, Any]) -> dict[str, Any]:
    """``writer_args`` with CLIENT_ARGS replaced by the client they name (none given, and no
    client: the writer makes its default one)."""
    named = {name: writer_args.pop(name) for name in CLIENT_ARGS if name in writer_args}
    if not named:
        return writer_args
    if writer_args.get("client") is not None:
        raise ValueError(f"pass client or {', '.join(named)}, not both")
    return writer_args | {"client": make_client(**named)}


def configured_attempts(profile: str | None = None, default: int = DEFAULT_ATTEMPTS) -> int:
    """Tries per request as the user's AWS configuration sets them (``AWS_MAX_ATTEMPTS``, or
    ``max_attempts`` in the profile), else ``default``."""
    where = ("AWS_MAX_ATTEMPTS", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")
    value = _configured_value(profile, tuple(os.environ.get(name) for name in where))
    try:
        attempts = int(value) if value is not None else default
    except ValueError:
        raise ValueError(
            f"max_attempts in the AWS configuration is not a number: {value!r}"
        ) from None
    if attempts < 1:
        raise ValueError(f"max_attempts in the AWS configuration must be 1 or more, not {attempts}")
    return attempts


@functools.lru_cache(maxsize=8)
def _configured_value(profile: str | None, environment: tuple[str | None, ...]) -> str | None:
    """``max_attempts`` from botocore's configuration chain, read once per profile and
    environment (a botocore session takes milliseconds to load; writers come by the
    thousand)."""
    value = botocore.session.Session(profile=profile).get_config_variable("max_attempts")
    return None if value is None else str(value)

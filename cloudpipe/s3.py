"""The S3 requests of one upload: which extra_args each carries, retries, deadlines, the
checks of every answer, and one-line errors.

Retries compose with botocore's own: cloudpipe's ``max_attempts`` counts its own tries, and
each try is one botocore call. The client cloudpipe makes when given none has botocore's
retries turned off (``total_max_attempts=1``), so ``max_attempts`` is the exact number of
requests per part. A client passed in keeps its own retry configuration, and its retries
happen inside each of cloudpipe's tries; pass one built with
``Config(retries={"total_max_attempts": 1})`` for exact counts.

Tries are spaced to ride out an outage rather than to give up quickly: the first retry comes
after about a second, the second about five seconds later, then every twenty seconds, so the
default three tries span more than five seconds and ten tries more than a minute.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.model import StructureShape
from botocore.validate import ParamValidator

from cloudpipe.autoconcurrency import MAX_CONCURRENCY
from cloudpipe.checksums import (
    Checksums,
    composite_crc32,
    crc32,
    key_md5,
    multipart_etag,
    quoted,
)
from cloudpipe.deadline import WATCHER
from cloudpipe.ending import shown
from cloudpipe.errors import (
    ObjectExistsError,
    UploadError,
    describe,
    error_code,
    is_retryable,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

LOG = logging.getLogger("cloudpipe")
"""Retries (WARNING) and parts stored (DEBUG); the writer logs each upload's ending."""

DEFAULT_ATTEMPTS = 3
"""Tries per request when neither the caller nor the AWS configuration says (the seed's 3)."""
MIN_RATE = 256 * 1024
"""Bytes a second: a request body slower than this (plus the client's timeouts) is cut off."""
COMPLETE_SECONDS_PER_PART = 0.1
"""Extra deadline CompleteMultipartUpload gets for each part (S3 may take minutes for many)."""


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

CREATE = "CreateMultipartUpload"
UPLOAD_PART = "UploadPart"
COMPLETE = "CompleteMultipartUpload"
ABORT = "AbortMultipartUpload"
PUT = "PutObject"
HEAD = "HeadObject"
DELETE = "DeleteObject"
LIST_PARTS = "ListParts"
OPERATIONS = (CREATE, UPLOAD_PART, COMPLETE, ABORT, PUT, HEAD, DELETE, LIST_PARTS)
_FOLLOW_UP = (HEAD, DELETE, LIST_PARTS)
"""Requests that read back or remove what was written: they take only the arguments that say
who owns the bucket and how the object is encrypted, never conditions or settings."""
_FOLLOW_UP_ARGS = frozenset(
    {
        "ExpectedBucketOwner",
        "RequestPayer",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
    }
)

_SECRETS = frozenset({"SSECustomerKey", "CopySourceSSECustomerKey"})
"""Arguments whose values no message may show."""

_PER_REQUEST = frozenset(
    {
        "Bucket",
        "Key",
        "Body",
        "ContentLength",
        "ContentMD5",
        "UploadId",
        "PartNumber",
        "MultipartUpload",
        "MpuObjectSize",
        "WriteOffsetBytes",
        "IfMatchInitiatedTime",
    }
)
"""Request members cloudpipe sets itself, request by request: never taken from extra_args."""


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


def _is_per_request(member: str) -> bool:
    # ChecksumCRC32, ChecksumSHA256, ...: a digest of one body, not a setting of the object.
    checksum_value = member.startswith("Checksum") and member not in (
        "ChecksumAlgorithm",
        "ChecksumType",
    )
    return member in _PER_REQUEST or checksum_value


def route_extra_args(
    client: S3Client, bucket: str, key: str, extra_args: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Split ``extra_args`` into the arguments of each request, checked against botocore's model.

    A key goes to every request whose input takes it: ContentType and Metadata to
    CreateMultipartUpload and PutObject only, SSE-C keys also to every UploadPart and to
    CompleteMultipartUpload, ExpectedBucketOwner and RequestPayer to every request, the
    HeadObject and DeleteObject of the integrity checks included. An unknown
    key or a value of the wrong type is a ValueError now rather than a failed request later.
    """
    _check_headers(extra_args)
    shapes = {op: _input_shape(client, op) for op in OPERATIONS}
    members = {op: set(shape.members) for op, shape in shapes.items()}
    allowed = {m for op in (CREATE, PUT, COMPLETE) for m in members[op] if not _is_per_request(m)}
    unknown = sorted(set(extra_args) - allowed)
    if unknown:
        raise ValueError(
            f"extra_args: unknown key {unknown[0]!r}; accepted keys: {', '.join(sorted(allowed))}"
        )
    routed = {op: {k: v for k, v in extra_args.items() if k in members[op]} for op in OPERATIONS}
    for op in _FOLLOW_UP:
        routed[op] = {k: v for k, v in routed[op].items() if k in _FOLLOW_UP_ARGS}
    validator = ParamValidator()
    for op in OPERATIONS:
        placeholders = {"Bucket": bucket, "Key": key, "UploadId": "-", "PartNumber": 1}
        placeholders |= {name: "-" for name in _SECRETS}  # checked by _check_headers
        params = {k: v for k, v in placeholders.items() if k in members[op]} | {
            k: v for k, v in routed[op].items() if k not in _SECRETS
        }
        report = validator.validate(params, shapes[op])
        if report.has_errors():
            lines = report.generate_report().splitlines()
            raise ValueError("extra_args: " + "; ".join(line.strip() for line in lines))
    return routed


def _check_headers(extra_args: Mapping[str, Any]) -> None:
    """Refuse now what cannot travel as an HTTP header, rather than fail (or be retried) later.

    S3 carries these arguments in headers, which take printable ASCII only: a CR or LF would
    split the request, and other characters break its signature. An SSE-C key is never shown.
    """
    for name, value in extra_args.items():
        if name in _SECRETS:
            if not isinstance(value, (str, bytes)):
                raise ValueError(
                    f"extra_args {name} must be str or bytes, not {type(value).__name__}"
                )
        elif name == "Metadata" and isinstance(value, Mapping):
            for field, text in value.items():
                for what, item in (("name", field), ("value", text)):
                    if isinstance(item, str) and not _is_header_text(item):
                        raise ValueError(
                            f"extra_args Metadata {field!r}: the {what} is not printable ASCII, "
                            "which S3 metadata must be (HTTP headers): encode it first, "
                            "e.g. with urllib.parse.quote"
                        )
        elif isinstance(value, str) and not _is_header_text(value):
            raise ValueError(
                f"extra_args {name}={value!r} is not printable ASCII, which it must be to "
                "travel as an HTTP header"
            )


def _encode_sse_c(args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` with an SSE-C key as S3 takes it (base64, with its MD5): what botocore does
    for the requests that write and read objects, but not for ListParts."""
    key = args.get("SSECustomerKey")
    if key is None or "SSECustomerKeyMD5" in args:
        return dict(args)
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return dict(args) | {
        "SSECustomerKey": base64.b64encode(data).decode("ascii"),
        "SSECustomerKeyMD5": key_md5(data),
    }


def _is_header_text(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _input_shape(client: S3Client, operation: str) -> StructureShape:
    shape = client.meta.service_model.operation_model(operation).input_shape
    assert shape is not None, f"botocore's model of {operation} has no input"
    return shape


class ObjectRequests:
    """Every request that writes one object, each retried, given a deadline, its answer
    checked, and failing as one UploadError."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        extra_args: Mapping[str, Any],
        max_attempts: int,
        checksum: str = "crc32",
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.max_attempts = max_attempts
        self.retries = 0
        """Requests sent again so far (a sign of throttling, for max_concurrency="auto")."""
        self._parts_stopped = False
        self._hurried = False
        self._checksums = Checksums(checksum)
        chosen = {"ChecksumAlgorithm", "ChecksumType"} & set(extra_args)
        if chosen and checksum != "none":
            raise ValueError(
                f"extra_args {sorted(chosen)[0]} and checksum={checksum!r} both choose the "
                "checksum: pass checksum='none' to use extra_args alone"
            )
        self._args = route_extra_args(client, bucket, key, extra_args)
        self._args[CREATE] |= self._checksums.create_args
        self._args[LIST_PARTS] = _encode_sse_c(self._args[LIST_PARTS])
        self._part_checksums = "ChecksumAlgorithm" in self._args[CREATE]
        config = client.meta.config  # botocore-stubs do not list the timeouts Config has
        timeouts = (getattr(config, "read_timeout", 60), getattr(config, "connect_timeout", 60))
        self._patience = float(sum(timeouts))

    def stop_parts(self) -> None:
        """The upload is being abandoned: a part request in flight gets no more tries."""
        self._parts_stopped = True

    def hurry(self) -> None:
        """Someone is waiting to be let go (an interrupt came while the writer was ending):
        no request is tried again from now on, so that the ending takes one try each."""
        self._hurried = True

    @property
    def url(self) -> str:
        """The object's URL as messages show it (a repr when the key is not printable)."""
        return shown(f"s3://{self.bucket}/{self.key}")

    def put_object(self, body: bytearray, crc: int | None = None) -> dict[str, Any]:
        """Store the whole object with one PutObject, and check what S3 says it stored
        (``crc``: the body's CRC32, if already computed)."""
        sent = self._checksums.body_args(body, crc)
        declared = {"ChecksumAlgorithm": "CRC32"} if "ChecksumCRC32" in sent else {}
        response = self._call(
            PUT,
            None,
            None,
            self.client.put_object,
            Body=body,
            ContentLength=len(body),
            **sent,
            **declared,  # some stores keep a CRC32 only when told which algorithm it is
            **self._args[PUT],
        )
        self._require(response, "ETag", PUT, None, None)
        problem = self._checksums.mismatch(sent, response)
        if problem:
            self._discard(response)
            raise self._integrity_error(PUT, problem, None, None)
        return response

    def create(self) -> str:
        """Start a multipart upload and return its id."""
        response = self._call(
            CREATE, None, None, self.client.create_multipart_upload, **self._args[CREATE]
        )
        return str(self._require(response, "UploadId", CREATE, None, None))

    def upload_part(
        self, upload_id: str, number: int, body: bytearray, crc: int | None = None
    ) -> CompletedPartTypeDef:
        """Store one part, check what S3 says it stored, return its entry for Complete
        (``crc``: the body's CRC32, if already computed)."""
        sent = self._checksums.body_args(body, crc)
        what = f"part {number}"
        started = time.perf_counter()
        response = self._call(
            what,
            upload_id,
            number,
            self.client.upload_part,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentLength=len(body),
            **sent,
            **self._args[UPLOAD_PART],
        )
        etag = self._require(response, "ETag", what, upload_id, number)
        problem = self._checksums.mismatch(sent, response)
        if problem:
            raise self._integrity_error(what, problem, upload_id, number)
        LOG.debug(
            "%s: part %d stored: %d bytes in %.3f s",
            self.url,
            number,
            len(body),
            time.perf_counter() - started,
        )
        part: dict[str, Any] = {"ETag": etag, "PartNumber": number}
        if self._part_checksums:
            part |= {k: v for k, v in response.items() if _is_per_request(k) and k != "ContentMD5"}
            part |= {k: v for k, v in sent.items() if k != "ContentMD5"}
        return part  # type: ignore[return-value]

    def complete(
        self, upload_id: str, parts: list[CompletedPartTypeDef], whole_crc32: str | None = None
    ) -> dict[str, Any]:
        """Join the parts into the object and check it (``whole_crc32``: the parts' CRC32s
        combined, against a full-object CRC32 the store reports); the answer always carries
        its ETag.

        A failure here leaves the outcome unknown (the store may have completed the object
        before the answer was lost): the caller finds out with ``stored``.
        """
        response = self._call(
            COMPLETE,
            upload_id,
            None,
            self.client.complete_multipart_upload,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            **self._checksums.complete_args(whole_crc32),
            **self._args[COMPLETE],
        )
        self._fill_in_after_complete(upload_id, parts, response)
        problem = self._checksums.object_mismatch(parts, response, whole_crc32)
        if problem:
            self._discard(response)
            raise self._integrity_error(COMPLETE, problem, upload_id, None)
        return response

    def _fill_in_after_complete(
        self, upload_id: str, parts: list[CompletedPartTypeDef], response: dict[str, Any]
    ) -> None:
        """What Complete's answer left out, from HeadObject: the ETag (Ceph RGW answers with
        an empty one) and the object's CRC32 (moto and Ceph answer without). The object found
        must be the one these parts make: anything else at the key (the object it held
        before) is left alone, and a missing ETag is then a failure."""
        needs_etag = not response.get("ETag")
        needs_crc = self._checksums.mode != "none" and not response.get("ChecksumCRC32")
        if not (needs_etag or needs_crc):
            return
        what = f"{COMPLETE} answered without ETag, and {HEAD}"
        try:
            head = self._call(
                HEAD,
                upload_id,
                None,
                self.client.head_object,
                ChecksumMode="ENABLED",
                **self._args[HEAD],
            )
        except UploadError as error:
            if not needs_etag:
                return  # the object's CRC32 stays unknown; its ETag was checked
            cause = describe(error.__cause__) if error.__cause__ else str(error)
            raise self.error(f"{what} failed: {cause}", upload_id, None) from error
        etag = quoted(str(head.get("ETag") or ""))
        expected = multipart_etag(parts) if needs_etag else quoted(str(response["ETag"]))
        if expected is not None and etag != expected:
            if not needs_etag:
                return  # another object is there already: its CRC32 is not this one's
            raise self.error(
                f"{what} finds another object at the key (ETag {etag}, not {expected}): "
                f"is {self.client.meta.endpoint_url} an S3 endpoint?",
                upload_id,
                None,
            )
        if needs_etag:
            response["ETag"] = str(self._require(head, "ETag", what, upload_id, None))
        if needs_crc and head.get("ChecksumCRC32"):
            response["ChecksumCRC32"] = head["ChecksumCRC32"]
            response["ChecksumType"] = head.get("ChecksumType")

    def abort(self, upload_id: str) -> None:
        """Abort the upload so that no part stays stored (and billed); gone already is fine."""
        try:
            self._call(
                ABORT,
                upload_id,
                None,
                self.client.abort_multipart_upload,
                UploadId=upload_id,
                **self._args[ABORT],
            )
        except UploadError as error:
            cause = error.__cause__
            if error_code(cause) != "NoSuchUpload":
                raise

    def list_parts(self, upload_id: str) -> dict[int, dict[str, Any]]:
        """The parts the store holds for the upload, by number (ListParts, page by page)."""
        found: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            page = self._call(
                LIST_PARTS,
                upload_id,
                None,
                self.client.list_parts,
                UploadId=upload_id,
                MaxParts=1000,
                PartNumberMarker=marker,
                **self._args[LIST_PARTS],
            )
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = part
            if not page.get("IsTruncated"):
                return found
            following = int(page.get("NextPartNumberMarker") or 0)
            if following <= marker:
                raise self.error(
                    f"{LIST_PARTS} answered a truncated page without a next marker", upload_id, None
                )
            marker = following

    def stored(
        self,
        parts: list[CompletedPartTypeDef] | None,
        body: bytearray | None,
        whole_crc32: str | None = None,
    ) -> dict[str, Any] | None:
        """HeadObject's answer if the key holds the object these ``parts`` (their CRC32s
        combined: ``whole_crc32``) or this single PutObject ``body`` make, else None: how an
        unknown outcome is found out.

        For a multipart upload, call it once the upload is aborted: it can no longer complete,
        so the answer is final. Nothing can stop a PutObject the store already has whole,
        so for one the answer is what the store holds when asked.
        """
        try:
            head = self._call(
                HEAD,
                None,
                None,
                self.client.head_object,
                ChecksumMode="ENABLED",
                **self._args[HEAD],
            )
        except UploadError:
            return None
        etag = quoted(str(head.get("ETag") or ""))
        if parts is not None:
            crcs = {composite_crc32(parts), whole_crc32} - {None}
            same = etag == multipart_etag(parts) or head.get("ChecksumCRC32") in crcs
            # an ETag that is not an MD5 of MD5s (SSE-KMS): the composite or full CRC32
        else:
            assert body is not None
            same = head.get("ContentLength") == len(body) and (
                etag == quoted(hashlib.md5(body).hexdigest())
                or head.get("ChecksumCRC32") == crc32(body)  # an ETag that is not an MD5
            )
        return head if same else None

    def _require(
        self,
        response: Mapping[str, Any],
        member: str,
        what: str,
        upload_id: str | None,
        part_number: int | None,
    ) -> Any:
        """``response[member]``, which S3 always sends: its absence means the endpoint is not
        (or not acting as) an S3 server, and is a failure, never a success without it."""
        value = response.get(member)
        if not value:
            endpoint = self.client.meta.endpoint_url
            raise self.error(
                f"{what} answered without {member}: is {endpoint} an S3 endpoint?",
                upload_id,
                part_number,
            )
        return value

    def _discard(self, response: Mapping[str, Any]) -> None:
        """Delete an object (this version of it) that failed its integrity check."""
        version = response.get("VersionId")
        self._call(
            DELETE,
            None,
            None,
            self.client.delete_object,
            **({"VersionId": version} if version else {}),
            **self._args[DELETE],
        )

    def _deadline(self, params: Mapping[str, Any]) -> float:
        """Seconds a request may take: the client's timeouts, plus time in proportion to what
        it carries (its body at MIN_RATE, or the parts CompleteMultipartUpload joins)."""
        body = params.get("Body")
        parts = params.get("MultipartUpload", {}).get("Parts", ())
        return (
            self._patience
            + (len(body) / MIN_RATE if body is not None else 0.0)
            + len(parts) * COMPLETE_SECONDS_PER_PART
        )

    def _integrity_error(
        self, what: str, problem: str, upload_id: str | None, part_number: int | None
    ) -> UploadError:
        return self.error(f"{what} failed its integrity check: {problem}", upload_id, part_number)

    def error(
        self,
        message: str,
        upload_id: str | None,
        part_number: int | None,
        kind: type[UploadError] = UploadError,
    ) -> UploadError:
        """An UploadError (or ``kind``) about this object: ``s3://bucket/key: message``."""
        return kind(
            f"{self.url}: {message}",
            bucket=self.bucket,
            key=self.key,
            upload_id=upload_id,
            part_number=part_number,
        )

    def _call(
        self,
        what: str,
        upload_id: str | None,
        part_number: int | None,
        request: Callable[..., Mapping[str, Any]],
        **params: Any,
    ) -> dict[str, Any]:
        seconds = self._deadline(params)
        attempt = 1
        while True:
            failure: ClientError | BotoCoreError | None = None
            with WATCHER.deadline(seconds) as deadline:
                try:
                    response = dict(request(Bucket=self.bucket, Key=self.key, **params))
                except (ClientError, BotoCoreError) as error:
                    failure = error
            if failure is None and not deadline.expired:
                return response
            # cut off at its deadline, whatever botocore made of the half-read answer
            retryable = deadline.expired or (failure is not None and is_retryable(failure))
            stopped = self._hurried or (self._parts_stopped and part_number is not None)
            if attempt >= self.max_attempts or not retryable or stopped:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                cause = describe(failure) if failure is not None else "an answer cut short"
                if deadline.expired:
                    cause = f"cut off at its deadline of {seconds:.0f} s ({cause})"
                message = f"{what} failed{tries}: {cause}"
                taken = error_code(failure) == "PreconditionFailed"
                kind = ObjectExistsError if taken and params.get("IfNoneMatch") else UploadError
                raise self.error(message, upload_id, part_number, kind) from failure
            self.retries += 1
            delay = BACKOFF.delay(attempt)
            LOG.warning(
                "%s: %s failed (attempt %d of %d): %s; retrying in %.2f s",
                self.url,
                what,
                attempt,
                self.max_attempts,
                describe(failure) if failure is not None else "cut off at its deadline",
                delay,
            )
            time.sleep(delay)
            attempt += 1

"""The S3 requests of one upload: which extra_args each carries, retries, and one-line errors.

Retries compose with botocore's own: cloudpipe's ``max_attempts`` counts its own tries, and
each try is one botocore call. The client cloudpipe makes when given none has botocore's
retries turned off (``total_max_attempts=1``), so ``max_attempts`` is the exact number of
requests per part. A client passed in keeps its own retry configuration, and its retries
happen inside each of cloudpipe's tries; pass one built with
``Config(retries={"total_max_attempts": 1})`` for exact counts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.model import StructureShape
from botocore.validate import ParamValidator

from cloudpipe.checksums import Checksums, multipart_etag, quoted
from cloudpipe.errors import UploadError, describe, is_retryable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

BACKOFF_BASE = 0.25
"""Seconds: the ceiling of the first back-off; it doubles each try (full jitter below it)."""
BACKOFF_CAP = 20.0

CREATE = "CreateMultipartUpload"
UPLOAD_PART = "UploadPart"
COMPLETE = "CompleteMultipartUpload"
ABORT = "AbortMultipartUpload"
PUT = "PutObject"
HEAD = "HeadObject"
DELETE = "DeleteObject"
OPERATIONS = (CREATE, UPLOAD_PART, COMPLETE, ABORT, PUT, HEAD, DELETE)
_FOLLOW_UP = (HEAD, DELETE)
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


def default_client() -> S3Client:
    """``boto3.client("s3")``, which honours AWS_* variables and profiles, minus its retries."""
    return boto3.client("s3", config=Config(retries={"total_max_attempts": 1}))


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
        params = {k: v for k, v in placeholders.items() if k in members[op]} | routed[op]
        report = validator.validate(params, shapes[op])
        if report.has_errors():
            lines = report.generate_report().splitlines()
            raise ValueError("extra_args: " + "; ".join(line.strip() for line in lines))
    return routed


def _input_shape(client: S3Client, operation: str) -> StructureShape:
    shape = client.meta.service_model.operation_model(operation).input_shape
    assert shape is not None, f"botocore's model of {operation} has no input"
    return shape


class ObjectRequests:
    """Every request that writes one object, each retried and failing as one UploadError."""

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
        self._checksums = Checksums(checksum)
        chosen = {"ChecksumAlgorithm", "ChecksumType"} & set(extra_args)
        if chosen and checksum != "none":
            raise ValueError(
                f"extra_args {sorted(chosen)[0]} and checksum={checksum!r} both choose the "
                "checksum: pass checksum='none' to use extra_args alone"
            )
        self._args = route_extra_args(client, bucket, key, extra_args)
        self._args[CREATE] |= self._checksums.create_args
        self._part_checksums = "ChecksumAlgorithm" in self._args[CREATE]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def put_object(self, body: bytearray) -> dict[str, Any]:
        """Store the whole object with one PutObject, and check what S3 says it stored."""
        sent = self._checksums.body_args(body)
        response = self._call(
            PUT,
            None,
            None,
            self.client.put_object,
            Body=body,
            ContentLength=len(body),
            **sent,
            **self._args[PUT],
        )
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
        return str(response["UploadId"])

    def upload_part(self, upload_id: str, number: int, body: bytearray) -> CompletedPartTypeDef:
        """Store one part, check what S3 says it stored, return its entry for Complete."""
        sent = self._checksums.body_args(body)
        response = self._call(
            f"part {number}",
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
        problem = self._checksums.mismatch(sent, response)
        if problem:
            raise self._integrity_error(f"part {number}", problem, upload_id, number)
        part: dict[str, Any] = {"ETag": response["ETag"], "PartNumber": number}
        if self._part_checksums:
            part |= {k: v for k, v in response.items() if _is_per_request(k) and k != "ContentMD5"}
            part |= {k: v for k, v in sent.items() if k != "ContentMD5"}
        return part  # type: ignore[return-value]

    def complete(self, upload_id: str, parts: list[CompletedPartTypeDef]) -> dict[str, Any]:
        """Join the parts into the object and check it; the answer always carries its ETag.

        When Complete fails (a lost answer, a retry told NoSuchUpload because the first try
        had worked), the object is looked up: if it is there with the ETag these parts make,
        the upload succeeded and is reported so, never aborted.
        """
        try:
            response = self._call(
                COMPLETE,
                upload_id,
                None,
                self.client.complete_multipart_upload,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **self._args[COMPLETE],
            )
        except UploadError:
            found = self._completed_object(parts)
            if found is None:
                raise
            return found
        if not response.get("ETag"):  # Ceph RGW answers Complete with an empty ETag
            head = self._call(HEAD, upload_id, None, self.client.head_object, **self._args[HEAD])
            response["ETag"] = head["ETag"]
        problem = self._checksums.object_mismatch(parts, response)
        if problem:
            self._discard(response)
            raise self._integrity_error(COMPLETE, problem, upload_id, None)
        return response

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
            if not (isinstance(cause, ClientError) and _code(cause) == "NoSuchUpload"):
                raise

    def _completed_object(self, parts: list[CompletedPartTypeDef]) -> dict[str, Any] | None:
        """HeadObject's answer if the object exists with the ETag ``parts`` make, else None."""
        expected = multipart_etag(parts)
        if expected is None:
            return None
        try:
            head = self._call(HEAD, None, None, self.client.head_object, **self._args[HEAD])
        except UploadError:
            return None
        return head if quoted(str(head.get("ETag", ""))) == expected else None

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

    def _integrity_error(
        self, what: str, problem: str, upload_id: str | None, part_number: int | None
    ) -> UploadError:
        return self.error(f"{what} failed its integrity check: {problem}", upload_id, part_number)

    def error(self, message: str, upload_id: str | None, part_number: int | None) -> UploadError:
        """An UploadError about this object: ``s3://bucket/key: message``."""
        return UploadError(
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
        attempt = 1
        while True:
            try:
                return dict(request(Bucket=self.bucket, Key=self.key, **params))
            except (ClientError, BotoCoreError) as error:
                if attempt >= self.max_attempts or not is_retryable(error):
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    message = f"{what} failed{tries}: {describe(error)}"
                    raise self.error(message, upload_id, part_number) from error
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))))
            attempt += 1


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))

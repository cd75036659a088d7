"""extra_args: which of the caller's request arguments each S3 request of an upload takes,
checked against botocore's model (and HTTP's rules for headers) before anything is sent."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.model import StructureShape
from botocore.validate import ParamValidator

from cloudpipe.checksums import key_md5

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CREATE = "CreateMultipartUpload"
UPLOAD_PART = "UploadPart"
COMPLETE = "CompleteMultipartUpload"
ABORT = "AbortMultipartUpload"
PUT = "PutObject"
HEAD = "HeadObject"
DELETE = "DeleteObject"
LIST_PARTS = "ListParts"
ATTRIBUTES = "GetObjectAttributes"
OPERATIONS = (CREATE, UPLOAD_PART, COMPLETE, ABORT, PUT, HEAD, DELETE, LIST_PARTS, ATTRIBUTES)
_FOLLOW_UP = (HEAD, DELETE, LIST_PARTS, ATTRIBUTES)
"""Requests that read back or remove what was written: they take only the arguments that say
who owns the bucket and how the object is encrypted, never conditions or settings."""
FOLLOW_UP_ARGS = frozenset(
    {
        "ExpectedBucketOwner",
        "RequestPayer",
        "SSECustomerAlgorithm",
        "SSECustomerKey",
        "SSECustomerKeyMD5",
    }
)

SECRETS = frozenset({"SSECustomerKey", "CopySourceSSECustomerKey"})
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


def is_per_request(member: str) -> bool:
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
    allowed = {m for op in (CREATE, PUT, COMPLETE) for m in members[op] if not is_per_request(m)}
    unknown = sorted(set(extra_args) - allowed)
    if unknown:
        raise ValueError(
            f"extra_args: unknown key {unknown[0]!r}; accepted keys: {', '.join(sorted(allowed))}"
        )
    routed = {op: {k: v for k, v in extra_args.items() if k in members[op]} for op in OPERATIONS}
    for op in _FOLLOW_UP:
        routed[op] = {k: v for k, v in routed[op].items() if k in FOLLOW_UP_ARGS}
    validator = ParamValidator()
    for op in OPERATIONS:
        placeholders = {"Bucket": bucket, "Key": key, "UploadId": "-", "PartNumber": 1}
        placeholders["ObjectAttributes"] = ["ETag"]
        placeholders |= {name: "-" for name in SECRETS}  # checked by _check_headers
        params = {k: v for k, v in placeholders.items() if k in members[op]} | {
            k: v for k, v in routed[op].items() if k not in SECRETS
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
        if name in SECRETS:
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


def encode_sse_c(args: Mapping[str, Any]) -> dict[str, Any]:
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

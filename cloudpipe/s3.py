"""The S3 requests of one upload (and those that read back what it stored, for resume and
verify), each sent through one helper (its extra_args, its retries and deadline from
cloudpipe.retry), its answer checked, and failing as one UploadError.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore import xform_name

from cloudpipe.checksums import Checksums, composite_crc32, crc32, multipart_etag, quoted
from cloudpipe.clients import sign_checksummed_bodies_unhashed
from cloudpipe.ending import shown
from cloudpipe.errors import (
    EndpointUnreachableError,
    ObjectExistsError,
    UploadError,
    describe,
    error_code,
)
from cloudpipe.extra_args import (
    ABORT,
    ATTRIBUTES,
    COMPLETE,
    CREATE,
    DELETE,
    HEAD,
    LIST_PARTS,
    PUT,
    UPLOAD_PART,
    encode_sse_c,
    is_per_request,
    route_extra_args,
)
from cloudpipe.retry import EndpointUnreachable, GaveUp, Retries

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

LOG = logging.getLogger("cloudpipe")
"""Parts stored (DEBUG); cloudpipe.retry logs retries, the writer each upload's ending."""


class ObjectRequests:
    """Every request that writes one object: each sent through ``_send`` (its arguments, its
    tries), its answer checked here, and failing as one UploadError."""

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
        self._checksums = Checksums(checksum)
        chosen = {"ChecksumAlgorithm", "ChecksumType"} & set(extra_args)
        if chosen and checksum != "none":
            raise ValueError(
                f"extra_args {sorted(chosen)[0]} and checksum={checksum!r} both choose the "
                "checksum: pass checksum='none' to use extra_args alone"
            )
        sign_checksummed_bodies_unhashed(client)
        self._args = route_extra_args(client, bucket, key, extra_args)
        self._args[CREATE] |= self._checksums.create_args
        for unencoded in (LIST_PARTS, ATTRIBUTES):  # botocore encodes an SSE-C key elsewhere
            self._args[unencoded] = encode_sse_c(self._args[unencoded])
        self._part_checksums = "ChecksumAlgorithm" in self._args[CREATE]
        config = client.meta.config  # botocore-stubs do not list the timeouts Config has
        timeouts = (getattr(config, "read_timeout", 60), getattr(config, "connect_timeout", 60))
        patience, endpoint = float(sum(timeouts)), client.meta.endpoint_url
        self.tries = Retries(max_attempts, patience, self.url, endpoint)
        self._once = Retries(1, patience, self.url, endpoint)

    @property
    def url(self) -> str:
        """The object's URL as messages show it (a repr when the key is not printable)."""
        return shown(f"s3://{self.bucket}/{self.key}")

    @property
    def retries(self) -> int:
        """Requests sent again so far (a sign of throttling, for max_concurrency="auto")."""
        return self.tries.retried

    def put_object(self, body: bytearray, crc: int | None = None) -> dict[str, Any]:
        """Store the whole object with one PutObject, and check what S3 says it stored
        (``crc``: the body's CRC32, if already computed)."""
        sent = self._checksums.body_args(body, crc)
        declared = {"ChecksumAlgorithm": "CRC32"} if "ChecksumCRC32" in sent else {}
        # some stores keep a CRC32 only when told which algorithm it is: ``declared``
        response = self._send(PUT, {"Body": body, "ContentLength": len(body)} | sent | declared)
        self._require(response, "ETag", PUT, None, None)
        problem = self._checksums.mismatch(sent, response)
        if problem:
            self._discard(response)
            raise self._integrity_error(PUT, problem, None, None)
        return response

    def create(self) -> str:
        """Start a multipart upload and return its id."""
        response = self._send(CREATE, {})
        return str(self._require(response, "UploadId", CREATE, None, None))

    def upload_part(
        self, upload_id: str, number: int, body: bytearray, crc: int | None = None
    ) -> CompletedPartTypeDef:
        """Store one part, check what S3 says it stored, return its entry for Complete
        (``crc``: the body's CRC32, if already computed)."""
        sent = self._checksums.body_args(body, crc)
        what = f"part {number}"
        started = time.perf_counter()
        params: dict[str, Any] = {"UploadId": upload_id, "PartNumber": number, "Body": body}
        params |= {"ContentLength": len(body), **sent}
        response = self._send(UPLOAD_PART, params, what, upload_id, number)
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
            part |= {k: v for k, v in response.items() if is_per_request(k) and k != "ContentMD5"}
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
        params = {"UploadId": upload_id, "MultipartUpload": {"Parts": parts}}
        params |= self._checksums.complete_args(whole_crc32)
        response = self._send(COMPLETE, params, COMPLETE, upload_id)
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
            head = self._head(upload_id)
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
            self._send(ABORT, {"UploadId": upload_id}, ABORT, upload_id)
        except UploadError as error:
            if error_code(error.__cause__) != "NoSuchUpload":
                raise

    def list_parts(self, upload_id: str) -> dict[int, dict[str, Any]]:
        """The parts the store holds for the upload, by number (ListParts, page by page)."""
        found: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            params = {"UploadId": upload_id, "MaxParts": 1000, "PartNumberMarker": marker}
            page = self._send(LIST_PARTS, params, LIST_PARTS, upload_id)
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
            head = self._head(None)
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

    def _send(
        self,
        operation: str,
        params: Mapping[str, Any],
        what: str | None = None,
        upload_id: str | None = None,
        part_number: int | None = None,
        tries: Retries | None = None,
    ) -> dict[str, Any]:
        """Send ``operation`` for this object with ``params`` and the extra_args it takes,
        tried as cloudpipe.retry says (``tries``, else the upload's); an UploadError (``what``
        failed...) when it gave up, an ObjectExistsError when the store refused to replace an
        object (``IfNoneMatch``), an EndpointUnreachableError when no connection to the
        endpoint was ever made."""
        request = getattr(self.client, xform_name(operation))
        arguments = {"Bucket": self.bucket, "Key": self.key, **params, **self._args[operation]}
        try:
            return (tries or self.tries).call(
                what or operation, request, part_number is not None, **arguments
            )
        except GaveUp as failure:
            taken = "IfNoneMatch" in arguments and error_code(failure.__cause__) == (
                "PreconditionFailed"
            )
            kind = ObjectExistsError if taken else UploadError
            if isinstance(failure, EndpointUnreachable):
                kind = EndpointUnreachableError
            raise self.error(str(failure), upload_id, part_number, kind) from failure.__cause__

    def head(self, part_number: int | None = None) -> dict[str, Any]:
        """HeadObject of the key (of one of its parts: ``part_number``), with the object's
        checksum."""
        if part_number is None:
            return self._head(None)
        return self._send(HEAD, {"PartNumber": part_number}, f"{HEAD} of part {part_number}")

    def attributes(self, part_marker: int) -> dict[str, Any]:
        """GetObjectAttributes of the key: its ETag, checksum, size, and a page of its parts
        (up to 1,000, after ``part_marker``). Tried once: stores without it answer 500 (Ceph
        16) or 501, which are not worth the retries an outage gets."""
        wanted = ["ETag", "Checksum", "ObjectParts", "ObjectSize"]
        params = {"ObjectAttributes": wanted, "MaxParts": 1000, "PartNumberMarker": part_marker}
        return self._send(ATTRIBUTES, params, tries=self._once)

    def _head(self, upload_id: str | None) -> dict[str, Any]:
        """HeadObject of the key, with the object's checksum."""
        return self._send(HEAD, {"ChecksumMode": "ENABLED"}, HEAD, upload_id)

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
        self._send(DELETE, {"VersionId": version} if version else {})

    def _integrity_error(
        self, what: str, problem: str, upload_id: str | None, part_number: int | None
    ) -> UploadError:
        return self.error(f"{what} failed its integrity check: {problem}", upload_id, part_number)

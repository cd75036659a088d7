"""What a store keeps of one object that a source can be compared against, asked without
reading a byte of the object: its size, ETag and checksum (HeadObject), and where it can be
had, how the object was cut into parts and each part's digest.

Stores keep different things. AWS keeps the CRC32 cloudpipe declares (the whole stream's),
and gives each part's size and CRC32 (GetObjectAttributes); SeaweedFS and moto keep the
CRC32 and give the part sizes (moto through a HeadObject of each part, whose ETag is that
part's MD5); a store that keeps no checksum (Ceph 16) leaves the ETag: the MD5 of a single
PutObject, or the MD5 of the parts' MD5s, which can be recomputed only with the part sizes.
Where the store gives no part sizes, they are assumed (a part size given, or cloudpipe's
default, as equal parts or as cloudpipe's growing schedule): a comparison that rests on sizes
assumed can show the source identical, never different.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cloudpipe.checksums import multipart_etag, quoted
from cloudpipe.errors import UploadError, error_code
from cloudpipe.partsize import DEFAULT_PART_SIZE, MAX_PARTS, PartSizeSchedule
from cloudpipe.retry import GaveUp
from cloudpipe.s3 import ObjectRequests

PART_HEADS = 16
"""HeadObject requests in flight when the part sizes are asked for one part at a time."""

_MISSING = ("404", "NoSuchKey", "NotFound")
_PARTS_SUFFIX = re.compile(r"-(\d+)$")
_MD5 = re.compile(r'"?[0-9a-fA-F]{32}"?')


@dataclass(frozen=True)
class StoredPart:
    """One part of the object as the store gives it (or as assumed)."""

    number: int
    offset: int
    size: int
    crc32: str | None = None
    """The part's CRC32 (base64, as S3 writes it), where the store gives it."""
    md5: str | None = None
    """The part's MD5 (hex), where the store gives it: a HeadObject of the part answering
    with an ETag that is not the object's, and that, with the others, makes the object's."""

    @property
    def last_byte(self) -> int:
        return self.offset + self.size - 1


@dataclass(frozen=True)
class Layout:
    """How the object was cut into parts, from the store or assumed."""

    parts: tuple[StoredPart, ...]
    assumed: str | None = None
    """Why the sizes are assumed (``parts of 8MiB``), or None: the store gave them."""

    @property
    def sizes(self) -> Iterator[int]:
        return (part.size for part in self.parts)


@dataclass(frozen=True)
class StoredObject:
    """What the store keeps of the object that a source can be compared against."""

    size: int
    etag: str
    part_count: int | None
    """Parts the object was uploaded in; None for a single PutObject."""
    crc32: str | None
    """The object's CRC32 as the store reports it (base64; a composite one may end "-N")."""
    crc32_type: str | None
    """``FULL_OBJECT``, ``COMPOSITE``, or None where the store does not say."""
    etag_is_md5: bool
    """Whether the ETag is made of MD5s (not under SSE-KMS or SSE-C)."""
    layout: Layout | None
    """The parts, where known or assumed; a single PutObject is one part of the whole size."""

    @property
    def full_crc32(self) -> bool:
        """Whether ``crc32`` is the CRC32 of the whole object's bytes."""
        single = self.part_count is None
        return self.crc32 is not None and (single or self.crc32_type == "FULL_OBJECT")

    @property
    def composite_crc32(self) -> bool:
        """Whether ``crc32`` is (or, the store not saying, may be) the CRC32 of the parts'
        CRC32s: where it is not a full one."""
        return self.crc32 is not None and not self.full_crc32


def find(requests: ObjectRequests, part_size: int | None) -> StoredObject | None:
    """What the store keeps of the object ``requests`` are about; None when there is no
    object at the key. ``part_size``: the upload's part size, where the store gives none.

    Raises UploadError for what prevents an answer: no such bucket, access denied, an
    endpoint that does not answer, an SSE-C object asked without its key."""
    try:
        head = requests.head()
    except UploadError as error:
        if error_code(error.__cause__) not in _MISSING:
            raise
        _check_bucket(requests)
        return None
    missing = [member for member in ("ContentLength", "ETag") if head.get(member) in (None, "")]
    if missing:  # what every S3 store answers: not to be guessed at
        endpoint = requests.client.meta.endpoint_url
        raise requests.error(
            f"HeadObject answered without {missing[0]}: is {endpoint} an S3 endpoint?", None, None
        )
    size = int(head["ContentLength"])
    etag = quoted(str(head["ETag"]))
    bare = etag.strip('"')
    suffix = _PARTS_SUFFIX.search(bare) or _PARTS_SUFFIX.search(
        str(head.get("ChecksumCRC32") or "")
    )
    count = int(suffix.group(1)) if suffix else None
    encrypted = head.get("SSECustomerAlgorithm") or str(
        head.get("ServerSideEncryption") or ""
    ).startswith("aws:kms")
    stored = StoredObject(
        size=size,
        etag=etag,
        part_count=count,
        crc32=str(head["ChecksumCRC32"]) if head.get("ChecksumCRC32") else None,
        crc32_type=str(head["ChecksumType"]) if head.get("ChecksumType") else None,
        etag_is_md5=not encrypted and _MD5.fullmatch(_PARTS_SUFFIX.sub("", bare)) is not None,
        layout=None,
    )
    if count is None:
        single = (StoredPart(1, 0, size),) if size else ()
        return dataclasses.replace(stored, layout=Layout(single))
    layout = _listed(requests, count, size)
    if layout is None and not stored.full_crc32:  # sizes needed: asked part by part
        layout = _asked_part_by_part(requests, count, size, etag)
    if layout is None and not stored.full_crc32:
        layout = _assumed(count, size, part_size)
    return dataclasses.replace(stored, layout=layout)


def _check_bucket(requests: ObjectRequests) -> None:
    """A HeadObject answering 404 says nothing of the bucket: ask, so that a bucket's name
    mistyped is an error, not an object found missing."""
    client = requests.client
    try:
        requests.tries.call("HeadBucket", client.head_bucket, False, Bucket=requests.bucket)
    except GaveUp as failure:
        if error_code(failure.__cause__) in (*_MISSING, "NoSuchBucket"):
            raise requests.error(f"no such bucket {requests.bucket!r}", None, None) from None
        # another answer (no permission to list the bucket): the object is still missing


def _listed(requests: ObjectRequests, count: int, size: int) -> Layout | None:
    """The parts GetObjectAttributes lists (AWS lists them for objects uploaded with
    checksums, with each part's; SeaweedFS lists their sizes); None where it lists none."""
    parts: list[StoredPart] = []
    marker, offset = 0, 0
    while True:
        try:
            page = requests.attributes(marker)
        except UploadError:  # a store without GetObjectAttributes, or no permission for it
            return None
        listed = page.get("ObjectParts") or {}
        for part in listed.get("Parts") or ():
            length = int(part.get("Size") or 0)
            number = int(part.get("PartNumber") or 0)
            crc = part.get("ChecksumCRC32")
            parts.append(StoredPart(number, offset, length, str(crc) if crc else None))
            offset += length
        following = int(listed.get("NextPartNumberMarker") or 0)
        if not listed.get("IsTruncated") or following <= marker:
            break
        marker = following
    return _consistent(parts, count, size)


def _asked_part_by_part(
    requests: ObjectRequests, count: int, size: int, etag: str
) -> Layout | None:
    """The part sizes from a HeadObject of each part (PART_HEADS at a time); None where
    the store does not answer for parts. Each answer's ETag is kept as the part's MD5 if,
    together, they make the object's ETag (moto's answers; AWS and SeaweedFS give the
    object's ETag instead)."""
    try:
        first = requests.head(1)
    except UploadError:
        return None
    if int(first.get("PartsCount") or 0) != count:
        return None  # the part number ignored: the answer is about the whole object
    try:
        with ThreadPoolExecutor(PART_HEADS) as pool:
            answers = [first, *pool.map(requests.head, range(2, count + 1))]
    except UploadError:
        return None
    parts: list[StoredPart] = []
    offset = 0
    for number, answer in enumerate(answers, 1):
        length = int(answer.get("ContentLength") or 0)
        parts.append(StoredPart(number, offset, length, md5=_md5_of(answer)))
        offset += length
    entries = [{"ETag": quoted(part.md5 or "")} for part in parts]
    if multipart_etag(entries) != etag:
        parts = [StoredPart(p.number, p.offset, p.size) for p in parts]
    return _consistent(parts, count, size)


def _md5_of(answer: Mapping[str, Any]) -> str | None:
    etag = str(answer.get("ETag") or "")
    return etag.strip('"').lower() if _MD5.fullmatch(etag) else None


def _consistent(parts: list[StoredPart], count: int, size: int) -> Layout | None:
    """The parts as a layout, if they are the object's: ``count`` of them, numbered in
    order, adding up to ``size``."""
    numbered = [part.number for part in parts] == list(range(1, count + 1))
    if not numbered or sum(part.size for part in parts) != size:
        return None
    return Layout(tuple(parts))


def _assumed(count: int, size: int, part_size: int | None) -> Layout | None:
    """Parts of ``part_size`` (cloudpipe's default without one), equal or on cloudpipe's
    growing schedule, whichever makes ``count`` parts of ``size`` bytes; None if neither."""
    base = part_size or DEFAULT_PART_SIZE
    for grows in (False, True):
        schedule = PartSizeSchedule(base, grows, MAX_PARTS)
        parts: list[StoredPart] = []
        offset = 0
        while offset < size and len(parts) < count:
            length = min(schedule.size_of(len(parts) + 1), size - offset)
            parts.append(StoredPart(len(parts) + 1, offset, length))
            offset += length
        if offset == size and len(parts) == count:
            given = "the part size given" if part_size else "cloudpipe's default"
            how = ", growing as cloudpipe grows them" if grows else ""
            return Layout(tuple(parts), f"parts of {_mib(base)} ({given}{how})")
    return None


def _mib(size: int) -> str:
    return f"{size // 2**20}MiB" if size % 2**20 == 0 else f"{size} bytes"

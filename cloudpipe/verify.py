"""cloudpipe.verify: whether an S3 object holds a source's bytes, proved from what the store
keeps of it (cloudpipe.stored) without downloading it: the source is read once, cut as the
object was, and compared part by part where the store keeps each part's digest, then whole.

What is compared, best first: the object's FULL_OBJECT CRC32 (the whole stream's, which
cloudpipe declares); else a composite CRC32 of the parts' CRC32s; else the ETag, the MD5 of a
single PutObject or the MD5 of the parts' MD5s. The size comes first: a source of another
length differs at once.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from cloudpipe.arguments import check_bucket, check_callback, check_int, check_key
from cloudpipe.checksums import (
    composite_crc32,
    crc32_text,
    full_crc32,
    multipart_etag,
    quoted,
)
from cloudpipe.clients import DEFAULT_ATTEMPTS, default_client
from cloudpipe.ending import shown
from cloudpipe.errors import UploadError, error_code
from cloudpipe.extra_args import FOLLOW_UP_ARGS
from cloudpipe.partsize import MAX_PART_SIZE, MIN_PART_SIZE
from cloudpipe.s3 import ObjectRequests
from cloudpipe.sourceparts import SourcePart, read_into, read_parts
from cloudpipe.stored import StoredObject, StoredPart, find
from cloudpipe.text import parse_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Verdict(enum.Enum):
    """What a verification found."""

    IDENTICAL = "identical"
    """The store's size and digests are the source's."""
    DIFFERENT = "different"
    """The source differs (or there is no object at the key)."""
    UNKNOWN = "unknown"
    """The store keeps nothing that can tell: no checksum, and an ETag that is not an MD5
    or whose part sizes are not known (only the size matched)."""


@dataclass(frozen=True)
class Verification:
    """The answer of ``verify()``: the verdict, what it rests on, and where the source differs.

    Attributes:
        url: The object, ``s3://bucket/key``.
        verdict: IDENTICAL, DIFFERENT or UNKNOWN.
        compared: What the verdict rests on (``the FULL_OBJECT CRC32``, ``the part
            CRC32s``, ``the ETag (MD5 of 3 parts' MD5s)``, ``the size``).
        detail: One line on what was found, e.g. where the source differs.
        source_bytes: Bytes read from the source (all of it unless a difference stopped
            the reading).
        object_bytes: The object's size; None when there is no object at the key.
        parts: Parts the object was uploaded in; None for a single PutObject (or none).
        part: The first part found to differ, where the store keeps each part's digest.
        byte_range: That part's first and last byte offsets.
        seconds: Time the verification took.
    """

    url: str
    verdict: Verdict
    compared: str
    detail: str
    source_bytes: int
    object_bytes: int | None
    parts: int | None
    part: int | None
    byte_range: tuple[int, int] | None
    seconds: float

    @property
    def identical(self) -> bool:
        return self.verdict is Verdict.IDENTICAL

    def __str__(self) -> str:
        return f"{self.url}: {self.verdict.value}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        """The result as --json prints it."""
        return {
            "url": self.url,
            "verdict": self.verdict.value,
            "identical": self.identical,
            "compared": self.compared,
            "detail": self.detail,
            "source_bytes": self.source_bytes,
            "object_bytes": self.object_bytes,
            "parts": self.parts,
            "part": self.part,
            "byte_range": list(self.byte_range) if self.byte_range else None,
            "seconds": round(self.seconds, 3),
        }


def verify(
    bucket: str,
    key: str | None = None,
    *,
    source: IO[bytes] | str | os.PathLike[str],
    client: S3Client | None = None,
    part_size: int | None = None,
    extra_args: Mapping[str, Any] | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
    on_read: Callable[[int], object] | None = None,
) -> Verification:
    """Whether the object at ``bucket``/``key`` (or the URL ``s3://bucket/key`` alone) holds
    exactly the bytes of ``source``, found from what the store keeps, never by downloading.

    Args:
        bucket: The bucket, or the URL ``s3://bucket/key`` with no ``key``.
        key: The object's key.
        source: A binary file object read from where it stands to its end (standard input,
            a pipe: read once, never sought), or a path to open.
        client: A boto3 S3 client; by default ``boto3.client("s3")``.
        part_size: The part size of the upload, for an object whose store keeps neither a
            checksum nor the part sizes (only the ETag); cloudpipe's default otherwise.
        extra_args: What reading the object takes: ``SSECustomerKey`` (and
            ``SSECustomerAlgorithm``, AES256 by default) for an SSE-C object,
            ``ExpectedBucketOwner``, ``RequestPayer``.
        max_attempts: Tries per request.
        on_read: ``on_read(nbytes)`` as the source is read (a progress bar).

    Returns:
        A Verification: IDENTICAL, DIFFERENT (no object at the key is one) or UNKNOWN.

    Raises:
        UploadError: A request failed for good: no such bucket, access denied, an endpoint
            that does not answer, an SSE-C object asked without its key.
        ValueError, TypeError: Bad arguments, or a source that reads text.
        OSError: The source could not be read.
    """
    started = time.monotonic()
    bucket, key = _target(bucket, key)
    arguments = _read_args(extra_args)
    if part_size is not None:
        part_size = check_int(
            "part_size", part_size, MIN_PART_SIZE, MAX_PART_SIZE, "5 MiB to 5 GiB"
        )
    max_attempts = check_int("max_attempts", max_attempts, 1, None, "1 or more")
    check_callback("on_read", on_read)
    requests = ObjectRequests(
        client or default_client(), bucket, key, arguments, max_attempts, "none"
    )
    with _opened(source) as stream:
        try:
            stored = find(requests, part_size)
        except UploadError as error:
            if error_code(error.__cause__) != "400" or "SSECustomerKey" in arguments:
                raise
            hint = "; if the object is SSE-C encrypted, pass its key: extra_args SSECustomerKey"
            raise UploadError(f"{error}{hint}", bucket=bucket, key=key) from error.__cause__
        comparison = _Comparison(requests.url, stored, started)
        if stored is not None:
            comparison.read(stream, on_read)
    return comparison.result


def _target(bucket: str, key: str | None) -> tuple[str, str]:
    """The bucket and key, from both or from an ``s3://bucket/key`` URL alone."""
    if key is None:
        return parse_url(bucket)
    return check_bucket(bucket), check_key(key)


def _read_args(extra_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments reading the object takes; an SSE-C key is AES256 unless said."""
    given = dict(extra_args or {})
    unknown = sorted(set(given) - FOLLOW_UP_ARGS)
    if unknown:
        raise ValueError(
            f"extra_args {unknown[0]!r}: verify reads the object, and takes only "
            f"{', '.join(sorted(FOLLOW_UP_ARGS))}"
        )
    if "SSECustomerKey" in given:
        given.setdefault("SSECustomerAlgorithm", "AES256")
    return given


@contextlib.contextmanager
def _opened(source: IO[bytes] | str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as opened:
            yield opened
        return
    if not callable(getattr(source, "read", None)):
        raise TypeError(f"source must be a binary file or a path, not {type(source).__name__}")
    yield source


class _Comparison:
    """One source read against one stored object: the checks made as each part is read,
    then those of the whole, and the verdict they come to."""

    def __init__(self, url: str, stored: StoredObject | None, started: float) -> None:
        self.url = shown(url)
        self.stored = stored
        self.started = started
        self.read_bytes = 0
        self.parts: list[SourcePart] = []
        self.result = self._verdict(Verdict.DIFFERENT, "the key", "the store holds no object")

    def read(self, stream: IO[bytes], on_read: Callable[[int], object] | None) -> None:
        stored = self.stored
        assert stored is not None
        known = _length_left(stream)
        if known is not None and known != stored.size:
            self.result = self._size_differs(known)
            return

        def counted(count: int) -> None:
            self.read_bytes += count
            if on_read is not None:
                on_read(count)

        layout = stored.layout
        references = layout.parts if layout and not layout.assumed else ()
        md5 = not stored.crc32 and stored.etag_is_md5 and layout is not None
        sizes = list(layout.sizes) if layout else [stored.size]
        for found in read_parts(stream, sizes, md5=md5, on_read=counted):
            self.parts.append(found)
            reference = references[found.number - 1] if references else None
            if reference is not None and found.size == reference.size:
                differs = self._part_differs(found, reference)
                if differs is not None:
                    self.result = differs
                    return
        if self.read_bytes != stored.size or read_into(stream, memoryview(bytearray(1))):
            if self.read_bytes == stored.size:
                self.read_bytes += 1
            self.result = self._size_differs(None)
            return
        self.result = self._whole()

    def _part_differs(self, found: SourcePart, reference: StoredPart) -> Verification | None:
        """A DIFFERENT verdict naming the part, where the store keeps its digest and the
        source's is another."""
        if reference.crc32 is not None:
            mine, theirs, what = crc32_text(found.crc32), reference.crc32, "CRC32"
        elif reference.md5 is not None and found.md5 is not None:  # MD5s computed
            mine, theirs, what = found.md5.hex(), reference.md5, "MD5"
        else:
            return None
        if mine == theirs:
            return None
        span = (reference.offset, reference.last_byte)
        return self._verdict(
            Verdict.DIFFERENT,
            f"the part {what}s",
            f"part {reference.number} (bytes {span[0]} to {span[1]}) differs: the source's "
            f"{what} is {mine}, the store's {theirs}",
            part=reference.number,
            byte_range=span,
        )

    def _whole(self) -> Verification:
        """The verdict from the whole object's checksum or ETag, the source read to its end
        with the object's size."""
        stored = self.stored
        assert stored is not None
        layout, count = stored.layout, stored.part_count
        if stored.crc32 is None and not stored.etag_is_md5:
            return self._verdict(
                Verdict.UNKNOWN,
                "the size",
                "the store keeps no checksum, and its ETag is not an MD5 (SSE-KMS or SSE-C): "
                f"only the size could be compared, and it matches ({stored.size} bytes)",
            )
        if stored.full_crc32 and stored.crc32 is not None:
            whole = full_crc32((part.crc32, part.size) for part in self.parts)
            what = "the FULL_OBJECT CRC32" if count else "the CRC32"
            return self._decide(whole == stored.crc32, what, stored.crc32, None)
        if count is None:  # a single PutObject: its ETag is its MD5
            digest = self.parts[0].md5 if self.parts else hashlib.md5().digest()
            same = digest is not None and quoted(digest.hex()) == stored.etag
            return self._decide(same, "the ETag (MD5)", stored.etag, None)
        if stored.crc32 is not None:
            what = f"the composite CRC32 of {count} parts"
            value = stored.crc32.split("-")[0]  # moto leaves the "-N" off
        else:
            what, value = f"the ETag (MD5 of {count} parts' MD5s)", stored.etag
        if layout is None:
            return self._verdict(
                Verdict.UNKNOWN,
                what,
                f"the store keeps neither a checksum of the whole nor the sizes of the {count} "
                "parts its digest is made of, and no part size tried makes that many: pass the "
                "upload's part size (--part-size)",
            )
        if stored.crc32 is not None:
            entries = [{"ChecksumCRC32": crc32_text(part.crc32)} for part in self.parts]
            same = str(composite_crc32(entries)).split("-")[0] == value
        else:
            entries = [{"ETag": quoted(part.md5.hex() if part.md5 else "")} for part in self.parts]
            same = multipart_etag(entries) == value
        return self._decide(same, what, value, layout.assumed)

    def _decide(self, same: bool, what: str, value: str, assumed: str | None) -> Verification:
        """IDENTICAL or DIFFERENT as ``same`` says; UNKNOWN for a difference that may come
        of part sizes ``assumed`` rather than given by the store."""
        stored = self.stored
        assert stored is not None
        if same:
            sizes = f", {assumed}" if assumed else ""
            return self._verdict(
                Verdict.IDENTICAL, what, f"{what} {value} and the size, {stored.size} bytes{sizes}"
            )
        if assumed is None:
            where = ""
            if stored.part_count and stored.full_crc32:
                where = " (the store keeps no part checksums to say which part differs)"
            return self._verdict(
                Verdict.DIFFERENT,
                what,
                f"the source's {what.removeprefix('the ')} is not the store's {value}{where}",
            )
        return self._verdict(
            Verdict.UNKNOWN,
            what,
            f"{what} {value} is not the source's cut into {assumed}, which were assumed: the "
            "store does not give the part sizes; if the upload used another, pass it "
            "(--part-size)",
        )

    def _size_differs(self, length: int | None) -> Verification:
        stored = self.stored
        assert stored is not None
        if length is not None:
            self.read_bytes = 0
            found = f"the source has {length} bytes, the object {stored.size}"
        elif self.read_bytes > stored.size:
            found = f"the source is longer than the object's {stored.size} bytes"
        else:
            found = f"the source ends after {self.read_bytes} bytes, the object has {stored.size}"
        return self._verdict(Verdict.DIFFERENT, "the size", found)

    def _verdict(
        self,
        verdict: Verdict,
        compared: str,
        detail: str,
        *,
        part: int | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> Verification:
        stored = self.stored
        return Verification(
            url=self.url,
            verdict=verdict,
            compared=compared,
            detail=detail,
            source_bytes=self.read_bytes,
            object_bytes=stored.size if stored else None,
            parts=stored.part_count if stored else None,
            part=part,
            byte_range=byte_range,
            seconds=time.monotonic() - self.started,
        )


def _length_left(stream: IO[bytes]) -> int | None:
    """Bytes from the position to the end of a regular file, known without reading; None
    for a pipe, a socket or a file object without a descriptor."""
    try:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            return None
        return status.st_size - stream.tell()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None

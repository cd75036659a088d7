"""What each request carries so that S3 can verify it, and the checks of what S3 answers.

Modes (``checksum=``):

* ``"crc32"`` (the default): each part's CRC32 is computed once, as its bytes are copied into
  the part's buffer, and sent for the server to verify; the CRC32 the server echoes for a part
  must match ours. The object is declared a FULL_OBJECT CRC32 one: its CRC32 is the CRC32 of
  the whole stream (which a reader can check without knowing the part sizes), combined from
  the parts' and sent with CompleteMultipartUpload, for the store to verify; the CRC32 the
  store reports for the object, full or composite, must match ours. It costs what botocore's
  own default CRC32 costs, which it replaces.
* ``"md5"``: the same, plus each part's MD5 as Content-MD5 (verified by every S3 store, Ceph
  RGW included), each part's ETag compared to that MD5, and the object's ETag compared to the
  MD5 of the part MD5s. MD5 is slower than CRC32: see the docs for the measured cost.
* ``"none"``: cloudpipe adds nothing; botocore's defaults (or extra_args' ChecksumAlgorithm)
  apply.

In every mode the object's multipart ETag must be the MD5 of the part ETags S3 returned, with
"-N": S3 assembled exactly the parts cloudpipe listed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

try:  # ISA-L's CRC32 (pip install 'cloudpipe-s3[fast]'): the same value, three times as fast
    from isal.isal_zlib import crc32 as _crc32
except ImportError:
    from zlib import crc32 as _crc32

update_crc32 = _crc32
"""``update_crc32(data, crc=0)``: zlib's CRC32 of ``data`` going on from ``crc``."""

MODES = ("crc32", "md5", "none")
_MD5_ETAG = re.compile(r'"?([0-9a-fA-F]{32})"?')


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def crc32(body: bytes | bytearray) -> str:
    """The base64 CRC32 S3 expects in x-amz-checksum-crc32."""
    return crc32_text(update_crc32(body))


def crc32_text(value: int) -> str:
    """A CRC32 as S3 writes it: its 4 bytes, big-endian, in base64."""
    return _b64(value.to_bytes(4, "big"))


def crc32_value(text: str) -> int:
    """A CRC32 as S3 writes it, back as a number."""
    return int.from_bytes(base64.b64decode(text), "big")


def key_md5(key: str | bytes) -> str:
    """The SSECustomerKeyMD5 S3 keeps for an SSE-C key (botocore encodes a str as UTF-8)."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    return _b64(hashlib.md5(data).digest())


class Checksums:
    """One upload's checksum mode: the arguments it adds and the answers it checks."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"checksum={mode!r} is not one of {', '.join(map(repr, MODES))}")
        self.mode = mode

    @property
    def create_args(self) -> dict[str, str]:
        """Declare the algorithm and type up front, so that S3 keeps the whole object's CRC32
        (a store that knows no full-object checksums keeps a composite one, or none)."""
        if self.mode == "none":
            return {}
        return {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}

    def body_args(self, body: bytearray, crc: int | None = None) -> dict[str, str]:
        """ChecksumCRC32 (and ContentMD5) for one part or a whole single-PUT object;
        ``crc``: the body's CRC32, when already computed as it was filled."""
        if self.mode == "none":
            return {}
        value = crc32_text(crc) if crc is not None else crc32(body)
        args = {"ChecksumCRC32": value}
        if self.mode == "md5":
            args["ContentMD5"] = _b64(hashlib.md5(body).digest())
        return args

    def complete_args(self, whole_crc32: str | None) -> dict[str, str]:
        """The object's full CRC32, for the store to check against the parts it joins."""
        if self.mode == "none" or whole_crc32 is None:
            return {}
        return {"ChecksumCRC32": whole_crc32, "ChecksumType": "FULL_OBJECT"}

    def mismatch(self, sent: Mapping[str, str], answer: Mapping[str, Any]) -> str | None:
        """What differs between the checksums sent with a body and what S3 says it stored."""
        echoed = answer.get("ChecksumCRC32")
        if "ChecksumCRC32" in sent and echoed and echoed != sent["ChecksumCRC32"]:
            return f"S3 stored CRC32 {echoed}, cloudpipe sent {sent['ChecksumCRC32']}"
        if "ContentMD5" in sent:
            expected = base64.b64decode(sent["ContentMD5"]).hex()
            etag = str(answer.get("ETag", ""))
            if _MD5_ETAG.fullmatch(etag) and etag.strip('"').lower() != expected:
                return f"S3 stored ETag {etag}, the MD5 cloudpipe sent is {expected}"
        return None

    def object_mismatch(
        self,
        parts: Sequence[Mapping[str, Any]],
        answer: Mapping[str, Any],
        whole_crc32: str | None = None,
    ) -> str | None:
        """What differs between the completed object S3 reports and the parts it was made of
        (``whole_crc32``: their CRC32s combined, for a store that reports a full-object one)."""
        expected_etag = multipart_etag(parts)
        etag = quoted(str(answer.get("ETag", "")))
        if expected_etag and etag and etag != expected_etag:
            return f"the object's ETag is {etag}, its parts make {expected_etag}"
        reported = answer.get("ChecksumCRC32")
        if self.mode == "none" or not reported:
            return None
        expected = composite_crc32(parts) if "-" in str(reported) else whole_crc32
        if expected is not None and reported != expected:
            return f"the object's CRC32 is {reported}, its parts make {expected}"
        return None


def stored_crc32(answer: Mapping[str, Any]) -> dict[str, str] | None:
    """The CRC32 a completing request's ``answer`` says the store keeps, as
    ``S3MultipartWriter.checksum`` gives it; None when it keeps none."""
    value = answer.get("ChecksumCRC32") if answer.get("ETag") is not None else None
    if not value:
        return None
    kind = "COMPOSITE" if "-" in str(value) else "FULL_OBJECT"
    return {"algorithm": "CRC32", "type": kind, "value": str(value)}


def quoted(etag: str) -> str:
    """An ETag in the double quotes S3 puts around it (Ceph RGW leaves them off at times)."""
    return f'"{etag.strip(chr(34))}"' if etag else etag


_CRC32_POLY = 0xEDB88320  # CRC-32 (ISO-HDLC, zlib's), bits reflected
_X0 = 1 << 31  # the polynomial 1 (x to the power 0), reflected


def _multiply(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC-32 polynomial, both reflected."""
    product = 0
    bit = _X0
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC32_POLY if b & 1 else b >> 1
    return product


@functools.lru_cache(maxsize=64)  # parts mostly share a size: one power per size
def _x_to_the(power: int) -> int:
    """x to the ``power`` modulo the CRC-32 polynomial, by squaring."""
    result, square = _X0, _X0 >> 1  # 1, and x
    while power:
        if power & 1:
            result = _multiply(square, result)
        square = _multiply(square, square)
        power >>= 1
    return result


def crc32_combine(first: int, second: int, second_length: int) -> int:
    """The CRC32 of A followed by B, from ``crc32(A)``, ``crc32(B)`` and ``len(B)``: the
    whole object's CRC32 from its parts' without reading a byte again."""
    return _multiply(_x_to_the(8 * second_length), first) ^ second


def full_crc32(parts: Iterable[tuple[int, int]]) -> str:
    """The CRC32 of a whole object (base64, as S3 reports a FULL_OBJECT checksum) from its
    parts' ``(CRC32, size)``."""
    whole = 0
    for crc, size in parts:
        whole = crc32_combine(whole, crc, size)
    return crc32_text(whole)


def composite_crc32(parts: Sequence[Mapping[str, Any]]) -> str | None:
    """The composite CRC32 S3 reports for an object made of ``parts``: the CRC32 of their
    CRC32s, then "-N"; None when a part has no CRC32 (checksum="none")."""
    if not all(part.get("ChecksumCRC32") for part in parts):
        return None
    joined = b"".join(base64.b64decode(part["ChecksumCRC32"]) for part in parts)
    return f"{crc32(joined)}-{len(parts)}"


def multipart_etag(parts: Sequence[Mapping[str, Any]]) -> str | None:
    """The ETag S3 gives an object made of ``parts``: MD5 of their MD5s, then "-N".

    None when a part's ETag is not an MD5 (some encryption modes), so there is nothing to check.
    """
    digests = []
    for part in parts:
        match = _MD5_ETAG.fullmatch(str(part.get("ETag", "")))
        if match is None:
            return None
        digests.append(bytes.fromhex(match.group(1)))
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(parts)}"'

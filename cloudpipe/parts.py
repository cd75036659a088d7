"""StoredParts: the record of an upload's stored parts, kept small so that memory stays flat
however many parts a stream takes.

CompleteMultipartUpload needs each part's number and ETag (and its checksums), and the
object's checks need each part's CRC32 and size. Kept as dicts, that is some 400 bytes a part
(0.4 MiB for an 8 GiB stream in 8 MiB parts, which the peak memory would carry); kept here,
24 bytes: an MD5 ETag as its 16 bytes, a CRC32 as its 4, a size in an array. A part whose
entry does not fit that shape (an ETag that is not an MD5, other checksums) is kept whole.
"""

from __future__ import annotations

import re
from array import array
from typing import TYPE_CHECKING, Any

from cloudpipe.checksums import crc32_text, crc32_value, full_crc32

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_COMPACT_ETAG = re.compile(r'"([0-9a-f]{32})"')  # as S3 quotes an MD5, rebuilt to the letter


class StoredParts:
    """Parts 1 to N of an upload, in order, compactly."""

    def __init__(self) -> None:
        self._etags = bytearray()
        self._crcs = bytearray()
        self._has_crc = bytearray()
        self._sizes = array("Q")
        self._whole: dict[int, CompletedPartTypeDef] = {}  # parts that do not fit the shape

    def __len__(self) -> int:
        return len(self._sizes)

    def add(self, part: CompletedPartTypeDef, size: int) -> None:
        """Record the next part (its entry for Complete, and its size)."""
        number = len(self) + 1
        assert part["PartNumber"] == number, "parts are recorded in order"
        match = _COMPACT_ETAG.fullmatch(str(part["ETag"]))
        crc = part.get("ChecksumCRC32")
        others = set(part) - {"ETag", "PartNumber", "ChecksumCRC32"}
        if match is None or others or (crc is not None and len(str(crc)) != 8):
            self._whole[number] = part
            self._etags += bytes(16)
            self._crcs += bytes(4)
            self._has_crc.append(0)
        else:
            self._etags += bytes.fromhex(match.group(1))
            self._crcs += crc32_value(crc).to_bytes(4, "big") if crc is not None else bytes(4)
            self._has_crc.append(crc is not None)
        self._sizes.append(size)

    def entries(self) -> list[CompletedPartTypeDef]:
        """Every part's entry for CompleteMultipartUpload, in order (built when asked)."""
        return [self.entry(number) for number in range(1, len(self) + 1)]

    def entry(self, number: int) -> CompletedPartTypeDef:
        whole = self._whole.get(number)
        if whole is not None:
            return whole
        at = number - 1
        entry: dict[str, Any] = {
            "ETag": f'"{self._etags[16 * at : 16 * at + 16].hex()}"',
            "PartNumber": number,
        }
        crc = self._crc(number)
        if crc is not None:
            entry["ChecksumCRC32"] = crc32_text(crc)
        return entry  # type: ignore[return-value]

    def whole_crc32(self) -> str | None:
        """The CRC32 of every byte of the parts, combined from theirs; None when a part has
        none (``checksum="none"``) or there is no part."""
        crcs = [self._crc(number) for number in range(1, len(self) + 1)]
        known = [crc for crc in crcs if crc is not None]
        if not crcs or len(known) != len(crcs):
            return None
        return full_crc32(zip(known, self._sizes, strict=True))

    def _crc(self, number: int) -> int | None:
        whole = self._whole.get(number)
        if whole is not None:
            text = whole.get("ChecksumCRC32")
            return None if text is None else crc32_value(text)
        at = number - 1
        return int.from_bytes(self._crcs[4 * at : 4 * at + 4], "big") if self._has_crc[at] else None

"""Reading a source once, cut into parts, with what identifies each part: its CRC32 and, when
asked, its MD5. What a resume checks the stored prefix with, and what verify compares with
what the store keeps of an object."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from cloudpipe.checksums import update_crc32

CHUNK = 1 << 20
"""Bytes read at a time: one buffer, reused, whatever the part size."""


@dataclass(frozen=True)
class SourcePart:
    """One part of the source as read: where it starts, its length, and its digests."""

    number: int
    offset: int
    size: int
    """Bytes read: fewer than asked only where the source ended."""
    crc32: int
    md5: bytes | None
    """The MD5 digest, when asked for."""

    @property
    def end(self) -> int:
        """The offset just past the part."""
        return self.offset + self.size


def read_parts(
    source: IO[bytes],
    sizes: Iterable[int],
    *,
    md5: bool = False,
    on_read: Callable[[int], object] | None = None,
) -> Iterator[SourcePart]:
    """The parts of ``source`` that ``sizes`` cut, in order, until the sizes or the source run
    out: a part the source's end cuts short is the last (an empty one is not yielded).

    Nothing is read ahead of the part being yielded, so that a caller that stops at a part
    has read no further; ``on_read(nbytes)`` after each read."""
    chunk = bytearray(CHUNK)
    view = memoryview(chunk)
    offset = 0
    for number, size in enumerate(sizes, 1):
        crc, digest, count = 0, hashlib.md5() if md5 else None, 0
        while count < size:
            got = read_into(source, view[: min(CHUNK, size - count)])
            if not got:
                break
            piece = view[:got]
            crc = update_crc32(piece, crc)
            if digest is not None:
                digest.update(piece)
            count += got
            if on_read is not None:
                on_read(got)
        if count:
            yield SourcePart(number, offset, count, crc, digest.digest() if digest else None)
        if count < size:
            return
        offset += count


def read_into(source: IO[bytes], into: memoryview) -> int:
    """Bytes read from ``source`` into ``into`` (0 at its end), by readinto when it has one."""
    readinto = getattr(source, "readinto", None)
    if readinto is not None:
        return int(readinto(into) or 0)
    data = source.read(len(into))
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"source must be a binary file, not one that reads {type(data).__name__}")
    into[: len(data)] = data
    return len(data)

"""cloudpipe.resume: take up, after a crash, the upload a writer recorded in its journal.

The journal says which parts were stored; the store is asked (ListParts) whether it still
holds each of them as recorded; the source, when given, is read over the stored prefix and
checked part by part against the CRC32s the journal kept. Only then is a writer returned,
positioned after the last stored part, whose ``close()`` completes the object from the
journal's part list and the parts written after the resume.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from cloudpipe.arguments import WriterArguments, check_arguments
from cloudpipe.checksums import (
    crc32_text,
    crc32_value,
    full_crc32,
    key_md5,
    quoted,
)
from cloudpipe.ending import shown
from cloudpipe.errors import ResumeError, UploadError, error_code
from cloudpipe.journal import Journal, JournaledPart, JournalState
from cloudpipe.partsize import MIN_PART_SIZE
from cloudpipe.s3 import ObjectRequests
from cloudpipe.sourceparts import read_parts
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE = ("NoSuchUpload", "NoSuchKey")
"""ListParts' answers for an upload that no longer exists (Ceph RGW says NoSuchKey)."""


def resume(
    journal: str | os.PathLike[str],
    *,
    client: S3Client | None = None,
    source: IO[bytes] | None = None,
    extra_args: Mapping[str, Any] | None = None,
    max_attempts: int | None = None,
    max_concurrency: int | str = 1,
    max_memory: int | None = None,
    on_ready: Callable[[str], object] | None = None,
    on_drained: Callable[[int, int], object] | None = None,
    on_error: Callable[[BaseException], object] | None = None,
    on_end: Callable[[bool], object] | None = None,
    on_verified: Callable[[int, int], object] | None = None,
) -> S3MultipartWriter:
    """Resume the upload recorded in ``journal``; return a writer to feed the rest of the stream.

    Each part the journal records must be stored with its size and ETag (and CRC32, where
    the store lists one); a part stored but not journaled (a crash between the two) is sent
    again, as is a last, short part. Write the rest from ``tell()`` on, then ``close()``,
    which checks the whole object as any close does. When the upload was in fact completed
    before the crash, the writer is already closed, with the object's ``etag``, and the
    journal removed.

    Args:
        journal: The path given as ``journal=`` to the writer that crashed.
        client: A boto3 S3 client; by default ``boto3.client("s3")``, as for a writer.
        source: The stream again, from its first byte (seekable or not): the stored prefix
            is read from it, each part's CRC32 checked against the journal, so that the
            writer goes on at the right offset of the right data.
        extra_args: Only the ``SSECustomerKey`` of an SSE-C upload, which the journal does
            not keep (it keeps its MD5, which the key is checked against).
        max_attempts, max_concurrency, max_memory: As for a writer ("auto" too).
        on_ready, on_drained, on_error, on_end: As for a writer; ``on_ready`` comes only if
            the upload had not been created yet.
        on_verified: ``on_verified(part_number, nbytes)`` as each stored part is found
            stored and, with ``source``, matching it.

    Raises:
        ResumeError: Not a cloudpipe journal, its upload gone and the object not stored,
            other parts stored, a source that differs (the first differing part named), or
            another SSE-C key. Nothing is sent or changed; the journal stays.
        UploadError: A request failed for good (the upload stays as it was).
        FileNotFoundError: There is no such journal.
    """
    taken = Journal.take_up(journal)
    with taken.closed_on_error():
        state = taken.state
        arguments = check_arguments(
            state.bucket,
            state.key,
            client=client,
            part_size=state.schedule.base,
            max_attempts=max_attempts,
            extra_args=state.extra_args | _secrets(state, extra_args),
            checksum=state.checksum,
            max_concurrency=max_concurrency,
            max_memory=max_memory,
            callbacks={"on_ready": on_ready, "on_drained": on_drained}
            | {"on_error": on_error, "on_end": on_end},
        )
        _check_taken_up(taken, arguments, source, on_verified)
    return S3MultipartWriter._continuing(arguments, taken)


def _check_taken_up(
    taken: Journal,
    arguments: WriterArguments,
    source: IO[bytes] | None,
    on_verified: Callable[[int, int], object] | None,
) -> None:
    """Check that the store holds the parts ``taken`` records (or the completed object,
    then kept in ``taken.completed``) and, given ``source``, that they are its bytes."""
    state = taken.state
    if state.upload_id is not None:
        requests = ObjectRequests(
            arguments.client,
            state.bucket,
            state.key,
            arguments.extra_args,
            arguments.max_attempts,
            state.checksum,
        )
        taken.completed = _check_stored(state, requests)
    if source is not None:
        _check_source(state, source, on_verified)
    elif on_verified is not None:
        for part in state.parts:
            on_verified(part.number, part.size)


def _secrets(state: JournalState, extra_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The SSE-C key given for an SSE-C upload, checked against the journal's MD5 of it."""
    given = dict(extra_args or {})
    unknown = sorted(set(given) - {"SSECustomerKey"})
    if unknown:
        raise ValueError(
            f"resume: extra_args {unknown[0]!r}: the upload's arguments come from the "
            "journal; extra_args takes only the SSECustomerKey it does not keep"
        )
    key = given.get("SSECustomerKey")
    expected = state.sse_customer_key_md5
    if expected is None and key is not None:
        message = f"{state.path}: the upload is not SSE-C encrypted: give no SSECustomerKey"
        raise ResumeError(message, state.path)
    if expected is not None:
        if not isinstance(key, (str, bytes)):
            raise ResumeError(
                f"{state.path}: the upload is SSE-C encrypted: pass its key again, as "
                "extra_args={'SSECustomerKey': ...}",
                state.path,
            )
        if key_md5(key) != expected:
            raise ResumeError(
                f"{state.path}: the SSE-C key given is not the one the upload was made with "
                f"(its MD5 is {key_md5(key)}, the journal's {expected})",
                state.path,
            )
    return given


def _check_stored(state: JournalState, requests: ObjectRequests) -> dict[str, Any] | None:
    """Check that the store holds the journal's parts; drop a short last part to send it
    again. The object's HeadObject answer when the upload was completed already, else None."""
    assert state.upload_id is not None
    where = f"{state.path} ({shown(f's3://{state.bucket}/{state.key}')}"
    try:
        listed = requests.list_parts(state.upload_id)
    except UploadError as error:
        if error_code(error.__cause__) not in _GONE:
            raise
        whole = full_crc32((crc32_value(part.crc32), part.size) for part in state.parts)
        head = requests.stored([part.entry() for part in state.parts], None, whole)
        if head is not None and state.parts:
            return head
        raise ResumeError(
            f"{where}, upload {state.upload_id}): the upload no longer exists (aborted, or "
            "removed by a lifecycle rule) and the object is not stored: nothing to resume; "
            "remove the journal and start again",
            state.path,
            gone=True,
        ) from None
    for part in state.parts:
        problem = _difference(part, listed.get(part.number))
        if problem:
            raise ResumeError(
                f"{where}, upload {state.upload_id}): part {part.number} {problem}: the upload "
                "was changed by something else than this journal's writer; not resumed",
                state.path,
            )
        if part.number != len(state.parts) and not _full_size(state, part):
            raise ResumeError(
                f"{state.path}: part {part.number} has {part.size} bytes, not the "
                f"{state.schedule.size_of(part.number)} of its part-size schedule: not a "
                "journal cloudpipe wrote",
                state.path,
            )
    last = state.parts[-1] if state.parts else None
    if last is not None and not _full_size(state, last):
        state.parts.pop()  # the stream's end, sent before the crash: sent again with it
    return None


def _full_size(state: JournalState, part: JournaledPart) -> bool:
    """Whether ``part`` has a full part's size: the schedule's, or the smallest part where
    the schedule has its first size (auto spends its budget on smaller parts)."""
    scheduled = state.schedule.size_of(part.number)
    first = scheduled == state.schedule.base and state.schedule.grows
    return part.size == scheduled or (first and part.size == MIN_PART_SIZE)


def _difference(part: JournaledPart, listed: Mapping[str, Any] | None) -> str:
    """How the stored part differs from the journal's record of it ("" when it does not)."""
    if listed is None:
        return "is in the journal but not stored"
    if int(listed.get("Size", -1)) != part.size:
        return f"is stored with {listed.get('Size')} bytes, the journal says {part.size}"
    if quoted(str(listed.get("ETag", ""))) != quoted(part.etag):
        return f"is stored with ETag {listed.get('ETag')}, the journal says {part.etag}"
    crc = listed.get("ChecksumCRC32")
    if crc and crc != part.crc32:
        return f"is stored with CRC32 {crc}, the journal says {part.crc32}"
    return ""


def _check_source(
    state: JournalState, source: IO[bytes], on_verified: Callable[[int, int], object] | None
) -> None:
    """Read the stored prefix from ``source`` and check each part's CRC32 against the journal."""
    read = read_parts(source, (part.size for part in state.parts))
    for part in state.parts:
        found = next(read, None)
        if found is None or found.size < part.size:
            position = part.offset + (found.size if found is not None else 0)
            raise ResumeError(
                f"{state.path}: the source ended after {position} bytes, but "
                f"{state.stored_bytes} are stored already: is it the stream the upload "
                "was made from? Not resumed",
                state.path,
            )
        if crc32_text(found.crc32) != part.crc32:
            raise ResumeError(
                f"{state.path}: the source differs from the stored data in part {part.number} "
                f"(bytes {part.offset} to {part.end - 1}): resume with the stream the upload "
                "was made from; nothing was sent",
                state.path,
            )
        if on_verified is not None:
            on_verified(part.number, part.size)

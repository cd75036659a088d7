"""The part journal: an append-only file recording one upload, enough to resume it after a
crash (see cloudpipe.resume).

One JSON object per line, each written whole and fsync'd before the call that stored the part
returns, so that a journal is never behind the writer by more than the part in flight:

* the header, written when the writer is made: the bucket, the key, the part-size schedule,
  the checksum mode, and the non-secret extra_args (an SSE-C key is kept only as its MD5, to
  check the key given at resume);
* ``{"upload_id": ...}``, once the multipart upload is created;
* one line per stored part: its number, offset, size, CRC32, ETag and the checksums the store
  returned. A line for a part number already recorded replaces that part and every one
  after it (a part sent again after a resume).

A crash in the middle of an append leaves a last line without its newline: reading ignores
it, and reopening cuts it off before appending.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloudpipe.checksums import key_md5
from cloudpipe.ending import shown
from cloudpipe.errors import JournalError, ResumeError, UploadError, error_code
from cloudpipe.extra_args import SECRETS
from cloudpipe.partsize import PartSizeSchedule

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

FORMAT = "cloudpipe-journal"
VERSION = 1


@dataclass(frozen=True)
class JournaledPart:
    """One stored part as the journal records it."""

    number: int
    offset: int
    size: int
    crc32: str
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)

    def entry(self) -> CompletedPartTypeDef:
        """The part's entry in CompleteMultipartUpload's list."""
        entry: dict[str, Any] = {"ETag": self.etag, "PartNumber": self.number} | self.checksums
        return entry  # type: ignore[return-value]

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass
class JournalState:
    """What a journal records: the upload's settings, its id, its stored parts."""

    path: str
    bucket: str
    key: str
    schedule: PartSizeSchedule
    checksum: str
    extra_args: dict[str, Any]
    sse_customer_key_md5: str | None
    upload_id: str | None = None
    parts: list[JournaledPart] = field(default_factory=list)
    length: int = 0
    """Bytes of the file up to the end of its last whole line."""

    @property
    def stored_bytes(self) -> int:
        return self.parts[-1].end if self.parts else 0

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "bucket": self.bucket,
            "key": self.key,
            "part_size": self.schedule.base,
            "grows": self.schedule.grows,
            "max_parts": self.schedule.max_parts,
            "store": self.schedule.store,
            "checksum": self.checksum,
            "extra_args": self.extra_args,
            "sse_customer_key_md5": self.sse_customer_key_md5,
        }

    def record(self, line: Mapping[str, Any]) -> None:
        """Take in one line of the journal (as read back, or as just written)."""
        if "upload_id" in line:
            self.upload_id = str(line["upload_id"])
            self.parts.clear()
            return
        part = JournaledPart(
            number=int(line["part"]),
            offset=int(line["offset"]),
            size=int(line["size"]),
            crc32=str(line["crc32"]),
            etag=str(line["etag"]),
            checksums={str(k): str(v) for k, v in dict(line.get("checksums", {})).items()},
        )
        if self.upload_id is None or not 1 <= part.number <= len(self.parts) + 1:
            raise ValueError(f"part {part.number} out of order")
        del self.parts[part.number - 1 :]  # a part sent again replaces the old one and later
        if part.offset != self.stored_bytes:
            raise ValueError(f"part {part.number} at offset {part.offset}, not {self.stored_bytes}")
        self.parts.append(part)


def new_state(
    path: str,
    bucket: str,
    key: str,
    schedule: PartSizeSchedule,
    checksum: str,
    extra_args: Mapping[str, Any],
) -> JournalState:
    """The state of a journal about to be created for a new writer."""
    secret = extra_args.get("SSECustomerKey")
    kept = {name: _recordable(value) for name, value in extra_args.items() if name not in SECRETS}
    if secret is not None:
        kept.pop("SSECustomerKeyMD5", None)  # botocore derives it from the key at each request
    md5 = key_md5(secret) if isinstance(secret, (str, bytes)) else None
    return JournalState(path, bucket, key, schedule, checksum, kept, md5)


HEADER_LIMIT = 64 * 1024
"""Bytes a header line may take: a longer first line is not a journal's (nor read whole)."""


def _recordable(value: Any) -> Any:
    """``value`` as the journal's JSON keeps it: a date (the only argument botocore takes
    that JSON does not) as ISO 8601 text, which botocore takes back as it takes a datetime."""
    return value.isoformat() if isinstance(value, datetime.date) else value


def read(path: str | os.PathLike[str]) -> JournalState:
    """The state a journal records; a ResumeError if it is not a cloudpipe journal."""
    name = os.fspath(path)
    with open(name, "rb") as file:
        first = file.readline(HEADER_LIMIT)
        state = _header(name, first)
        rest = file.read() if state is not None else b""
    if state is None:
        what = "is empty" if not first else "is not a cloudpipe journal"
        raise ResumeError(f"{shown(name)} {what}: there is no upload to resume from it", name)
    whole, _, _torn = rest.rpartition(b"\n")  # a last line without its newline was torn
    state.length = len(first) + (len(whole) + 1 if whole else 0)
    for number, line in enumerate(whole.split(b"\n") if whole else [], start=2):
        try:
            state.record(json.loads(line))
        except (ValueError, KeyError, TypeError) as error:
            raise ResumeError(
                f"{shown(name)} is damaged: line {number} is not a journal record ({error})", name
            ) from None
    return state


def _header(name: str, line: bytes) -> JournalState | None:
    """The state a journal's first line starts, None if it is not a journal header."""
    try:
        header = json.loads(line) if line.endswith(b"\n") else None
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None
    if header.get("version") != VERSION:
        raise ResumeError(
            f"{shown(name)}: journal version {header.get('version')!r} is not one this "
            f"cloudpipe reads ({VERSION}): resume it with the cloudpipe that wrote it",
            name,
        )
    try:
        return JournalState(
            path=name,
            bucket=str(header["bucket"]),
            key=str(header["key"]),
            schedule=PartSizeSchedule(
                int(header["part_size"]),
                bool(header["grows"]),
                int(header["max_parts"]),
                str(header.get("store", "S3")),
            ),
            checksum=str(header["checksum"]),
            extra_args=dict(header["extra_args"]),
            sse_customer_key_md5=header.get("sse_customer_key_md5"),
        )
    except (KeyError, TypeError, ValueError):
        return None


class NoJournal:
    """The journal of a writer made without one: it records nothing and keeps nothing."""

    path: str | None = None
    schedule: PartSizeSchedule | None = None
    """The part sizes of the upload it records (a resumed one keeps its own)."""
    completed: dict[str, Any] | None = None
    """The object's HeadObject answer, when a resume found the upload completed already."""

    def recorded(self) -> tuple[str | None, list[JournaledPart]]:
        """The upload id and the stored parts it records (a writer taking it up goes on
        after them)."""
        return None, []

    def upload_started(self, upload_id: str) -> None:
        pass

    def part_stored(self, number: int, nbytes: int, part: CompletedPartTypeDef) -> None:
        pass

    def keeps(self, cause: BaseException | None) -> bool:
        return False

    def lost(self) -> str:
        """Why the journal can no longer keep the upload ("" while it can)."""
        return ""

    def close(self) -> None:
        pass

    def remove(self) -> None:
        pass


NO_JOURNAL = NoJournal()


class Journal(NoJournal):
    """An open journal, appended to as the upload goes, then removed when it has ended."""

    def __init__(self, state: JournalState, fd: int) -> None:
        self.state = state
        self.path = state.path
        self.schedule = state.schedule
        self._fd = fd

    def recorded(self) -> tuple[str | None, list[JournaledPart]]:
        return self.state.upload_id, list(self.state.parts)

    @classmethod
    def create(cls, state: JournalState) -> Journal:
        """Create the journal file, which must not exist, and write its header."""
        path = state.path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            raise FileExistsError(
                f"journal {shown(path)} exists already: resume its upload with "
                f"cloudpipe.resume({path!r}), or remove it"
            ) from None
        try:
            _lock(fd, path)
        except BaseException:
            os.close(fd)
            raise
        journal = cls(state, fd)
        try:
            journal._append(state.header(), "its header")
            _sync_directory(path)
        except BaseException:
            journal.remove()  # half a header would refuse every later run
            raise
        return journal

    @classmethod
    def take_up(cls, path: str | os.PathLike[str]) -> Journal:
        """Open an existing journal to resume its upload: locked against a second writer,
        read, and a line torn by the crash cut off, so that appends follow whole lines."""
        name = os.fspath(path)
        fd = os.open(name, os.O_WRONLY)
        try:
            _lock(fd, name)
            state = read(name)
            os.ftruncate(fd, state.length)
            os.lseek(fd, 0, os.SEEK_END)
        except BaseException:
            os.close(fd)
            raise
        return cls(state, fd)

    @contextlib.contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the journal (unlocked, left as it is) if the block raises."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def upload_started(self, upload_id: str) -> None:
        line = {"upload_id": upload_id}
        self.state.record(line)
        self._append(line, "the upload id")

    def part_stored(self, number: int, nbytes: int, part: CompletedPartTypeDef) -> None:
        """Record a stored part (with the CRC32 it was sent with) before the writer goes on."""
        checksums = {k: str(v) for k, v in part.items() if k.startswith("Checksum")}
        line = {
            "part": number,
            "offset": self.state.stored_bytes,
            "size": nbytes,
            "crc32": checksums["ChecksumCRC32"],
            "etag": part["ETag"],
            "checksums": checksums,
        }
        self.state.record(line)
        self._append(line, f"part {number}")

    def keeps(self, cause: BaseException | None) -> bool:
        """Whether an upload ended by ``cause`` stays stored for a resume: a request that
        failed for good, or the process going away (an interrupt, SystemExit); not abort()
        (``cause`` None), an exception of the caller's own code, a condition the store
        refused (``IfNoneMatch``), nor a stream too long for S3."""
        if isinstance(cause, UploadError):  # a condition the store refused stays refused
            return cause.resumable and error_code(cause.__cause__) != "PreconditionFailed"
        return cause is not None and not isinstance(cause, Exception)

    def lost(self) -> str:
        """Why this journal can no longer keep the upload ("" while it can): its file was
        removed or replaced while the upload ran, so nothing could resume from it."""
        try:
            mine, there = os.fstat(self._fd), os.stat(self.state.path)
        except OSError:
            return f"its journal {shown(self.state.path)} was removed while it ran"
        if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
            return f"its journal {shown(self.state.path)} was replaced while it ran"
        return ""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        """The upload has ended (completed or aborted): nothing is left to resume. A file
        that has replaced the journal meanwhile is not this writer's to remove."""
        if self._fd >= 0 and not self.lost():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.state.path)
        self.close()

    def _append(self, line: Mapping[str, Any], what: str) -> None:
        """Write ``line`` whole and make it durable; a JournalError naming the journal if the
        disk refuses (full, or a file size limit)."""
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as error:
            raise JournalError(self.state.path, f"recording {what}", error) from error


def _lock(fd: int, path: str) -> None:
    """Hold the journal for this writer: a second writer (a resume while the first still
    runs) is refused. The kernel drops the lock when the process dies, however it dies."""
    if sys.platform == "win32":
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ResumeError(
            f"{shown(path)} is in use by another writer (is its upload still running?)", path
        ) from None


def _sync_directory(path: str) -> None:
    """Make the journal's directory entry durable, as its lines are (POSIX only)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)

"""The ``cloudpipe://`` fsspec protocol: files written by one streaming upload each.

Registered through the ``fsspec.specs`` entry point, so that pandas, pyarrow, dask and any
fsspec user write ``cloudpipe://bucket/key`` URLs through cloudpipe's writer::

    df.to_csv("cloudpipe://bucket/key.csv.gz", storage_options={"endpoint_url": ...})

``storage_options`` take cloudpipe.open's keyword arguments by the same names (endpoint_url,
profile, region, session, client, part_size, max_concurrency, checksum, extra_args...).

Writing is what it is for; the calls fsspec and its users make around a write answer
truthfully, each one plain S3 request through the same client (``exists``, ``info``,
``ls``, ``size``, ``modified``, ``rm``...), and what cloudpipe does not do (reading,
copying, moving, signing) is a one-line error naming what to use instead.

fsspec files commit on close, and pandas closes the handles it opened in a ``finally`` even
while an exception propagates: a file closed while an exception raised after it was opened
is in flight is therefore aborted, never completed, so a DataFrame write that fails midway
leaves no object. An exception the caller had already handled when it opened the file (a
write from an ``except`` block) is not one.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

try:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]
except ImportError as missing:  # pragma: no cover - the entry point is only used with fsspec
    raise ImportError("cloudpipe:// needs fsspec: pip install fsspec") from missing

from botocore.exceptions import ClientError

from cloudpipe.clients import default_client, object_exists, with_client
from cloudpipe.text import exclusive, parse_url
from cloudpipe.writer import S3MultipartWriter

READ_ELSEWHERE = "read s3://BUCKET/KEY with s3fs (pip install s3fs)"
_MODES = ("wb", "xb")


class FsspecWriter(S3MultipartWriter):
    """An S3MultipartWriter that, closed while an exception raised since it was opened
    propagates (a ``finally`` or an ``__exit__`` that closes it), aborts instead of
    completing: fsspec's commit-on-close, made safe for pandas."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handled_at_open = sys.exc_info()[1]  # not one of this file's failures

    def close(self) -> None:
        """Complete the object, unless an exception raised since the file was opened is in
        flight: then abort (the exception goes on propagating; a failed abort is a note on
        it)."""
        in_flight = sys.exc_info()[1]
        if in_flight is not None and in_flight is not self._handled_at_open and not self.closed:
            self._abandon_for(in_flight)
            return
        super().close()


class CloudpipeFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec has no types
    """``cloudpipe://bucket/key``: each file opened for writing streams into one object."""

    protocol = "cloudpipe"
    root_marker = ""

    def __init__(self, **options: Any) -> None:
        if "compression" in options:
            raise ValueError(
                "cloudpipe:// leaves compression to fsspec and pandas: pass compression= to "
                "to_csv() or fsspec.open(), not in storage_options"
            )
        super().__init__(**options)
        self.writer_args = with_client(dict(options))
        if self.writer_args.get("client") is None:  # one client for all its files
            self.writer_args["client"] = default_client()
        self.client = self.writer_args["client"]

    @property
    def fsid(self) -> str:
        """This filesystem's identity: the store's endpoint."""
        return f"cloudpipe_{self.client.meta.endpoint_url}"

    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> str | list[str]:
        if isinstance(path, list):
            return [str(cls._strip_protocol(p)) for p in path]
        return path.removeprefix("cloudpipe://").removeprefix("s3://").lstrip("/")

    def _split(self, path: str, *, folder: bool = False) -> tuple[str, str]:
        """Bucket and key; with ``folder``, a key as a prefix names it (no trailing "/"):
        a key written keeps its own, a "dir/" marker included."""
        bucket, key = parse_url(f"s3://{self._strip_protocol(path)}", prefix=True)
        return bucket, key.rstrip("/") if folder else key

    # -- writing ---------------------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> FsspecWriter:
        if mode not in _MODES:
            raise ValueError(
                f"cloudpipe:// opens files for writing only ('wb', 'xb'), not {mode!r}: "
                f"{READ_ELSEWHERE}"
            )
        if not autocommit:
            raise NotImplementedError(
                "cloudpipe:// files complete on close: fsspec transactions are not supported; "
                "write each file in its own with block"
            )
        bucket, key = self._split(path)
        args = self.writer_args | kwargs
        if mode == "xb":  # the key must be free: checked now, and made atomic by the store
            args = exclusive(args)
            if object_exists(self.client, bucket, key):
                raise FileExistsError(errno.EEXIST, "the key holds an object already", path)
        return FsspecWriter(bucket, key, **args)

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        """An empty object at ``path``; with ``truncate=False``, one only where none is."""
        if truncate or not self.exists(path):
            with self.open(path, "wb", **kwargs):
                pass
            return
        raise ValueError(
            f"cloudpipe://{self._strip_protocol(path)} exists, and an S3 object cannot be "
            "touched in place: touch(truncate=True) replaces it with an empty one"
        )

    # -- looking objects up: one S3 request each, through the writers' client ---------------

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The object at ``path`` (HeadObject), or the prefix it names (a "directory")."""
        bucket, key = self._split(path, folder=True)
        if not key:
            self.client.head_bucket(Bucket=bucket)
            return {"name": bucket, "type": "directory", "size": 0}
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _status(error) != 404:
                raise
        else:
            return _file(f"{bucket}/{key}", head, head["ContentLength"])
        listed = self.client.list_objects_v2(Bucket=bucket, Prefix=key + "/", MaxKeys=1)
        if listed.get("KeyCount", len(listed.get("Contents", []))):
            return {"name": f"{bucket}/{key}", "type": "directory", "size": 0}
        raise FileNotFoundError(errno.ENOENT, "no such object or prefix", path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The objects and prefixes one level below ``path`` (ListObjectsV2, by "/")."""
        bucket, key = self._split(path, folder=True)
        prefix = key + "/" if key else ""
        entries: list[dict[str, Any]] = []
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = f"{bucket}/{common['Prefix'].rstrip('/')}"
                entries.append({"name": name, "type": "directory", "size": 0})
            for item in page.get("Contents", []):
                entries.append(_file(f"{bucket}/{item['Key']}", item, item["Size"]))
        if not entries and key:
            entries = [self.info(path)]  # a file lists as itself; nothing there: not found
        return entries if detail else [entry["name"] for entry in entries]

    def modified(self, path: str) -> Any:
        """When the object was stored (its LastModified)."""
        found = self.info(path)
        if found["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "a prefix has no modification time", path)
        return found["LastModified"]

    def created(self, path: str) -> Any:
        raise NotImplementedError(
            "S3 keeps no creation time, only when an object was last stored: use modified()"
        )

    def rm_file(self, path: str) -> None:
        """Delete the object at ``path`` (DeleteObject)."""
        bucket, key = self._split(path)
        if key:
            self.client.delete_object(Bucket=bucket, Key=key)

    _rm = rm_file

    # -- what cloudpipe:// does not do ------------------------------------------------------

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        raise NotImplementedError(
            "cloudpipe:// writes streams and does not copy objects: copy with s3fs "
            "(s3://...) or 'aws s3 cp'"
        )

    def cat_ranges(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"cloudpipe:// cannot read: {READ_ELSEWHERE}")

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        raise NotImplementedError(
            "cloudpipe:// does not sign URLs: use boto3's generate_presigned_url, or s3fs's sign"
        )


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _file(name: str, answer: Any, size: int) -> dict[str, Any]:
    """fsspec's description of an object, from HeadObject's or ListObjectsV2's answer."""
    return {
        "name": name,
        "type": "file",
        "size": int(size),
        "ETag": answer.get("ETag"),
        "LastModified": answer.get("LastModified"),
    }

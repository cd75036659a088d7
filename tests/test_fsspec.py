"""The cloudpipe:// fsspec protocol, through real pandas, pyarrow and fsspec, against real
servers: URL writes land whole; a write that fails midway leaves no object."""

from __future__ import annotations

import gc
import gzip
import importlib.metadata
import io
import json
import lzma
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ACCESS_KEY, PART, REGION, SECRET_KEY, assert_no_trace, read_object

ROWS = 60_000


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": range(ROWS),
            "name": [f"row {i} " + "x" * (i % 50) for i in range(ROWS)],
            "value": [i / 7 for i in range(ROWS)],
        }
    )


@pytest.fixture
def options(s3: Any) -> dict[str, Any]:
    return {"client": s3, "part_size": PART}


def test_the_entry_point_registers_cloudpipe_and_not_s3() -> None:
    ours = [
        point
        for point in importlib.metadata.entry_points(group="fsspec.specs")
        if point.value.startswith("cloudpipe.")
    ]
    assert [point.name for point in ours] == ["cloudpipe"]
    assert fsspec.get_filesystem_class("cloudpipe").__module__ == "cloudpipe.filesystem"


def test_to_csv_gzip_through_a_url_with_endpoint_and_environment_credentials(
    server: Any, s3: Any, bucket: str, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    storage = {"endpoint_url": server.endpoint_url, "region": REGION, "part_size": PART}
    frame.to_csv(f"cloudpipe://{bucket}/d/f.csv.gz", index=False, storage_options=storage)
    text = gzip.decompress(read_object(s3, bucket, "d/f.csv.gz"))
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(text)), frame)


def test_to_parquet_and_to_json(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    ended: list[bool] = []
    url = f"cloudpipe://{bucket}/f.parquet"
    frame.to_parquet(url, storage_options=options | {"on_end": ended.append})
    stored = pd.read_parquet(io.BytesIO(read_object(s3, bucket, "f.parquet")))
    pd.testing.assert_frame_equal(stored, frame)
    assert ended == [True]  # the writer's own events, passed through storage_options
    url = f"cloudpipe://{bucket}/f.jsonl"
    frame.to_json(url, orient="records", lines=True, storage_options=options)
    lines = read_object(s3, bucket, "f.jsonl").decode().splitlines()
    assert len(lines) == ROWS
    assert json.loads(lines[7]) == {"n": 7, "name": "row 7 xxxxxxx", "value": 1.0}


def test_pyarrow_through_fsspec_and_fsspec_open(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    fs = fsspec.filesystem("cloudpipe", **options)
    table = pa.Table.from_pandas(frame)
    pq.write_table(table, f"{bucket}/t.parquet", filesystem=fs)
    assert pq.read_table(io.BytesIO(read_object(s3, bucket, "t.parquet"))).equals(table)

    data = bytes(range(256)) * (PART // 128)  # two parts
    with fsspec.open(f"cloudpipe://{bucket}/b.bin", "wb", **options) as out:
        out.write(data)
    assert read_object(s3, bucket, "b.bin") == data
    with fsspec.open(f"cloudpipe://{bucket}/t.txt", "w", encoding="utf-8", **options) as text:
        text.write("héllo\n")
    assert read_object(s3, bucket, "t.txt") == "héllo\n".encode()


class Exploding:
    """A cell that fails as pandas formats it, long after the first rows were written."""

    def __str__(self) -> str:
        raise RuntimeError("a cell that cannot be written")


def test_to_csv_failing_midway_leaves_no_object(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    big = pd.concat([frame] * 8, ignore_index=True).astype({"name": object})
    big.loc[len(big) - 10, "name"] = Exploding()
    drained: list[int] = []
    with pytest.raises(RuntimeError, match="cannot be written"):
        big.to_csv(
            f"cloudpipe://{bucket}/bad.csv",
            chunksize=5_000,
            storage_options=options | {"on_drained": lambda n, size: drained.append(n)},
        )
    assert drained  # parts were stored before the failure: without the abort, a truncated CSV
    assert_no_trace(s3, bucket, "bad.csv")


def test_to_parquet_failing_after_the_file_opened_leaves_no_object(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    """pyarrow's ParquetWriter closes its file on the way out of a failure: that close must
    abort (it would otherwise store a truncated Parquet file)."""
    ended: list[bool] = []
    url = f"cloudpipe://{bucket}/bad.parquet"
    storage = options | {"on_end": ended.append}
    with pytest.raises(ValueError, match="Row group size") as failed:
        frame.to_parquet(url, row_group_size=0, storage_options=storage)
    # the traceback still holds the file: the abort came from its close, not from the
    # garbage collector
    assert failed.traceback
    assert ended == [False]
    assert_no_trace(s3, bucket, "bad.parquet")


def test_fsspec_open_with_block_that_raises_leaves_no_object(
    s3: Any, bucket: str, options: dict[str, Any]
) -> None:
    opened = fsspec.open(f"cloudpipe://{bucket}/k", "wb", **options)
    with pytest.raises(KeyError), opened as out:
        out.write(b"x" * (PART + 1))
        raise KeyError("the producer failed")
    assert_no_trace(s3, bucket, "k")


def test_reading_says_what_reads(s3: Any, bucket: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"writing.*s3fs") as refused:
        pd.read_csv(f"cloudpipe://{bucket}/k.csv", storage_options=options)
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="s3fs"):
        fsspec.open(f"cloudpipe://{bucket}/k", "rb", **options).open()


def test_compression_belongs_to_fsspec_not_to_the_storage_options(s3: Any, bucket: str) -> None:
    with pytest.raises(ValueError, match="pass compression= to"):
        fsspec.filesystem("cloudpipe", client=s3, compression="gzip", skip_instance_cache=True)
    frame = pd.DataFrame({"a": [1, 2]})
    frame.to_csv(
        f"cloudpipe://{bucket}/c.csv.xz",
        index=False,
        compression="xz",
        storage_options={"client": s3},
    )
    assert lzma.decompress(read_object(s3, bucket, "c.csv.xz")) == b"a\n1\n2\n"


# -- what the filesystem answers, and when a file is aborted (issue 18) ---------------------


def test_a_write_from_an_except_block_is_stored(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    """An exception the caller has already handled is not one in flight for a file opened
    afterwards: the file completes."""
    try:
        raise ValueError("handled before the write began")
    except ValueError:
        frame.to_csv(f"cloudpipe://{bucket}/in-except.csv", index=False, storage_options=options)
        with fsspec.open(f"cloudpipe://{bucket}/raw", "wb", **options) as out:
            out.write(b"stored all the same")
    stored = read_object(s3, bucket, "in-except.csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(stored)), frame)
    assert read_object(s3, bucket, "raw") == b"stored all the same"


def test_a_failure_inside_an_except_block_still_aborts(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    big = frame.astype({"name": object})
    big.loc[len(big) - 10, "name"] = Exploding()
    try:
        raise KeyError("handled before the write began")
    except KeyError:
        with pytest.raises(RuntimeError, match="cannot be written"):
            big.to_csv(f"cloudpipe://{bucket}/bad.csv", chunksize=5_000, storage_options=options)
    assert_no_trace(s3, bucket, "bad.csv")


def test_a_text_file_collected_while_open_is_aborted(
    s3: Any, bucket: str, options: dict[str, Any]
) -> None:
    fs = fsspec.filesystem("cloudpipe", skip_instance_cache=True, **options)
    text = fs.open(f"{bucket}/t.txt", "w")
    text.write("partial line, " * 1000)
    with pytest.warns(ResourceWarning, match="garbage collected while open"):
        del text
        gc.collect()
    opened = fsspec.open(f"cloudpipe://{bucket}/u.txt", "w", **options).open()
    opened.write("x" * (PART + 10))
    with pytest.warns(ResourceWarning, match="garbage collected while open"):
        del opened
        gc.collect()
    assert_no_trace(s3, bucket, "t.txt")
    assert_no_trace(s3, bucket, "u.txt")


def test_lookups_answer_what_the_store_holds(s3: Any, bucket: str, options: dict[str, Any]) -> None:
    fs = fsspec.filesystem("cloudpipe", skip_instance_cache=True, **options)
    s3.put_object(Bucket=bucket, Key="dir/a.bin", Body=b"12345")
    s3.put_object(Bucket=bucket, Key="dir/sub/b.bin", Body=b"67")
    assert fs.exists(f"cloudpipe://{bucket}/dir/a.bin")
    assert not fs.exists(f"cloudpipe://{bucket}/dir/missing")
    assert fs.isfile(f"{bucket}/dir/a.bin")
    assert fs.isdir(f"{bucket}/dir")
    assert fs.size(f"{bucket}/dir/a.bin") == 5
    info = fs.info(f"{bucket}/dir/a.bin")
    assert (info["type"], info["size"]) == ("file", 5)
    assert info["ETag"] == s3.head_object(Bucket=bucket, Key="dir/a.bin")["ETag"]
    assert fs.modified(f"{bucket}/dir/a.bin") == info["LastModified"]
    assert sorted(fs.ls(f"{bucket}/dir", detail=False)) == [
        f"{bucket}/dir/a.bin",
        f"{bucket}/dir/sub",
    ]
    assert sorted(fs.find(f"{bucket}/dir")) == [f"{bucket}/dir/a.bin", f"{bucket}/dir/sub/b.bin"]
    assert fs.ls(f"{bucket}/dir/", detail=False) == fs.ls(f"{bucket}/dir", detail=False)
    with fs.open(f"{bucket}/marker/", "wb"):  # a key ending in "/" is written as it is named
        pass
    assert s3.head_object(Bucket=bucket, Key="marker/")["ContentLength"] == 0
    with pytest.raises(FileNotFoundError):
        fs.info(f"{bucket}/nothing-here")
    fs.rm(f"{bucket}/dir", recursive=True)
    assert not fs.exists(f"{bucket}/dir/a.bin")
    assert not fs.exists(f"{bucket}/dir/sub/b.bin")


def test_touch_of_an_existing_object_is_refused_in_one_line(
    s3: Any, bucket: str, options: dict[str, Any]
) -> None:
    fs = fsspec.filesystem("cloudpipe", skip_instance_cache=True, **options)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"precious")
    with pytest.raises(ValueError, match="cannot be touched in place") as refused:
        fs.touch(f"{bucket}/kept", truncate=False)
    assert "\n" not in str(refused.value)
    assert read_object(s3, bucket, "kept") == b"precious"
    fs.touch(f"{bucket}/new", truncate=False)
    assert read_object(s3, bucket, "new") == b""


def test_what_cloudpipe_does_not_do_is_a_one_line_error(
    s3: Any, bucket: str, options: dict[str, Any]
) -> None:
    """Every call answers or says, in one line, what to use instead: never a bare
    NotImplementedError, never a wrong answer."""
    fs = fsspec.filesystem("cloudpipe", skip_instance_cache=True, **options)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    calls = {
        "cat_file": lambda: fs.cat_file(f"{bucket}/a"),
        "cat_ranges": lambda: fs.cat_ranges([f"{bucket}/a"], 0, 1),
        "copy": lambda: fs.copy(f"{bucket}/a", f"{bucket}/b"),
        "mv": lambda: fs.mv(f"{bucket}/a", f"{bucket}/b"),
        "get_file": lambda: fs.get_file(f"{bucket}/a", "/dev/null"),
        "created": lambda: fs.created(f"{bucket}/a"),
        "sign": lambda: fs.sign(f"{bucket}/a"),
        "read_text": lambda: fs.read_text(f"{bucket}/a"),
        "transaction": lambda: fs.open(f"{bucket}/t", "wb", autocommit=False),
    }
    for name, call in calls.items():
        with pytest.raises(Exception) as refused:  # noqa: PT011 - any type, one line
            call()
        message = str(refused.value)
        assert message, f"{name}: a bare {type(refused.value).__name__}"
        assert "\n" not in message, name
    assert read_object(s3, bucket, "a") == b"x"  # the failed mv removed nothing
    assert fs.fsid.startswith("cloudpipe_")


def test_exclusive_mode_through_pandas_and_fsspec(
    s3: Any, bucket: str, frame: pd.DataFrame, options: dict[str, Any]
) -> None:
    url = f"cloudpipe://{bucket}/once.csv"
    frame.to_csv(url, index=False, mode="x", storage_options=options)
    with pytest.raises(FileExistsError):
        frame.head().to_csv(url, index=False, mode="x", storage_options=options)
    stored = read_object(s3, bucket, "once.csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(stored)), frame)
    fs = fsspec.filesystem("cloudpipe", skip_instance_cache=True, **options)
    with fs.open(f"{bucket}/fresh", "xb") as out:
        out.write(b"new")
    assert read_object(s3, bucket, "fresh") == b"new"

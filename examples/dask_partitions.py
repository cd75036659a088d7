"""When one machine is not enough: many writers at once, one per object, on a dask cluster.

    python examples/dask_partitions.py s3://bucket/export/ [--partitions 16] [--rows 200000]
                                       [--workers 2]

Each task generates (here; in real life: reads, joins, filters) one partition of a dataset
and streams it through its own cloudpipe writer into its own object,
``export/part-00007.csv.gz``; the workers run in parallel on a dask.distributed LocalCluster
(the same code runs on a real cluster). When every task has succeeded, the driver writes
``export/_manifest.json`` last, with each part's key, CSV size, row count and ETag. Every
object is an exclusive create (mode "x"), so that a rerun into the same prefix fails instead
of replacing a finished export's parts. Readers trust the manifest, not a listing: a task that
failed leaves no object (its writer aborted), and no manifest is written for a run with a
failed task.

Each worker process makes its own S3 client (clients are not shipped between processes);
credentials and the endpoint come from the AWS_* variables, as boto3 finds them.
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

from dask.distributed import Client, LocalCluster

import cloudpipe
from cloudpipe.text import parse_url


def write_partition(prefix: str, number: int, rows: int) -> dict[str, Any]:
    """One task: partition ``number`` as gzip-compressed CSV into its own object."""
    key = f"{prefix}part-{number:05d}.csv.gz"
    generate = random.Random(number)
    with cloudpipe.open(key, "x", compression="gzip", newline="") as out:
        out.write("id,partition,value\n")
        for row in range(rows):
            out.write(f"{number * rows + row},{number},{generate.random():.6f}\n")
        out.flush()
        size = out.buffer.tell()  # before compression
    return {"key": parse_url(key)[1], "rows": rows, "csv_bytes": size, "etag": out.buffer.etag}


def export(prefix: str, partitions: int, rows: int, workers: int) -> dict[str, Any]:
    """Write every partition in parallel, then the manifest; return the manifest."""
    with (
        LocalCluster(n_workers=workers, threads_per_worker=2, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        futures = [
            client.submit(write_partition, prefix, number, rows, pure=False)
            for number in range(partitions)
        ]
        parts = client.gather(futures)  # raises the first task's failure: no manifest then
    manifest = {"parts": parts, "rows": sum(part["rows"] for part in parts)}
    with cloudpipe.open(f"{prefix}_manifest.json", "x") as out:
        json.dump(manifest, out, indent=1)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="s3://bucket/prefix/ (ending with /)")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    parse_url(args.prefix + "x")  # a clear error for a URL that is not s3://bucket/...
    manifest = export(args.prefix, args.partitions, args.rows, args.workers)
    print(
        f"exported {manifest['rows']} rows in {len(manifest['parts'])} objects under "
        f"{args.prefix}; manifest: {args.prefix}_manifest.json"
    )


if __name__ == "__main__":
    main()

"""A pandas DataFrame to CSV and to Parquet in S3, with no temporary file.

    python examples/dataframe_to_s3.py s3://BUCKET/PREFIX

Writes PREFIX/orders.csv (text mode) and PREFIX/orders.parquet (pyarrow, binary mode).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import cloudpipe


def orders(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    return pd.DataFrame(
        {
            "order_id": np.arange(rows),
            "customer": rng.choice(["ada", "grace", "linus", "guido"], rows),
            "amount": rng.normal(100, 25, rows).round(2),
            "placed": pd.date_range("2026-01-01", periods=rows, freq="min"),
        }
    )


def export(frame: pd.DataFrame, prefix_url: str) -> None:
    prefix = prefix_url.rstrip("/")
    with cloudpipe.open(f"{prefix}/orders.csv", "w", newline="") as text:
        frame.to_csv(text, index=False)
    with cloudpipe.open(f"{prefix}/orders.parquet", "wb") as binary:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), binary)


if __name__ == "__main__":
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    export(orders(rows), sys.argv[1])
    print(f"wrote {rows} orders as CSV and Parquet under {sys.argv[1]}")

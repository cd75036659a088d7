"""Zip a directory straight into S3, without a local archive.

    python examples/zip_directory.py DIRECTORY s3://BUCKET/KEY.zip

zipfile sees a file it cannot seek and writes in streaming mode (sizes after each member).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import cloudpipe


def zip_directory(directory: Path, url: str) -> cloudpipe.S3MultipartWriter:
    with (
        cloudpipe.open(url, "wb") as writer,
        zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return writer


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), sys.argv[2]
    written = zip_directory(source, target)
    print(f"{target}: {written.part_count} parts, ETag {written.etag}")

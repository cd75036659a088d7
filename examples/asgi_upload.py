"""A web service that streams each request body into S3 as it arrives, in bounded memory.

    python examples/asgi_upload.py BUCKET [--port 8000] [--part-size BYTES] [--concurrency N]

    curl -T big.tar.gz http://127.0.0.1:8000/upload/backups/big.tar.gz

POST or PUT /upload/KEY stores the body, of any length, as s3://BUCKET/KEY and answers with
its size, parts, ETag and CRC32. The body is never held whole: each chunk is written as it
arrives, and the server reads no more of the body while a part is on its way (the writer's
back-pressure), so memory stays at a part or two per upload. A client that disconnects
midway, or any error, aborts the upload: no object, no parts left behind. GET /ping answers
at once, even while parts upload (the requests run off the event loop).

Starlette served by uvicorn; the S3 client honours the AWS_* variables (AWS_ENDPOINT_URL for
a local server).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import cloudpipe.aio


def make_app(bucket: str, part_size: int, concurrency: int | str) -> Starlette:
    client: Any = None  # one client for every upload, made at start-up (thread-safe)

    async def upload(request: Request) -> JSONResponse:
        key = request.path_params["key"]
        received = 0
        async with cloudpipe.aio.open(
            f"s3://{bucket}/{key}",
            client=client,
            part_size=part_size,
            max_concurrency=concurrency,
        ) as stored:
            async for chunk in request.stream():  # raises ClientDisconnect if the client left
                received += await stored.write(chunk)
        return JSONResponse(
            {
                "key": key,
                "bytes": received,
                "parts": stored.part_count,
                "etag": stored.etag,
                "checksum": stored.checksum,
            }
        )

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal client
        # retries are cloudpipe's (botocore's would multiply them); a connection per part
        config = Config(retries={"total_max_attempts": 1}, max_pool_connections=64)
        client = boto3.client("s3", config=config)
        yield

    routes = [
        Route("/upload/{key:path}", upload, methods=["POST", "PUT"]),
        Route("/ping", ping),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bucket")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--part-size", type=int, default=8 * 2**20)
    parser.add_argument("--concurrency", default="1", help="parts in flight per upload, or auto")
    args = parser.parse_args()
    concurrency = args.concurrency if args.concurrency == "auto" else int(args.concurrency)
    app = make_app(args.bucket, args.part_size, concurrency)
    print(f"pid {os.getpid()}: serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

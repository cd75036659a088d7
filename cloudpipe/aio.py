"""AsyncS3MultipartWriter: the writer for asyncio code, with back-pressure and abort on cancel.

It wraps an S3MultipartWriter, whose upload logic (parts, retries, checksums, the journal,
ending exactly once) it shares; only where that logic runs differs. Requests never run on the
event loop: a call that may send one runs in a thread of the writer's own, one call at a time
and in the order they were made, and the awaiting coroutine resumes when it returns: when the
part is stored (synchronous mode) or when there is room for another part in flight (with
``max_concurrency``), which is the back-pressure. A write that only copies bytes into the
part buffer runs on the loop and returns at once.

A cancellation (``asyncio.CancelledError``: a timeout, a client that went away, a task group
failing) aborts the upload before it propagates, as any exception in ``async with`` does: the
abort runs once the call in the thread has returned, and the cancelled task finishes only
after it. Callbacks, plain or ``async def``, run on the loop in the order the writer fires
them, while the call that fired them waits, so that one that raises aborts the upload as it
does for the synchronous writer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from cloudpipe.arguments import CALLBACKS, check_callback
from cloudpipe.clients import with_client
from cloudpipe.ending import Ending, shown
from cloudpipe.text import parse_url
from cloudpipe.writer import S3MultipartWriter

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["AsyncS3MultipartWriter", "open"]

T = TypeVar("T")
_ORPHANS: set[asyncio.Task[Any]] = set()  # callbacks' tasks, kept from the garbage collector
_RUNNING_CALLBACK: contextvars.ContextVar[AsyncS3MultipartWriter | None] = contextvars.ContextVar(
    "cloudpipe_aio_callback", default=None
)


class AsyncS3MultipartWriter:
    """Stream into one S3 object from asyncio code: ``await write()``, ``await close()``.

    Takes S3MultipartWriter's arguments; its callbacks may be coroutine functions. Use it as
    ``async with``: a clean exit completes the object, an exception or a cancellation aborts
    the upload. Memory: the part being filled, plus the parts in flight (``max_concurrency``).
    Making the writer sends nothing; without ``client=``, it makes a boto3 client, which takes
    some milliseconds on the calling thread: a service should make one client and pass it.
    """

    def __init__(self, bucket: str, key: str, **writer_args: Any) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # calls submitted to the writer's thread and not yet returned
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "cloudpipe-aio")
        for name in CALLBACKS:
            callback = writer_args.get(name)
            check_callback(name, callback)
            if callback is not None:
                writer_args[name] = self._on_loop(callback)
        self._writer = S3MultipartWriter(bucket, key, **writer_args)

    # -- what the object became (as S3MultipartWriter says) ----------------------------------

    @property
    def name(self) -> str:
        return self._writer.name

    @property
    def closed(self) -> bool:
        return self._writer.closed

    @property
    def upload_id(self) -> str | None:
        return self._writer.upload_id

    @property
    def part_count(self) -> int:
        return self._writer.part_count

    @property
    def etag(self) -> str | None:
        return self._writer.etag

    @property
    def version_id(self) -> str | None:
        return self._writer.version_id

    @property
    def checksum(self) -> dict[str, str] | None:
        return self._writer.checksum

    @property
    def concurrency(self) -> int:
        return self._writer.concurrency

    @property
    def ending(self) -> Ending:
        """What the store holds of the upload (see S3MultipartWriter.ending)."""
        return self._writer.ending

    @property
    def writer(self) -> S3MultipartWriter:
        """The synchronous writer underneath (for its other properties; call its methods
        only through this object)."""
        return self._writer

    def tell(self) -> int:
        """Bytes accepted so far."""
        return self._writer.tell()

    # -- writing -----------------------------------------------------------------------------

    async def write(self, data: ReadableBuffer, /) -> int:
        """Take all of ``data``; return when it is buffered or, if a part filled, when the
        part is stored or in flight with room for the next. Do not change ``data`` before
        this returns."""
        self._refuse_from_callback("write")
        if not self._pending:  # a copy on the loop, if the writer's lock is free at once
            taken = self._writer._write(data, self._writer._fill_only, wait=False)
            if taken >= 0:
                return taken
        return await self._call("write", self._writer.write, data)

    async def close(self) -> None:
        """Upload what is buffered and complete the object; nothing if already closed.

        Cancelled while the last part or the Complete request is on its way, it finishes
        that first: the stream was whole, so the object is completed, and the cancellation
        then propagates.
        """
        if not self.closed:
            await self._call("close", self._writer.close)

    async def abort(self) -> None:
        """Discard the buffer and abort the upload: no object appears. Idempotent.

        Raises:
            UploadError: The abort request failed (``aborted`` is False).
        """
        if not self.closed:
            await self._call("abort", self._writer.abort)

    async def __aenter__(self) -> AsyncS3MultipartWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
        else:  # abort; a failed abort is a note on ``exc``, as for the synchronous writer
            await self._end_for(exc)

    def __repr__(self) -> str:
        return repr(self._writer).replace("S3MultipartWriter", "aio.AsyncS3MultipartWriter", 1)

    # -- running calls off the loop --------------------------------------------------------

    async def _call(self, what: str, method: Callable[..., T], *args: Any) -> T:
        """Run ``method`` in the writer's thread; if cancelled meanwhile, abort the upload
        once it returns, and only then let the cancellation through."""
        self._refuse_from_callback(what)
        self._bind_loop()
        self._pending += 1
        try:
            future = self._thread.submit(method, *args)
            try:
                return await asyncio.wrap_future(future)
            except asyncio.CancelledError as cancelled:
                await self._end_for(cancelled)
                raise
        finally:
            self._pending -= 1
            self._release_thread()

    async def _end_for(self, error: BaseException) -> None:
        """Abort because of ``error`` (after any call still running), and wait for the abort
        to end whatever further cancellations come: the caller re-raises."""
        if self.closed and not self._pending:
            return
        self._bind_loop()
        self._pending += 1  # other tasks' writes queue behind the abort, off the loop
        try:
            ending = self._thread.submit(self._writer._abandon_for, error)
            waited = asyncio.wrap_future(ending)
            while not waited.done():
                try:
                    await asyncio.shield(waited)
                except asyncio.CancelledError:
                    continue
        finally:
            self._pending -= 1
        self._release_thread()

    def _release_thread(self) -> None:
        """Let the writer's thread go once the writer has ended and no call waits for it."""
        if self.closed and not self._pending:
            self._thread.shutdown(wait=False)

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(f"{shown(self.name)} is used from another event loop")

    def _refuse_from_callback(self, what: str) -> None:
        if _RUNNING_CALLBACK.get() is self:
            raise RuntimeError(
                f"{shown(self.name)}: {what}() called from one of the writer's own callbacks, "
                "inside the call that fired it: not allowed (raise an exception to abort)"
            )

    def _on_loop(self, callback: Callable[..., object]) -> Callable[..., None]:
        """``callback`` as the writer's thread calls it: run on the loop, waited for."""

        def on_loop(*args: Any) -> None:
            loop = self._loop
            if loop is None or loop.is_closed() or _on_loop_thread(loop):
                # abandoned by the garbage collector or at exit: no loop to wait on
                result = callback(*args)
                if inspect.iscoroutine(result):
                    if loop is not None and loop.is_running():
                        task = loop.create_task(result)  # later, as nothing can wait for it
                        _ORPHANS.add(task)
                        task.add_done_callback(_ORPHANS.discard)
                    else:
                        result.close()  # no loop will ever run it
                return
            running = asyncio.run_coroutine_threadsafe(self._run_callback(callback, args), loop)
            while not concurrent.futures.wait([running], timeout=0.5).done:
                if loop.is_closed() or not loop.is_running():  # nobody will ever run it
                    running.cancel()
                    raise RuntimeError(
                        f"{shown(self.name)}: the event loop stopped while a callback waited "
                        "to run on it"
                    )
            running.result()

        return on_loop

    async def _run_callback(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        _RUNNING_CALLBACK.set(self)  # this task's own context: tasks it starts inherit it
        result = callback(*args)
        if inspect.isawaitable(result):
            await result


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def open(url: str, mode: str = "wb", **writer_args: Any) -> AsyncS3MultipartWriter:  # noqa: A001
    """Open ``s3://bucket/key`` for writing from asyncio code (binary mode, ``"wb"``).

    ``writer_args`` are cloudpipe.open's keyword arguments (``endpoint_url``, ``profile``...
    or ``client``, and S3MultipartWriter's); use the result as
    ``async with cloudpipe.aio.open(url) as f: await f.write(data)``.
    """
    if mode != "wb":
        raise ValueError(f"mode {mode!r} is not supported: cloudpipe.aio writes bytes, with 'wb'")
    bucket, key = parse_url(url)
    return AsyncS3MultipartWriter(bucket, key, **with_client(writer_args))

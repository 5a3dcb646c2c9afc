"""A request body streamed from the ASGI server into a blocking reader on a worker thread.

``pump`` (a trio task) takes the body's chunks from ASGI ``receive()`` and puts
them on a bounded channel (so a slow store slows the client down, and the
body is never held whole); ``BodyReader`` (a raw file on the worker thread)
takes them off with ``trio.from_thread``. Only a body that arrived to its end
reads as ending: a client that goes away, a body over the limit or a stop of
the server raises in the reader, so a load that reads it aborts.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Awaitable, Callable
from typing import Any

import trio

CHUNKS = 16  # chunks in flight between the server and the reader (~64 KB each)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than [http] max_body ({limit:,} bytes)")
        self.limit = limit


class BodyAborted(Exception):
    """The body ended before its end: the client went away, or the server stops."""


_END = object()
Item = bytes | BaseException | object


def channel() -> tuple[trio.MemorySendChannel[Item], trio.MemoryReceiveChannel[Item]]:
    return trio.open_memory_channel[Item](CHUNKS)


async def pump(
    receive: Callable[[], Awaitable[dict[str, Any]]],
    out: trio.MemorySendChannel[Item],
    limit: int,
) -> None:
    """Move the body's chunks to ``out``; the end only if the body ended, else nothing
    (closing ``out`` without it means aborted)."""
    size = 0
    with contextlib.suppress(trio.BrokenResourceError):
        async with out:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # http.disconnect
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await out.send(BodyTooLarge(limit))
                    return
                if chunk:
                    await out.send(chunk)
                if not message.get("more_body", False):
                    await out.send(_END)
                    return


class BodyReader(io.RawIOBase):
    """The body as a raw binary file, for a worker thread started by trio."""

    def __init__(self, chunks: trio.MemoryReceiveChannel[Item]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = memoryview(b"")
        self._ended = False
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buf:
            if self._ended:
                return 0
            item = trio.from_thread.run(self._next)
            if item is _END:
                self._ended = True
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, bytes)
                self._buf = memoryview(item)
                self.size += len(item)
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    async def _next(self) -> Item:
        try:
            return await self._chunks.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return BodyAborted("the request body ended early (the client went away)")


def text(reader: BodyReader) -> io.TextIOWrapper:
    """The body as UTF-8 text lines (a BOM is dropped), as `volley enqueue` reads a file."""
    return io.TextIOWrapper(io.BufferedReader(reader, 1 << 16), encoding="utf-8-sig")

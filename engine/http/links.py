"""The public short-link redirects (ASGI, on ``[links] listen``): GET /<code> → 302.

A code is looked up with one read (an unknown code is 404 and writes
nothing; a path that cannot be a code is 404 without even a read). A click —
a GET from anything but a link-preview robot (engine/links.py) — is recorded
durably before the redirect is answered: clicks are group-committed (one
write transaction, on a worker thread, takes every click that arrived while
the previous one was committing: :class:`ClickWriter`), and each request
waits for its own commit. HEAD and
preview robots are redirected without a click. Nothing here authenticates:
this listener is meant to face the public, and it serves nothing but links.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import trio

from engine.http.asgi import Receive, Scope, Send
from engine.links import is_code, is_preview
from engine.store import Store
from engine.store.records import ClickIn

log = logging.getLogger("volley.links")

FLUSH_EVERY = 0.0  # seconds a click waits for others (those arriving in a commit share the next)
ROBOTS_TXT = b"User-agent: *\nDisallow: /\n"
_SAFE = ":/?#[]@!$&'()*+,;=%~"
_NO_STORE = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow"),
]


_UNSAFE = re.compile(r'[^\x21-\x7e]|["<>\\^`{|}]')  # what quoting would change


@functools.lru_cache(maxsize=4096)  # a campaign's links share a few URLs
def location(url: str) -> bytes:
    """A URL as written in a text, as an ASCII Location header (IDNA host, %-encoded rest)."""
    host = url.split("/", 3)[2] if url.count("/") >= 2 else ""
    if not _UNSAFE.search(url) and host == host.lower():
        return url.encode("ascii")  # already what quoting gives (the usual case)
    return quoted(url)


def quoted(url: str) -> bytes:
    """The long way of :func:`location`: split, IDNA-encode the host, %-encode the rest."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = quote(host, safe="")
    host = f"[{host}]" if ":" in host else host
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if "@" in parts.netloc:  # user info, kept as written (percent-encoded)
        netloc = quote(parts.netloc.rsplit("@", 1)[0], safe=_SAFE) + "@" + netloc
    path, query, fragment = (quote(x, safe=_SAFE) for x in parts[2:])
    before_fragment = url.split("#", 1)[0]
    tail = f"?{query}" if "?" in before_fragment else ""  # an empty "?" or "#" is kept
    tail += f"#{fragment}" if "#" in url else ""
    return f"{parts.scheme}://{netloc}{path}{tail}".encode("ascii")


class ClickWriter:
    """Group commit of clicks: ``record`` returns once its click is durable (or its
    transaction failed: then the click is lost, logged, and the redirect still goes)."""

    def __init__(self, store: Store, every: float = FLUSH_EVERY) -> None:
        self.store = store
        self.every = every
        self._pending: list[ClickIn] = []
        self._done = trio.Event()  # set when the group that holds the pending clicks commits
        self._wake = trio.Event()
        self.running = False
        self.written = self.failed = self.commits = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush until cancelled; what is pending when it stops is flushed first."""
        self.running = True
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                await trio.sleep(self.every)
                await self._flush()
        finally:
            self.running = False
            with trio.CancelScope(shield=True):
                while self._pending:
                    await self._flush()

    async def _flush(self) -> None:
        group, done = self._pending, self._done
        self._pending, self._done, self._wake = [], trio.Event(), trio.Event()
        if group:
            try:
                self.written += await trio.to_thread.run_sync(self.store.record_clicks, group)
                self.commits += 1
            except Exception:
                self.failed += len(group)
                log.exception("%d click(s) could not be written", len(group))
        done.set()

    async def record(self, click: ClickIn) -> None:
        if not self.running:  # no writer (a server without lifespan): write it alone
            self._pending.append(click)
            await self._flush()
            return
        self._pending.append(click)
        done = self._done
        self._wake.set()
        await done.wait()


class Links:
    """The ASGI app of the links listener."""

    def __init__(
        self, store: Store, *, every: float = FLUSH_EVERY, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.clicks = ClickWriter(store, every)
        self.clock = clock
        self.answered: dict[str, int] = {"click": 0, "preview": 0, "head": 0, "unknown": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._request(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await nursery.start(self.clicks.run)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    nursery.cancel_scope.cancel()  # the writer flushes what is pending
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _request(self, scope: Scope, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, [(b"allow", b"GET, HEAD")])
            return
        if path == "/robots.txt":
            await _answer(send, 200, [(b"content-type", b"text/plain")], ROBOTS_TXT, method)
            return
        code = path.rsplit("/", 1)[-1]
        target = self.store.resolve_link(code) if is_code(code) else None
        if target is None:
            self.answered["unknown"] += 1
            await _answer(send, 404, [(b"content-type", b"text/plain")], b"no such link\n", method)
            return
        agent = _header(scope, b"user-agent")
        if method == "HEAD":
            self.answered["head"] += 1
        elif is_preview(agent):
            self.answered["preview"] += 1
        else:
            self.answered["click"] += 1
            await self.clicks.record(ClickIn(code=code, at=self.clock(), agent=agent))
        await _answer(send, 302, [(b"location", location(target.url)), *_NO_STORE])


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def _answer(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    method: str = "GET",
) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + length})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

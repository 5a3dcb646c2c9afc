"""The engine's control socket: a Unix socket, mode 0600, serving protocol frames.

The server knows the wire, not the engine: it hands each decoded request to a
``Handler`` (the Engine) with the peer's uid, and sends back what it answers.
A subscription is a task on the connection's nursery that sends a Snapshot
every interval until Unsubscribe or the peer goes away. Malformed frames and
requests get an Error reply; an oversized frame also ends the connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Protocol

import msgspec
import trio

from engine.control import protocol as p

log = logging.getLogger("volley.control")

MAX_PATH = 107  # sun_path holds 108 bytes with the NUL
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0


class ControlError(Exception):
    """The control socket cannot be served; the message says why."""


class Handler(Protocol):
    async def snapshot(self) -> p.Snapshot: ...

    async def act(self, request: p.Request, uid: int) -> p.Reply: ...


def claim_path(path: Path) -> None:
    """Make ``path`` free for our socket: refuse a live engine's, remove a stale one."""
    if len(os.fsencode(path)) > MAX_PATH:
        raise ControlError(f"{path}: [control] socket path longer than {MAX_PATH} bytes")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path}: [control] socket path is taken by a file that is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # stale: its engine died without removing it
        return
    except OSError as exc:
        raise ControlError(f"{path}: cannot probe the control socket: {exc}") from None
    finally:
        probe.close()
    raise ControlError(f"{path}: another engine is running (its control socket answers)")


def peer_uid(sock: socket.socket | trio.socket.SocketType) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        claim_path(self.path)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        inode = self.path.stat().st_ino
        sock.listen(64)
        try:
            task_status.started()
            await trio.serve_listeners(self._connection, [trio.SocketListener(sock)])
        finally:
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == inode:
                    self.path.unlink()

    async def _connection(self, stream: trio.SocketStream) -> None:
        """One client; whatever goes wrong with it ends it, never the engine."""
        try:
            await self._serve(stream)
        except Exception:
            log.exception("control connection failed; closed")

    async def _serve(self, stream: trio.SocketStream) -> None:
        conn = _Connection(stream, peer_uid(stream.socket))
        async with stream, trio.open_nursery() as nursery:
            conn.nursery = nursery
            reader = p.FrameReader()
            while True:
                try:
                    data = await stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    break
                try:
                    bodies = reader.feed(data)
                except p.FrameError as exc:
                    await conn.send(p.Error(message=f"bad frame: {exc}"))
                    break
                for body in bodies:
                    await self._request(conn, body)
            nursery.cancel_scope.cancel()

    async def _request(self, conn: _Connection, body: bytes) -> None:
        try:
            req = p.decode_request(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await conn.send(p.Error(message=f"malformed request: {exc}"))
            return
        match req:
            case p.Hello(version=version) if version != p.VERSION:
                await conn.send(
                    p.Error(
                        message=f"protocol version {version} unsupported, "
                        f"this engine speaks {p.VERSION}"
                    )
                )
            case p.Hello():
                await conn.send(p.Hello(client="volley-engine"))
            case p.Subscribe(interval=interval):
                conn.subscribe(self.handler, min(MAX_INTERVAL, max(MIN_INTERVAL, interval)))
            case p.Unsubscribe():
                conn.unsubscribe()
                await conn.send(p.Ok(detail="unsubscribed"))
            case _:
                try:
                    reply = await self.handler.act(req, conn.uid)
                except Exception as exc:
                    log.exception("control: %r failed", req)
                    reply = p.Error(message=f"{type(req).__name__} failed: {exc}")
                await conn.send(reply)


class _Connection:
    def __init__(self, stream: trio.SocketStream, uid: int) -> None:
        self.stream = stream
        self.uid = uid
        self.nursery: trio.Nursery | None = None
        self._lock = trio.Lock()
        self._subscription: trio.CancelScope | None = None

    async def send(self, msg: p.Base) -> None:
        async with self._lock:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.send_all(p.frame(msg))

    def subscribe(self, handler: Handler, interval: float) -> None:
        self.unsubscribe()
        scope = self._subscription = trio.CancelScope()
        assert self.nursery is not None
        self.nursery.start_soon(self._feed, handler, interval, scope)

    def unsubscribe(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    async def _feed(self, handler: Handler, interval: float, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                try:
                    snapshot = await handler.snapshot()
                except Exception as exc:  # e.g. the store could not be read: say so, go on
                    log.exception("control: snapshot failed")
                    await self.send(p.Error(message=f"snapshot failed: {exc}"))
                else:
                    await self.send(snapshot)
                await trio.sleep(interval)

"""A blocking client of the control socket, for `volley status` and the TUI's worker thread.

One reader (``receive``) and any number of senders (``send`` takes a lock):
the TUI reads snapshots and replies on its worker thread while key presses
send requests from the UI thread.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import msgspec

from engine.control import protocol as p


class ControlUnavailable(Exception):
    """No engine answers on the control socket (none runs, or it went away)."""


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = p.FrameReader()
        self._ready: list[bytes] = []
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, path: str | Path, timeout: float = 2.0) -> Client:
        """Connect and say Hello; ControlUnavailable when no engine answers."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            raise ControlUnavailable(f"{path}: no engine answers ({exc.strerror})") from None
        client = cls(sock)
        reply = client.request(p.Hello(client="volley"))
        if isinstance(reply, p.Error):
            client.close()
            raise ControlUnavailable(f"{path}: {reply.message}")
        return client

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, request: p.Base) -> None:
        try:
            with self._lock:
                self._sock.sendall(p.frame(request))
        except OSError as exc:
            raise ControlUnavailable(f"the engine went away ({exc})") from None

    def receive(self, timeout: float | None = 2.0) -> p.Reply:
        """The next snapshot or reply; ControlUnavailable if the engine goes away."""
        self._sock.settimeout(timeout)
        while not self._ready:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:
                raise ControlUnavailable(f"the engine went away ({exc})") from None
            if not data:
                raise ControlUnavailable("the engine closed the control connection")
            try:
                self._ready += self._reader.feed(data)
            except p.FrameError as exc:
                raise ControlUnavailable(str(exc)) from None
        try:
            return p.decode_reply(self._ready.pop(0))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ControlUnavailable(f"an unreadable reply from the engine: {exc}") from None

    def request(self, request: p.Base, timeout: float = 5.0) -> p.Reply:
        """Send and wait for the answer, passing over snapshots (not while subscribed)."""
        self.send(request)
        while True:
            reply = self.receive(timeout)
            if not isinstance(reply, p.Snapshot):
                return reply

    def snapshot(self, timeout: float = 5.0) -> p.Snapshot:
        """One snapshot (subscribes, takes the first; the connection is for this only)."""
        self.send(p.Subscribe(interval=60.0))
        while True:
            reply = self.receive(timeout)
            if isinstance(reply, p.Snapshot):
                return reply
            if isinstance(reply, p.Error):
                raise ControlUnavailable(reply.message)

"""Where the app's data comes from: the control socket, or fixed data for tests.

A source's ``run`` is the body of the app's one worker thread: it posts
messages to the app until the worker is cancelled. ``send`` is called from the
UI thread for the operator's actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from textual.message import Message

from engine.config import Config
from engine.control import protocol as p
from engine.control.client import Client, ControlUnavailable
from engine.control.views import store_snapshot
from tui.messages import ConnectionChanged, ReplyArrived, SnapshotArrived

Post = Callable[[Message], object]
Cancelled = Callable[[], bool]


class Source(Protocol):
    def run(self, post: Post, cancelled: Cancelled) -> None: ...

    def send(self, request: p.Base) -> bool: ...


class ControlSource:
    """The engine's control socket; the store, read-only, while no engine answers."""

    def __init__(
        self, cfg: Config, interval: float = 0.25, retry: float = 1.0, offline_every: float = 2.0
    ) -> None:
        self.cfg = cfg
        self.path: Path = cfg.resolve(cfg.control.socket)
        self.interval = interval
        self.retry = retry
        self.offline_every = offline_every
        self._client: Client | None = None

    def run(self, post: Post, cancelled: Cancelled) -> None:
        was_live: bool | None = None
        last_offline = 0.0
        while not cancelled():
            try:
                client = Client.connect(self.path)
            except (ControlUnavailable, TimeoutError):
                if was_live is not False:
                    detail = "engine went away" if was_live else "no engine running"
                    post(ConnectionChanged(False, f"{detail}: the store, read-only"))
                    was_live = False
                if time.monotonic() - last_offline >= self.offline_every:
                    last_offline = time.monotonic()
                    post(SnapshotArrived(store_snapshot(self.cfg)))
                _sleep(self.retry, cancelled)
                continue
            was_live = True
            self._follow(client, post, cancelled)

    def _follow(self, client: Client, post: Post, cancelled: Cancelled) -> None:
        self._client = client
        post(ConnectionChanged(True, f"engine at {self.path}"))
        try:
            client.send(p.Subscribe(interval=self.interval))
            while not cancelled():
                try:
                    reply = client.receive(timeout=0.5)
                except TimeoutError:
                    continue
                post(
                    SnapshotArrived(reply) if isinstance(reply, p.Snapshot) else ReplyArrived(reply)
                )
        except ControlUnavailable:
            pass
        finally:
            self._client = None
            client.close()

    def send(self, request: p.Base) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            client.send(request)
        except ControlUnavailable:
            return False
        return True


class FixedSource:
    """One fixed snapshot, and requests recorded (tests, snapshot tests, screenshots)."""

    def __init__(self, snapshot: p.Snapshot, live: bool = True) -> None:
        self.snapshot = snapshot
        self.live = live
        self.sent: list[p.Base] = []
        self._post: Post | None = None

    def run(self, post: Post, cancelled: Cancelled) -> None:
        self._post = post
        post(ConnectionChanged(self.live, "fixed data"))
        post(SnapshotArrived(self.snapshot))
        while not cancelled():
            time.sleep(0.05)

    def send(self, request: p.Base) -> bool:
        self.sent.append(request)
        if self._post is not None:
            self._post(ReplyArrived(p.Ok(detail=f"done: {type(request).__name__}")))
        return self.live


def _sleep(seconds: float, cancelled: Cancelled) -> None:
    end = time.monotonic() + seconds
    while not cancelled() and time.monotonic() < end:
        time.sleep(0.05)

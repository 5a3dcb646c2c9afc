"""The API served for real: hypercorn on 127.0.0.1 (a free port), a real LMDB in tmp_path."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import trio

from engine import config
from engine.http.api import Api
from engine.http.links import Links
from engine.http.server import Listener, serve_all
from engine.store import Store
from engine.wiring import open_store

TOKEN = "t0k3n-for-tests-0123456789"
JSONL = {"Content-Type": "application/x-ndjson"}


@dataclass
class Served:
    url: str
    cfg: config.Config
    store: Store
    api: Api
    shutdown: trio.Event
    stopped: trio.Event
    links_url: str = ""  # with a links listener beside the API

    async def stop(self, close: bool = True) -> None:
        """Stop gracefully (as SIGTERM does), then close the store."""
        self.shutdown.set()
        with trio.fail_after(10):
            await self.stopped.wait()
        if close:
            self.store.close()

    def client(self, token: str | None = TOKEN, **kw: object) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10, **kw)


def make_config(tmp_path, extra: str = "", operators: str = "") -> config.Config:
    text = (
        f'[store]\npath = "{tmp_path / "db"}"\n'
        f'[control]\nsocket = "{tmp_path / "volley.sock"}"\n'
        f"{extra}\n"
        + (operators or '[[operators]]\nname = "local"\nport = 2775\npassword = "secret"\n')
    )
    return config.parse(text.encode())


async def serve(
    nursery: trio.Nursery,
    cfg: config.Config,
    *,
    token: str | None = TOKEN,
    store: Store | None = None,
    links: Links | None = None,
) -> Served:
    store = store or open_store(cfg)
    api = Api(cfg, store, token=token, control=cfg.resolve(cfg.control.socket))
    listeners = [Listener("api", api, "127.0.0.1:0")]
    if links is not None:
        listeners.append(Listener("links", links, "127.0.0.1:0"))
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[dict[str, list[str]]]) -> None:
        try:
            await serve_all(listeners, shutdown, graceful_timeout=2.0, task_status=task_status)
        finally:
            stopped.set()

    bound = await nursery.start(run)
    links_url = bound["links"][0] if links is not None else ""
    return Served(bound["api"][0], cfg, store, api, shutdown, stopped, links_url)


def lines(n: int, start: int = 0, text: str = "Hello") -> bytes:
    return "".join(
        f'{{"id": "m{i}", "to": "+7916{i:07d}", "text": "{text} {i}"}}\n'
        for i in range(start, start + n)
    ).encode()

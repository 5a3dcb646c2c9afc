"""Engine tests: a real simulator on 127.0.0.1, a real LMDB in tmp_path."""

from __future__ import annotations

import time

import trio

from engine import config
from engine.service import Engine
from engine.smsc.options import Options
from engine.smsc.server import Smsc
from engine.store import NewMessage, Store

NOW = time.time()


async def simulator(nursery: trio.Nursery, **kw: object) -> Smsc:
    smsc = Smsc(Options(port=0, seed=3, **kw))
    await nursery.start(smsc.serve)
    return smsc


def make_config(tmp_path, operators: str, extra: str = "", store: str = "") -> config.Config:
    text = f'[store]\npath = "{tmp_path / "db"}"\n{store}\n{extra}\n{operators}'
    return config.parse(text.encode())


def operator(name: str, port: int, **kw: object) -> str:
    lines = [f'[[operators]]\nname = "{name}"\nport = {port}\npassword = "secret"']
    for key, value in kw.items():
        lines.append(
            f"{key} = {value!r}".replace("'", '"').replace("True", "true").replace("False", "false")
        )
    return "\n".join(lines) + "\n"


def enqueue(cfg: config.Config, numbers: list[str], batch: str = "b", route_of=None) -> Store:
    from engine.routing import route_for

    store = Store.open(cfg.resolve(cfg.store.path), on_crash_inflight=cfg.store.on_crash_inflight)
    store.enqueue(
        batch,
        [
            NewMessage(
                to=n,
                text=f"Hello {i}",
                sender="Shop",
                ext_id=str(i),
                route=route_for(n, cfg.operators),
            )
            for i, n in enumerate(numbers)
        ],
        now=time.time(),
    )
    return store


async def run_until_drained(cfg: config.Config, store: Store, timeout: float = 20) -> Engine:
    engine = Engine(cfg, store)
    with trio.fail_after(timeout):
        await engine.run(until_drained=True)
    return engine


def states(store: Store) -> dict[str, int]:
    return {k: v for k, v in store.counts().states.items() if v}

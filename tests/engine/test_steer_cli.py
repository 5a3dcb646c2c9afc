"""volley pause/resume/tps/reconnect/drain, message and messages: with a real engine against
the simulator (its control socket), and with none."""

import csv
import io
import json
import logging
import os
import time

import pytest
import trio

from engine import cli, config
from engine.service import Engine
from engine.store import NewMessage

from .helpers import enqueue, operator, simulator

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(100)]


def write_config(tmp_path, port: int, **op) -> str:
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n[control]\nsocket = "{tmp_path / "v.sock"}"\n'
        + operator("local", port, **({"tps": 2000.0} | op))
    )
    return str(path)


async def volley(*args: str) -> int:
    return await trio.to_thread.run_sync(cli.main, list(args))


async def start(nursery, tmp_path, n=0, **op):
    smsc = await simulator(nursery)
    path = write_config(tmp_path, smsc.port, **op)
    cfg = config.load(path)
    store = enqueue(cfg, RU[:n])
    engine = Engine(cfg, store, control=cfg.resolve(cfg.control.socket))
    await nursery.start(engine.run)
    return smsc, engine, store, path


async def test_without_an_engine_every_steering_command_exits_1(tmp_path, capsys):
    path = write_config(tmp_path, 2775)
    for args in (
        ["pause", "--operator", "local"],
        ["resume", "--batch", "b"],
        ["tps", "local", "50"],
        ["reconnect", "local#0"],
        ["drain"],
    ):
        assert await volley(*args, "--config", path) == 1, args
        assert "no engine running" in capsys.readouterr().err


async def test_bad_usage_exits_2(tmp_path, capsys):
    path = write_config(tmp_path, 2775)
    assert await volley("tps", "local", "fast", "--config", path) == 2
    assert "expected a number > 0" in capsys.readouterr().err
    assert await volley("tps", "local", "-5", "--config", path) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["pause", "--config", path])  # which one?
    assert exc.value.code == 2


async def test_pause_resume_tps_reconnect_on_the_running_engine(nursery, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="volley")
    smsc, engine, store, path = await start(nursery, tmp_path)
    op = engine.operators["local"]
    assert await volley("pause", "--operator", "local", "--config", path) == 0
    assert op.paused
    assert "operator local: paused" in capsys.readouterr().out
    assert await volley("resume", "--operator", "local", "--config", path) == 0
    assert not op.paused
    assert await volley("pause", "--bind", "local#0", "--config", path) == 0
    assert op.binds[0].paused
    assert await volley("resume", "--bind", "local#0", "--config", path) == 0
    assert not op.binds[0].paused
    assert await volley("tps", "local", "75", "--config", path) == 0
    assert op.pacer.rate == 75
    assert "tps set to 75" in capsys.readouterr().out
    with trio.fail_after(5):
        while not any(c.bound for c in smsc.connections):
            await trio.sleep(0.02)
    assert await volley("reconnect", "local#0", "--config", path) == 0
    with trio.fail_after(10):
        while op.binds[0].stats.reconnects < 1:
            await trio.sleep(0.05)
    capsys.readouterr()
    for args in (
        ["pause", "--operator", "nobody"],
        ["pause", "--batch", "nobatch"],
        ["reconnect", "nobind#9"],
        ["tps", "nobody", "5"],
    ):
        assert await volley(*args, "--config", path) == 2, args
        assert "the engine refused: no " in capsys.readouterr().err
    done = [r for r in caplog.records if getattr(r, "action", "") == "Pause"]
    assert (done[0].operator, done[0].uid, done[0].levelname) == ("local", os.getuid(), "INFO")
    refused = [r for r in caplog.records if r.getMessage().startswith("control: refused")]
    assert (refused[0].action, refused[0].levelname) == ("Pause", "WARNING")
    assert refused[0].operator == "nobody"
    await engine.stop()
    store.close()


async def test_pause_a_batch_then_drain_and_wait(nursery, tmp_path, capsys):
    _, engine, store, path = await start(nursery, tmp_path, tps=1.0)
    assert await volley("pause", "--operator", "local", "--config", path) == 0
    new = [NewMessage(to=n, text="hi", sender="S", ext_id=n, route="local") for n in RU[:5]]
    store.enqueue("later", new, now=time.time())
    assert await volley("pause", "--batch", "later", "--config", path) == 0
    assert "batch later: paused (5 queued message(s))" in capsys.readouterr().out
    assert store.paused_batches() == ["later"]
    assert await volley("drain", "--wait", "--timeout", "20", "--config", path) == 0
    assert "engine stopped" in capsys.readouterr().out
    assert engine.stopped.is_set()
    assert await volley("drain", "--config", path) == 1  # gone now
    store.close()


async def test_message_and_messages_after_a_run(nursery, tmp_path, capsys):
    _, engine, store, path = await start(nursery, tmp_path, n=20)
    with trio.fail_after(15):
        while store.counts().states["delivered"] < 20:
            await trio.sleep(0.05)
    await engine.stop()
    store.close()
    assert await volley("message", "b", "3", "--json", "--config", path) == 0
    msg = json.loads(capsys.readouterr().out)
    assert (msg["batch"], msg["id"], msg["to"], msg["state"]) == ("b", "3", RU[3], "delivered")
    assert len(msg["smsc_ids"]) == 1 and msg["receipt"]["stat"] == "DELIVRD"
    assert await volley("message", "b", "3", "--config", path) == 0
    text = capsys.readouterr().out
    assert "state         delivered" in text and msg["smsc_ids"][0] in text
    assert await volley("message", "b", "nope", "--config", path) == 1
    assert "no message 'nope' in batch 'b'" in capsys.readouterr().err
    assert await volley("messages", "--batch", "b", "--config", path) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 20
    assert rows[3]["number"] == RU[3] and rows[3]["state"] == "delivered"
    assert rows[3]["smsc_ids"] == msg["smsc_ids"][0]
    assert (
        await volley(
            "messages", "--batch", "b", "--json", "--state", "failed,skipped", "--config", path
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    assert (
        await volley("messages", "--batch", "b", "--json", "--since", "1h", "--config", path) == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 20
    assert await volley("messages", "--batch", "b", "--since", "2099-01-01", "--config", path) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the header
    assert await volley("messages", "--batch", "b", "--state", "sideways", "--config", path) == 2
    assert await volley("messages", "--batch", "b", "--since", "yesterday", "--config", path) == 2
    assert await volley("messages", "--batch", "zz", "--config", path) == 1

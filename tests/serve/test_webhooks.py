"""Webhook delivery against a real receiver on 127.0.0.1 (hypercorn) that fails, is down,
then comes back: nothing lost, order per message kept, every signature valid."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from functools import partial

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from engine import config
from engine.http.metrics import registry
from engine.store import MarkSent, NewMessage, RecordMo, RecordReceipt
from engine.webhooks import WebhookSender, sign
from engine.wiring import open_store

NOW = 1_800_000_000.0
SECRET = b"s3cr3t-for-tests"


class Receiver:
    """An ASGI app that records every POST and answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.seen: list[tuple[int, dict, str, str]] = []  # (status, body, signature, event id)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = dict(scope["headers"])
        signature = headers.get(b"x-volley-signature", b"").decode()
        valid = hmac.compare_digest(signature, sign(SECRET, body))
        self.seen.append((self.status, json.loads(body), "valid" if valid else signature,
                          headers[b"x-volley-event"].decode()))  # fmt: skip
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def delivered(self) -> list[dict]:
        return [body for status, body, _, _ in self.seen if 200 <= status < 300]


async def listen(nursery: trio.Nursery, app: Receiver, port: int) -> trio.Event:
    """Serve ``app`` on 127.0.0.1:port until the returned event is set."""
    hc = HypercornConfig()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.graceful_timeout = 0.1
    hc.accesslog = None
    stop = trio.Event()
    await nursery.start(partial(serve, app, hc, shutdown_trigger=stop.wait))
    return stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(tmp_path, port: int, retry_for: str = "24h", events: str = ""):
    cfg = config.parse(
        f'[store]\npath = "{tmp_path / "db"}"\n'
        f'[webhooks]\nurl = "http://127.0.0.1:{port}/hook"\nretry_for = "{retry_for}"\n'
        f'timeout = "2s"\nmax_in_flight = 4\n{events}'.encode()
    )
    store = open_store(cfg)
    n = 12
    store.enqueue("b", [NewMessage(to=f"+7916{i:07d}", text="hi", sender="S", ext_id=f"m{i}",
                                   route="op") for i in range(n)], now=NOW)  # fmt: skip
    claimed = store.claim("op", n, NOW + 1)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW + 2, operator="op",
                          token=m.token) for m in claimed])  # fmt: skip
    receipts = [
        RecordReceipt(candidates=(f"s{m.id}",), state=state, final=final, stat=stat, err=0,
                      network_error=None, at=NOW + 3 + k, operator="op")
        for m in claimed
        for k, (state, stat, final) in enumerate(
            [("sent", "ENROUTE", False), ("delivered", "DELIVRD", True)]
            if m.id % 3 else [("undelivered", "UNDELIV", True)]
        )
    ]  # fmt: skip
    for start in range(0, len(receipts), 5):  # several transactions, several entries
        store.apply(receipts[start : start + 5])
    store.apply([RecordMo(source="+79160000001", destination="555", text="STOP", at=NOW + 9,
                          stop=True)])  # fmt: skip
    return cfg, store


def sender_for(cfg, store, **kw) -> WebhookSender:
    return WebhookSender(store, cfg.webhooks, SECRET, backoff=(0.02, 0.2), poll=0.05, **kw)


async def wait_for(predicate, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def check_order(delivered: list[dict]) -> None:
    """Per message, its events arrive in the order they happened: receipts, then final."""
    first: dict[str, int] = {}
    for i, body in enumerate(delivered):
        first.setdefault(body["event"], i)
    per_message: dict[int, list[tuple[int, dict]]] = {}
    for body in delivered:
        if body["type"] != "mo":
            per_message.setdefault(body["key"], []).append((first[body["event"]], body))
    for events in per_message.values():
        kinds = [(b["type"], b.get("stat")) for _, b in sorted(events, key=lambda x: x[0])]
        seen = list(dict.fromkeys(kinds))
        assert seen[-1][0] == "final", kinds
        assert all(t == "receipt" for t, _ in seen[:-1]), kinds
        if ("receipt", "ENROUTE") in seen:
            assert seen.index(("receipt", "ENROUTE")) < seen.index(("receipt", "DELIVRD"))


@pytest.mark.trio
async def test_a_receiver_that_fails_then_is_down_then_comes_back_loses_nothing(tmp_path):
    port = free_port()
    cfg, store = setup(tmp_path, port)
    backlog = store.webhook_counts()[0]
    assert backlog == 8 * 3 + 4 * 2 + 1  # receipts and finals, and the MO
    app = Receiver()
    app.status = 500
    async with trio.open_nursery() as nursery:
        stop = await listen(nursery, app, port)
        sender = sender_for(cfg, store)
        await nursery.start(sender.run)
        await wait_for(lambda: len(app.seen) >= 4)
        assert not app.delivered()
        stop.set()  # down: connection refused
        await wait_for(lambda: sender.deliveries["error"] >= 2)
        app.status = 200
        await listen(nursery, app, port)  # back
        await wait_for(lambda: store.webhook_counts()[0] == 0)
        nursery.cancel_scope.cancel()
    delivered = app.delivered()
    assert {b["event"] for b in delivered} == {e for _, _, _, e in app.seen}
    assert len({b["event"] for b in delivered}) == backlog  # every event, at least once
    assert all(sig == "valid" for _, _, sig, _ in app.seen)
    check_order(delivered)
    final = next(b for b in delivered if b["type"] == "final" and b["id"] == "m2")  # key 3
    assert (final["batch"], final["to"], final["state"]) == ("b", "+79160000002", "undelivered")
    assert final["stat"] == "UNDELIV" and final["smsc_ids"] == ["s3"]
    mo = next(b for b in delivered if b["type"] == "mo")
    assert (mo["from"], mo["to"], mo["text"], mo["stop"]) == ("+79160000001", "555", "STOP", True)
    assert sender.deliveries["500"] >= 1 and sender.deliveries["error"] >= 2
    assert store.webhook_counts() == (0, 0, None)
    store.check()
    store.close()


@pytest.mark.trio
async def test_events_given_up_after_retry_for_are_dead_letters(tmp_path):
    port = free_port()
    cfg, store = setup(tmp_path, port, retry_for="30s", events='events = ["final"]\n')
    app = Receiver()
    app.status = 503
    async with trio.open_nursery() as nursery:
        await listen(nursery, app, port)
        sender = sender_for(cfg, store, wall=lambda: NOW + 60)  # every event is 45 s old
        await nursery.start(sender.run)
        await wait_for(lambda: store.webhook_counts()[0] == 0)
        nursery.cancel_scope.cancel()
    backlog, dead, _ = store.webhook_counts()
    assert (backlog, dead) == (0, 12)
    assert len(app.seen) < 12  # a failing receiver: the old ones go without a try
    letters = store.dead_letters()
    assert len(letters) == 12
    assert {json.loads(letter.body)["type"] for _, _, letter in letters} == {"final"}
    assert all(letter.error for _, _, letter in letters)
    text = _metrics(cfg, store, sender)
    assert "volley_webhook_dead_letters 12.0" in text
    assert "volley_webhook_backlog 0.0" in text
    assert 'volley_webhook_deliveries_total{status="dead"} 12.0' in text
    assert 'volley_webhook_deliveries_total{status="503"}' in text
    from engine.commands import status
    from engine.control.views import StoreView

    hooks = status.snapshot(cfg, store)["webhooks"]
    assert (hooks["backlog"], hooks["dead_letters"], hooks["url"]) == (0, 12, cfg.webhooks.url)
    view = StoreView(store).read(NOW)
    assert (view["webhook_backlog"], view["webhook_dead"]) == (0, 12)  # the TUI's
    store.check()
    store.close()


@pytest.mark.trio
async def test_a_receiver_that_answers_late_is_retried_until_it_does(tmp_path):
    """Within retry_for nothing is given up, however many tries it takes."""
    port = free_port()
    cfg, store = setup(tmp_path, port, retry_for="1h", events='events = ["mo"]\n')
    app = Receiver()
    app.status = 500
    async with trio.open_nursery() as nursery:
        await listen(nursery, app, port)
        sender = sender_for(cfg, store, wall=lambda: NOW + 60)
        await nursery.start(sender.run)
        await wait_for(lambda: len(app.seen) >= 5)
        assert store.webhook_counts()[:2] == (1, 0)
        app.status = 204
        await wait_for(lambda: store.webhook_counts()[0] == 0)
        nursery.cancel_scope.cancel()
    assert len(app.delivered()) == 1
    assert len({e for _, _, _, e in app.seen}) == 1  # the same event, tried again
    store.close()


@pytest.mark.trio
async def test_one_sender_per_store(tmp_path):
    port = free_port()
    cfg, store = setup(tmp_path, port)
    app = Receiver()
    async with trio.open_nursery() as nursery:
        first = sender_for(cfg, store)
        await nursery.start(first.run)
        await wait_for(lambda: first.active)
        second = sender_for(cfg, store)  # (another process's would have its own store)
        await nursery.start(second.run)
        await trio.sleep(0.2)
        assert not second.active  # waits for the lock
        await listen(nursery, app, port)
        await wait_for(lambda: store.webhook_counts()[0] == 0)
        nursery.cancel_scope.cancel()
    assert len({b["event"] for b in app.delivered()}) == len(app.delivered())
    store.close()


@pytest.mark.trio
async def test_a_restart_resends_only_what_was_not_acknowledged(tmp_path):
    port = free_port()
    cfg, store = setup(tmp_path, port)
    total = store.webhook_counts()[0]
    app = Receiver()
    async with trio.open_nursery() as nursery:
        await listen(nursery, app, port)
        first = sender_for(cfg, store)
        await nursery.start(first.run)
        await wait_for(lambda: len(app.seen) >= 10)
        first.stop()  # what is under way finishes, what was acknowledged is committed
        with trio.fail_after(5):
            await first.stopped.wait()
        left = store.webhook_counts()[0]
        assert 0 < left < total
        await nursery.start(sender_for(cfg, store).run)
        await wait_for(lambda: store.webhook_counts()[0] == 0)
        nursery.cancel_scope.cancel()
    events = [e for _, _, _, e in app.seen]
    assert len(set(events)) == total
    assert len(events) - total <= cfg.webhooks.max_in_flight  # at most those under way
    store.close()


def _metrics(cfg, store, sender) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry(cfg, store, cfg.resolve("nosock"), sender)).decode()


def test_the_signature_is_the_hmac_of_the_body():
    body = b'{"type":"final"}'
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"


def test_a_bad_webhooks_section_names_the_key():
    for doc, expected in (
        ('[webhooks]\nurl = "ftp://x"', "webhooks.url: 'ftp://x': expected an http"),
        ('[webhooks]\nurl = "http://x"\nevents = []', "webhooks.events: empty"),
        ('[webhooks]\nevents = ["click"]', "webhooks.events"),
        ('[webhooks]\nretry_for = "soon"', "webhooks.retry_for: expected a duration"),
        ('[webhooks]\nurl = "http://x"\nretry_for = "0s"', "webhooks.retry_for: must be"),
        ("[webhooks]\nmax_in_flight = 0", "webhooks.max_in_flight: expected an integer >= 1"),
        ('[webhooks]\nurl = "http://x"\nsecret = "y"', "webhooks.secret: unknown key"),
    ):
        with pytest.raises(config.ConfigError, match=expected.replace("[", r"\[")):
            config.parse(doc.encode())


def test_serve_refuses_webhooks_without_their_secret(tmp_path, monkeypatch, capsys):
    from engine import cli

    monkeypatch.delenv("VOLLEY_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n[webhooks]\nurl = "http://127.0.0.1:9/"\n'
    )
    assert cli.main(["serve", "--config", str(path)]) == 2
    assert "webhooks.secret_env: the variable VOLLEY_WEBHOOK_SECRET is not set" in (
        capsys.readouterr().err
    )


@pytest.mark.trio
async def test_httpx_reaches_the_receiver_on_trio(tmp_path):
    """The receiver itself answers (a guard for the tests above)."""
    port = free_port()
    app = Receiver()
    async with trio.open_nursery() as nursery:
        stop = await listen(nursery, app, port)
        async with httpx.AsyncClient() as client:
            body = b'{"event": "x"}'
            r = await client.post(f"http://127.0.0.1:{port}/", content=body,
                                  headers={"X-Volley-Event": "x"})  # fmt: skip
        assert r.status_code == 200
        stop.set()
    assert app.seen[0][2] != "valid"  # no signature sent


@pytest.mark.trio
async def test_dead_letters_are_listed_and_replayed_in_order_once_the_receiver_takes_them(
    tmp_path, monkeypatch, capsys
):
    from engine.cli import main

    port = free_port()
    cfg, store = setup(tmp_path, port, retry_for="30s", events='events = ["final"]\n')
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n'
        f'[webhooks]\nurl = "http://127.0.0.1:{port}/hook"\ntimeout = "2s"\n'
    )
    monkeypatch.setenv("VOLLEY_WEBHOOK_SECRET", SECRET.decode())
    app = Receiver()
    app.status = 503
    async with trio.open_nursery() as nursery:
        await listen(nursery, app, port)
        sender = sender_for(cfg, store, wall=lambda: NOW + 60)
        await nursery.start(sender.run)
        await wait_for(lambda: store.webhook_counts()[:2] == (0, 12))
        sender.stop()
        await sender.stopped.wait()
        store.close()  # the commands open it (LMDB: once per process)
        capsys.readouterr()

        def cli(*args: str) -> int:
            return main(["webhooks", *args, "--config", str(path)])

        assert await trio.to_thread.run_sync(cli, "dead", "--json") == 0
        listed = json.loads(capsys.readouterr().out)
        assert len(listed) == 12 and {row["type"] for row in listed} == {"final"}
        assert all(row["error"].endswith("HTTP 503") for row in listed)

        tried = len(app.seen)
        assert await trio.to_thread.run_sync(cli, "replay") == 1  # still refused: stops at once
        assert "HTTP 503; stopped" in capsys.readouterr().err
        assert len(app.seen) == tried + 1
        assert await trio.to_thread.run_sync(cli, "dead", "--json") == 0
        assert len(json.loads(capsys.readouterr().out)) == 12

        app.status = 200
        assert await trio.to_thread.run_sync(cli, "replay", "--limit", "5") == 0
        assert "5 dead letter(s) delivered, 7 left" in capsys.readouterr().out
        assert await trio.to_thread.run_sync(cli, "replay") == 0
        assert "7 dead letter(s) delivered, 0 left" in capsys.readouterr().out
        nursery.cancel_scope.cancel()
    replayed = app.seen[tried + 1 :]
    assert [status for status, *_ in replayed] == [200] * 12
    assert all(signature == "valid" for _, _, signature, _ in replayed)
    ids = [tuple(map(int, event.split("."))) for *_, event in replayed]
    assert ids == sorted(ids)  # oldest first
    assert sorted(body["key"] for _, body, _, _ in replayed) == sorted(
        row["body"]["key"] for row in listed
    )
    store = open_store(cfg)
    assert store.dead_letters() == [] and store.webhook_counts()[1] == 0
    store.check()
    store.close()


def test_replay_needs_a_url_and_its_secret(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    path = tmp_path / "engine.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "db"}"\n')
    assert main(["webhooks", "replay", "--config", str(path)]) == 2
    assert "webhooks.url is not set" in capsys.readouterr().err
    path.write_text(f'[store]\npath = "{tmp_path / "db"}"\n[webhooks]\nurl = "http://x/"\n')
    monkeypatch.delenv("VOLLEY_WEBHOOK_SECRET", raising=False)
    assert main(["webhooks", "replay", "--config", str(path)]) == 2
    assert "VOLLEY_WEBHOOK_SECRET is not set" in capsys.readouterr().err
    assert main(["webhooks", "dead", "--config", str(path)]) == 0
    assert "no dead letters" in capsys.readouterr().out

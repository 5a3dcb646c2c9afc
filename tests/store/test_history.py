"""A message's history: times of its main transitions, and the rare ones noted aside."""

from engine.lookup import message_view
from engine.store import MarkSent, NewMessage, RecordReceipt, Requeue, Schedule, Store

NOW = 1_800_000_000.0


def one(store, **kw):
    store.enqueue("b", [NewMessage(to="+79160000001", text="hi", sender="S", ext_id="m1",
                                   route="op", **kw)], now=NOW)  # fmt: skip


def receipt(state, stat, final, at):
    return RecordReceipt(candidates=("s1",), state=state, final=final, stat=stat, err=0,
                         network_error=None, at=at, operator="op")  # fmt: skip


def events(store):
    msg = store.find("b", "m1")
    view = message_view(msg, None, store.message_history(msg.id))
    return [(step["event"], step["at"][11:19]) for step in view["history"]], view


def test_requeued_scheduled_claimed_sent_and_receipts_in_order(store):
    one(store)
    [m] = store.claim("op", 1, NOW + 5)
    store.apply([Requeue(id=m.id, due=0.0, reason="engine stopped", token=m.token)])
    [m] = store.claim("op", 1, NOW + 10)
    store.apply([Requeue(id=m.id, due=NOW + 60, reason="throttled (0x58)", retry=True,
                         token=m.token)])  # fmt: skip
    store.promote(NOW + 60)
    [m] = store.claim("op", 1, NOW + 61)
    store.apply([Schedule(id=m.id, due=NOW + 3600, reason="outside the send window",
                          token=m.token)])  # fmt: skip
    store.promote(NOW + 3600)
    [m] = store.claim("op", 1, NOW + 3601)
    store.apply([MarkSent(id=m.id, smsc_ids=["s1"], at=NOW + 3602, operator="op", token=m.token)])
    store.apply([receipt("sent", "ENROUTE", False, NOW + 3605)])
    store.apply([receipt("delivered", "DELIVRD", True, NOW + 3700)])
    steps, view = events(store)
    assert steps == [
        ("enqueued", "08:00:00"), ("requeued", "08:00:05"), ("scheduled", "08:00:10"),
        ("scheduled", "08:01:01"), ("claimed", "09:00:01"), ("sent", "09:00:02"),
        ("receipt", "09:00:05"), ("delivered", "09:01:40"),
    ]  # fmt: skip
    history = view["history"]
    assert history[1]["reason"] == "engine stopped" and history[1]["state"] == "queued"
    assert history[2]["reason"] == "throttled (0x58)" and history[2]["attempts"] == 1
    assert history[2]["due"].endswith("08:01:00.000+00:00")
    assert history[3]["reason"] == "outside the send window"
    assert history[4]["at"] == view["claimed"]  # the claim that sent it
    assert history[5]["smsc_ids"] == ["s1"] and history[5]["operator"] == "op"
    assert history[6]["reason"] == "receipt ENROUTE"
    assert history[7] == {"at": history[7]["at"], "event": "delivered", "receipt": "DELIVRD"}
    assert view["sent"] is not None and view["claimed"] < view["sent"]


def test_the_common_path_notes_nothing_aside(store):
    one(store)
    [m] = store.claim("op", 1, NOW + 1)
    store.apply([MarkSent(id=m.id, smsc_ids=["s1"], at=NOW + 2, operator="op", token=m.token)])
    store.apply([receipt("undelivered", "UNDELIV", True, NOW + 9)])
    assert store.message_history(m.id) == []
    steps, view = events(store)
    assert steps == [("enqueued", "08:00:00"), ("claimed", "08:00:01"), ("sent", "08:00:02"),
                     ("undelivered", "08:00:09")]  # fmt: skip
    assert view["history"][-1]["reason"] == "receipt UNDELIV err 000"


def test_unknown_after_the_receipt_timeout_and_purge_forgets_the_history(store):
    one(store)
    [m] = store.claim("op", 1, NOW + 1)
    store.apply([MarkSent(id=m.id, smsc_ids=["s1"], at=NOW + 2, operator="op", token=m.token)])
    store.apply([receipt("sent", "ACCEPTD", False, NOW + 3)])
    assert store.expire_sent(NOW + 100, NOW + 200) == 1
    steps, view = events(store)
    assert [e for e, _ in steps][-2:] == ["unknown", "unknown"]  # noted, and its final state
    assert view["history"][-1]["reason"] == "no receipt within receipt_timeout"
    assert store.purge(NOW + 10_000) == 1
    assert store.message_history(m.id) == []


def test_volley_message_prints_the_history(tmp_path, capsys):
    from engine import cli

    cfg = tmp_path / "engine.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "db"}"\n')
    s = Store.open(tmp_path / "db")
    one(s, not_before=NOW + 30)
    s.close()
    assert cli.main(["message", "b", "m1", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "history" in out and "enqueued (not_before 2027-01-15T08:00:30.000+00:00)" in out

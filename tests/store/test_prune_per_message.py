"""Pruning counts messages, not parts: a message's worst part is its one outcome."""

import pytest

from engine.store import MarkSent, NewMessage, RecordReceipt, Store

NOW = 1_800_000_000.0
NUMBER = "+79160000001"


class TwoHard:
    """Dead after two hard failures (UNDELIV err 1), as [prune] after_failures = 2."""

    ttl = 1000.0

    def dead(self, outcomes, route):
        return sum(o.stat == "UNDELIV" and o.err == 1 for o in outcomes) >= 2


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "db")
    s.prune_policy = TwoHard()
    yield s
    s.check()  # counters equal what they count, every message in one place
    s.close()


def receipt(smsc_id, state="delivered", stat="DELIVRD", err=0):
    return RecordReceipt(
        candidates=(smsc_id,), state=state, final=True, stat=stat, err=err,
        network_error=None, at=NOW,
    )  # fmt: skip


def send(store, batch, parts):
    store.enqueue(batch, [NewMessage(to=NUMBER, text="x", sender="S", route="op")], now=NOW)
    (m,) = store.claim("op", 1, NOW)
    ids = [f"{batch}-{i}" for i in range(parts)]
    store.apply([MarkSent(id=m.id, smsc_ids=ids, at=NOW)])
    return m.id, ids


def test_one_undelivered_two_part_message_is_one_failure(store):
    _, ids = send(store, "b", 2)
    store.apply([receipt(i, "undelivered", "UNDELIV", 1) for i in ids])
    assert store.list_dead() == []  # two failed parts, one failed message
    assert [(o.stat, o.err) for o in store.history(NUMBER).outcomes] == [("UNDELIV", 1)]


def test_a_two_part_message_prunes_no_sooner_than_a_one_part_one(store):
    _, ids = send(store, "a", 1)
    store.apply([receipt(ids[0], "undelivered", "UNDELIV", 1)])
    assert store.list_dead() == []
    _, ids = send(store, "b", 2)
    store.apply([receipt(i, "undelivered", "UNDELIV", 1) for i in ids])
    ((number, entry),) = store.list_dead()  # the second failed message proves it
    assert number == NUMBER and len(entry.evidence) == 2


def test_the_worst_part_decides_even_when_a_later_part_is_delivered(store):
    mid, ids = send(store, "b", 3)
    store.apply([receipt(ids[0], "undelivered", "UNDELIV", 1), receipt(ids[1])])
    assert store.history(NUMBER).outcomes == []  # nothing counted before the message is final
    store.apply([receipt(ids[2], "expired", "EXPIRED", 27)])
    assert store.get(mid).state == "undelivered"
    assert store.get(mid).err == 1  # the worst part's code, not the last receipt's
    assert [(o.stat, o.err) for o in store.history(NUMBER).outcomes] == [("UNDELIV", 1)]


def test_a_delivered_multi_part_message_resets_the_history(store):
    _, ids = send(store, "a", 1)
    store.apply([receipt(ids[0], "undelivered", "UNDELIV", 1)])
    _, ids = send(store, "b", 2)
    store.apply([receipt(i) for i in ids])
    assert store.history(NUMBER).outcomes == []

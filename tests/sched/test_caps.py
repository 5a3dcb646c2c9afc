"""Frequency caps: pure rules, then in the store's claim across batches."""

import pytest

from engine import config
from engine.sched.caps import Caps
from engine.store import MarkSent, NewMessage, Store

DAY = 86400.0
NOW = 1_800_000_000.0
CFG = b"""
[[caps.marketing]]
max = 2
period = "1d"
[[caps.marketing]]
max = 4
period = "30d"
"""


@pytest.fixture
def caps():
    return Caps(config.parse(CFG))


def test_rules(caps):
    assert caps.capped("marketing")
    assert not caps.capped("transactional")
    assert caps.next_allowed("marketing", [], NOW) == NOW
    assert caps.next_allowed("marketing", [NOW - 100], NOW) == NOW
    assert caps.next_allowed("marketing", [NOW - 100, NOW - 50], NOW) == NOW - 100 + DAY
    month = [NOW - 20 * DAY, NOW - 10 * DAY, NOW - 5 * DAY, NOW - 2 * DAY]
    assert caps.next_allowed("marketing", month, NOW) == NOW - 20 * DAY + 30 * DAY
    assert caps.next_allowed("transactional", month * 5, NOW) == NOW


def test_a_single_rule_table_works_too():
    caps = Caps(config.parse(b'[caps.promo]\nmax = 1\nperiod = "7d"\n'))
    assert caps.next_allowed("promo", [NOW - DAY], NOW) == NOW + 6 * DAY


def test_claim_enforces_caps_across_batches(tmp_path, caps):
    store = Store.open(tmp_path / "db")
    store.cap_policy = caps

    def batch(name, expires=None):
        store.enqueue(
            name,
            [
                NewMessage(
                    to="+79161234567", text="x", sender="S", ext_id="1", route="op", expires=expires
                )
            ],
            now=NOW,
        )

    for name in ("a", "b", "c"):
        batch(name)
    first = store.claim("op", 10, NOW)
    assert [m.batch for m in first] == ["a", "b"]
    store.apply([MarkSent(id=m.id, smsc_ids=[str(m.id)], at=NOW) for m in first])
    third = store.get(3)
    assert (third.state, third.reason, third.due) == ("scheduled", "frequency cap", NOW + DAY)
    batch("d", expires=NOW + 3600)
    assert store.claim("op", 10, NOW + 60) == []
    assert (store.get(4).state, store.get(4).reason) == ("skipped", "frequency cap")
    store.promote(NOW + DAY)
    assert [m.batch for m in store.claim("op", 10, NOW + DAY)] == ["c"]
    store.close()

"""The webhooks' outbox in the store: written with the change it reports, or not at all."""

from engine.store import MarkSent, NewMessage, RecordMo, RecordReceipt
from engine.store.outbox import DeadLetter

NOW = 1_800_000_000.0


def msgs(n, start=0):
    return [
        NewMessage(to=f"+7916{i:07d}", text="hi", sender="S", ext_id=str(i), route="op")
        for i in range(start, start + n)
    ]


def receipt(smsc_id, state="delivered", stat="DELIVRD", final=True, at=NOW + 5):
    return RecordReceipt(candidates=(smsc_id,), state=state, final=final, stat=stat, err=0,
                         network_error=None, at=at, operator="op")  # fmt: skip


def sent(store, n):
    store.enqueue("b", msgs(n), now=NOW)
    claimed = store.claim("op", n, NOW + 1)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=NOW + 2, operator="op",
                          token=m.token) for m in claimed])  # fmt: skip
    return claimed


def test_nothing_is_written_when_webhooks_are_off(store):
    sent(store, 3)
    store.apply([receipt("s1"), receipt("s2", "undelivered", "UNDELIV")])
    store.apply([RecordMo(source="+79160000001", destination="555", text="hi", at=NOW)])
    store.cancel_batch("b", NOW)
    assert store.outbox_events() == ([], 0)
    assert store.webhook_counts() == (0, 0, None)


def test_events_come_in_commit_order_receipts_before_finals(store):
    store.webhooks = frozenset({"receipt", "mo", "final"})
    sent(store, 3)
    assert store.outbox_events() == ([], 0)  # a mark-sent reports nothing
    store.apply([
        receipt("s1", "sent", "ENROUTE", final=False),
        receipt("s1"),
        receipt("nope"),  # unmatched: nothing to report
        RecordMo(source="+79160000002", destination="555", text="STOP", at=NOW + 6, stop=True),
    ])  # fmt: skip
    store.apply([receipt("s2", "undelivered", "UNDELIV")])
    events, last = store.outbox_events()
    assert [(e.type, e.message_id or e.mo_seq) for e in events] == [
        ("receipt", 1), ("receipt", 1), ("mo", 1), ("final", 1),
        ("receipt", 2), ("final", 2),
    ]  # fmt: skip
    assert events[0].receipt.stat == "ENROUTE" and not events[0].receipt.final
    assert events[3].message.state == "delivered" and events[3].message.batch == "b"
    assert events[2].mo.text == "STOP" and events[2].mo.stopped
    assert events[5].message.state == "undelivered"
    assert last == events[-1].seq
    assert store.webhook_counts()[:2] == (6, 0)
    assert store.outbox_events(after=last) == ([], last)


def test_only_the_events_asked_for(store):
    store.webhooks = frozenset({"final"})
    sent(store, 2)
    store.apply([receipt("s1"), RecordMo(source="+79160000002", destination="5", text="x", at=NOW)])
    store.cancel_batch("b", NOW)  # nothing queued: in flight, sent, final: nothing cancelled
    assert [e.type for e in store.outbox_events()[0]] == ["final"]


def test_every_final_state_is_reported_skips_and_cancels_included(store):
    store.webhooks = frozenset({"final"})
    store.enqueue("b", msgs(5), now=NOW)
    store.stop(["+79160000000"], "test", NOW)
    store.claim("op", 1, NOW)  # the stop-listed number skipped; the next one in flight
    store.cancel_batch("b", NOW + 1)
    events, _ = store.outbox_events()
    finals = sorted((e.message.ext_id, e.message.state) for e in events)
    assert finals[0] == ("0", "skipped")
    assert {state for _, state in finals[1:]} == {"cancelled"}
    assert len(finals) == 4  # message 1 is in flight: not final


def test_acknowledged_events_leave_and_a_partial_entry_keeps_the_rest(store):
    store.webhooks = frozenset({"receipt", "final"})
    sent(store, 2)
    store.apply([receipt("s1"), receipt("s2")])  # one entry: 2 receipts, 2 finals
    events, _ = store.outbox_events()
    seq = events[0].seq
    assert {e.seq for e in events} == {seq} and len(events) == 4
    store.acknowledge({seq: [0, 2]})
    left, _ = store.outbox_events()
    assert [(e.index, e.type) for e in left] == [(1, "receipt"), (3, "final")]
    assert store.webhook_counts()[0] == 2
    store.check()
    letter = DeadLetter(body=b"{}", at=NOW, attempts=3, error="HTTP 500", type="final")
    store.acknowledge({seq: [1, 0]}, [(seq, 3, letter)])  # 0 again: counted once
    assert store.outbox_events() == ([], 0)
    assert store.webhook_counts() == (0, 1, None)
    [(dseq, index, kept)] = store.dead_letters()
    assert (dseq, index, kept.error, kept.attempts) == (seq, 3, "HTTP 500", 3)


def test_a_big_cancel_is_split_into_entries(store, monkeypatch):
    from engine.store import outbox

    monkeypatch.setattr(outbox, "FINALS_PER_ENTRY", 3)
    store.webhooks = frozenset({"final"})
    store.enqueue("b", msgs(7), now=NOW)
    store.cancel_batch("b", NOW)
    events, _ = store.outbox_events()
    assert len(events) == 7 and len({e.seq for e in events}) == 3
    assert store.webhook_counts()[0] == 7


def test_retention_keeps_what_the_outbox_still_names(store):
    store.webhooks = frozenset({"final"})
    sent(store, 1)
    store.apply([receipt("s1", at=NOW + 5)])
    assert store.purge(older_than=NOW + 86400) == 0  # the event waits: the message stays
    [event], _ = store.outbox_events()
    assert event.message is not None
    store.acknowledge({event.seq: [event.index]})
    assert store.purge(older_than=NOW + 86400) == 1

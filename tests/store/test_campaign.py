"""Campaigns in the store: link codes with their messages, clicks, replies, memory."""

import pytest

from engine import links
from engine.store import MarkSent, NewMessage, RecordMo, RecordReceipt, StoreError
from engine.store import campaign as camp
from engine.store.errors import DuplicateId
from engine.store.records import ClickIn, Link

NOW = 1_800_000_000.0
BASE = "https://s.example/"


def tracked(i, url="https://shop.example/sale?utm_source=sms", number=None, ext=None):
    text, found = links.track(f"Sale! {url} until Friday", BASE, 7)
    return NewMessage(
        to=number or f"+7916{i:07d}", text=text, sender="S", ext_id=ext or str(i), route="op",
        links=found,
    )  # fmt: skip


def codes(store):
    return store._read(lambda txn: [k.decode() for k, _ in txn.cursor(db=store.db["links"])])


def send(store, route="op", at=NOW, deliver=True):
    """Claim everything queued, mark it sent, and (``deliver``) deliver it."""
    claimed = store.claim(route, 10_000, at)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"s{m.id}"], at=at) for m in claimed])
    if deliver:
        store.apply([delivered(f"s{m.id}", at + 5) for m in claimed])
    return claimed


def delivered(smsc_id, at):
    return RecordReceipt(
        candidates=(smsc_id,), state="delivered", final=True, stat="DELIVRD", err=0,
        network_error=None, at=at,
    )  # fmt: skip


def test_codes_are_stored_with_their_message_and_resolve(store):
    store.enqueue("b", [tracked(i) for i in range(3)], now=NOW, campaign="c", segment="s1")
    for msg in store.messages("b"):
        assert len(msg.links) == 1
        link = msg.links[0]
        assert msg.text == f"Sale! {BASE}{link.code} until Friday"
        assert link.url == "https://shop.example/sale?utm_source=sms"
        target = store.resolve_link(link.code)
        assert (target.message, target.url) == (msg.id, link.url)
    assert store.resolve_link("nope123") is None
    assert store.batch_infos("c")["b"].segment == "s1"
    assert store.batch_infos("other") == {}


def test_a_taken_code_is_drawn_again_in_the_text_with_the_same_length(store):
    first = tracked(0)
    store.enqueue("a", [first], now=NOW)
    taken = first.links[0].code
    clash = NewMessage(
        to="+79160000009",
        text=f"Another {BASE}{taken} and {BASE}{taken}.",
        sender="S",
        ext_id="x",
        route="op",
        links=[Link(code=taken, url="https://other.example/")],
    )
    store.enqueue("b", [clash], now=NOW)
    (msg,) = store.messages("b")
    new = msg.links[0].code
    assert new != taken and len(new) == len(taken)
    assert msg.text == f"Another {BASE}{new} and {BASE}{new}."
    assert store.resolve_link(taken).url == "https://shop.example/sale?utm_source=sms"
    assert store.resolve_link(new).url == "https://other.example/"


def test_a_rerun_draws_new_codes_but_adds_nothing(store):
    store.enqueue("b", [tracked(i) for i in range(5)], now=NOW)
    before = codes(store)
    result = store.enqueue("b", [tracked(i) for i in range(5)], now=NOW)
    assert (result.queued, result.duplicates) == (0, 5)
    assert codes(store) == before


def test_an_id_repeated_in_a_load_compares_texts_without_their_codes(store):
    result = store.enqueue("b", [tracked(1), tracked(1)], now=NOW)
    assert (result.queued, result.duplicates) == (1, 1)
    with pytest.raises(DuplicateId):
        store.enqueue("c", [tracked(1), tracked(1, url="https://elsewhere.example/")], now=NOW)


def test_an_aborted_load_leaves_no_code_and_no_contact(store):
    def boom():
        yield tracked(1, number="+79160000001")
        raise RuntimeError("the producer died")

    with pytest.raises(RuntimeError):
        store.enqueue("b", boom(), now=NOW, campaign="c", segment="s")
    assert codes(store) == []
    assert store.contacts("+79160000001") == []


def test_a_batch_is_the_step_of_one_campaign(store):
    store.enqueue("b", [tracked(1)], now=NOW, campaign="c", segment="s")
    with pytest.raises(StoreError, match="is step 's' of campaign 'c'"):
        store.enqueue("b", [tracked(2)], now=NOW, campaign="c", segment="other")
    store.enqueue("plain", [tracked(3)], now=NOW)
    with pytest.raises(StoreError, match="exists outside any campaign"):
        store.enqueue("plain", [tracked(4)], now=NOW, campaign="c", segment="s")
    store.enqueue("b", [tracked(5)], now=NOW)  # more for the step, without naming it again
    assert store.contacts("+79160000005")  # still remembered: the batch is a step


def test_clicks_count_per_message_and_per_batch(store):
    store.enqueue("b", [tracked(i) for i in range(3)], now=NOW, campaign="c", segment="s")
    m0, m1, _ = store.messages("b")
    c0, c1 = m0.links[0].code, m1.links[0].code
    n = store.record_clicks(
        [
            ClickIn(code=c0, at=NOW + 1, agent="Mozilla/5.0 (Android)"),
            ClickIn(code=c0, at=NOW + 2, agent="Mozilla/5.0 (Android)"),
            ClickIn(code=c1, at=NOW + 3, agent="x" * 1000),
            ClickIn(code="gone000", at=NOW + 4),
        ]
    )
    assert n == 3
    store.record_clicks([ClickIn(code=c1, at=NOW + 9)])
    stats = store.step_stats(["b"])["b"]
    assert (stats.clicks, stats.clickers) == (4, 2)
    eng, clicks = store.engagement(m0.id)
    assert (eng.clicks, eng.first_click, eng.last_click) == (2, NOW + 1, NOW + 2)
    assert [c.at for c in clicks] == [NOW + 1, NOW + 2]
    eng, clicks = store.engagement(m1.id)
    assert eng.clicks == 2 and len(clicks[0].agent) == camp.AGENT_CHARS
    assert store.step_stats() == {"b": stats}


def mo(number, text="Да, интересно", at=NOW + 60, stop=False):
    return RecordMo(source=number, destination="Shop", text=text, at=at, stop=stop)


def test_a_reply_answers_the_latest_step_its_number_got_within_the_window(store):
    number = "+79160000001"
    store.enqueue("c-s1", [tracked(1, number=number)], now=NOW, campaign="c", segment="s1")
    send(store, at=NOW)
    store.enqueue("c-s2", [tracked(2, number=number)], now=NOW + 10, campaign="c", segment="s2")
    send(store, at=NOW + 10)
    store.enqueue("c-s3", [tracked(3, number=number)], now=NOW + 20, campaign="c", segment="s3")
    store.claim("op", 10, NOW + 20)  # in flight: it has not reached them yet
    store.apply([mo(number)])
    stats = store.step_stats(["c-s1", "c-s2", "c-s3"])
    assert [(s.replies, s.repliers) for s in stats.values()] == [(0, 0), (1, 1), (0, 0)]
    (last,) = store.list_mo()
    assert last.batch == "c-s2" and last.message == next(iter(store.messages("c-s2"))).id
    store.apply([mo(number, "И ещё вопрос")])
    assert (store.step_stats(["c-s2"])["c-s2"].replies, store.step_stats()["c-s2"].repliers) == (
        2,
        1,
    )


def test_a_stop_is_an_opt_out_counted_apart_once(store):
    number = "+79160000001"
    store.enqueue("c-s1", [tracked(1, number=number)], now=NOW, campaign="c", segment="s1")
    send(store, at=NOW)
    store.apply([mo(number, "СТОП", stop=True), mo(number, "stop", stop=True)])
    stats = store.step_stats(["c-s1"])["c-s1"]
    assert (stats.optouts, stats.replies) == (1, 0)
    assert store.is_stopped(number)
    (msg,) = store.messages("c-s1")
    assert store.engagement(msg.id)[0].optout == NOW + 60


def test_keys_that_cannot_be_ours_are_passed_over_not_errors(store):
    store.enqueue("b", [tracked(1)], now=NOW, campaign="c", segment="s")
    assert store.resolve_link("x" * 600) is None and store.resolve_link("") is None
    assert store.record_clicks([ClickIn(code="x" * 600, at=NOW)]) == 0
    results = store.apply([mo("+" + "7" * 600), mo("+79160000001")])
    assert [r.ok for r in results] == [True, True]  # the group commit goes on


def test_no_reply_outside_the_window_nor_outside_a_campaign(store):
    store.reply_window = 3600
    store.enqueue("c-s1", [tracked(1)], now=NOW, campaign="c", segment="s1")
    store.enqueue("plain", [tracked(2)], now=NOW)
    send(store, at=NOW)
    store.apply([mo("+79160000001", at=NOW + 7200), mo("+79160000002", at=NOW + 60)])
    assert [m.batch for m in store.list_mo()] == ["", ""]
    assert store.step_stats() == {}


def test_memory_says_what_each_step_did_with_each_number(store):
    a, b, c = "+79160000001", "+79160000002", "+79160000003"
    store.enqueue(
        "c-s1", [tracked(1, number=a), tracked(2, number=b)], now=NOW, campaign="c", segment="s1"
    )
    store.stop([c], "test", NOW)
    store.enqueue("c-s1x", [tracked(3, number=c)], now=NOW, campaign="c", segment="s1")
    claimed = send(store, at=NOW + 100, deliver=False)
    assert len(claimed) == 2  # c was skipped: stop-listed
    store.apply([delivered(f"s{claimed[0].id}", NOW + 105)])
    store.record_clicks([ClickIn(code=claimed[1].links[0].code, at=NOW + 200)])
    store.enqueue("other-s1", [tracked(4, number=a)], now=NOW, campaign="other", segment="s1")
    memory = store.memory([a, b, c, "+79169999999"], "c")
    assert set(memory) == {a, b}
    assert memory[a]["s1"].sent and memory[a]["s1"].delivered and not memory[a]["s1"].clicked
    assert memory[a]["s1"].sent_at == NOW
    assert memory[b]["s1"].clicked and not memory[b]["s1"].delivered
    assert store.memory([a], "nobody") == {}

"""Segments that remember: memory values, repeat, suppress, and tracked links per customer."""

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine import config
from engine.segment import report, rules
from engine.segment.job import Job
from engine.store import MarkSent, RecordReceipt
from engine.store.records import ClickIn
from engine.wiring import open_store

MSK = ZoneInfo("Europe/Moscow")
DAY0 = date(2026, 9, 1)
BASE = "https://s.example/"
RULES = """
[campaign]
name = "flow"
sender = "Shop"
link = "https://shop.example/r"
[columns]
phone = "phone"
id = "id"
name = "name"
consent = "assumed"
[[segments]]
name = "done"
action = "list"
suppress = true
[segments.when]
sent_step2 = true
clicked_step1 = false
clicked_step2 = false
days_since_sent_step2 = { ge = 30 }
[[segments]]
name = "step2"
when = { sent_step1 = true, clicked_step1 = false, days_since_sent_step1 = { ge = 30 } }
template = "{name}, last chance: {link}"
template_no_name = "Last chance: {link}"
[[segments]]
name = "step1"
when = { sent_step1 = false }
template = "{name}, a gift for you: {link}"
template_no_name = "A gift for you: {link}"
"""
BASE_CSV = "id,phone,name\n" + "".join(f"c{i},+7916100000{i},Name{i}\n" for i in range(4))


@pytest.fixture
def cfg(tmp_path):
    return config.parse(
        f'[store]\npath = "{tmp_path / "db"}"\n[links]\nbase = "{BASE}"\n'
        '[[operators]]\nname = "op"\npassword = "x"\n'.encode()
    )


def at(day):
    return datetime.combine(day, datetime.min.time(), MSK).timestamp() + 12 * 3600


def run(cfg, day, *, dry_run=False):
    store = open_store(cfg)
    try:
        job = Job(cfg, rules.parse(RULES), store, as_of=day, now=at(day), dry_run=dry_run)
        return job.run(io.StringIO(BASE_CSV), "base.csv")
    finally:
        store.close()


def by_name(result):
    return {s.name: s for s in result.segments}


def deliver_all(cfg, when):
    store = open_store(cfg)
    claimed = store.claim("op", 1000, when)
    store.apply([MarkSent(id=m.id, smsc_ids=[f"x{m.id}"], at=when) for m in claimed])
    store.apply(
        [
            RecordReceipt(candidates=(f"x{m.id}",), state="delivered", final=True,
                          stat="DELIVRD", err=0, network_error=None, at=when)
            for m in claimed
        ]
    )  # fmt: skip
    store.close()
    return claimed


def test_three_steps_over_simulated_days(cfg):
    first = by_name(run(cfg, DAY0))
    assert first["step1"].enqueued.queued == 4
    sent = deliver_all(cfg, at(DAY0))
    assert all(m.links and m.text.startswith(f"Name{m.ext_id[1]}, a gift for you: {BASE}")
               for m in sent)  # fmt: skip
    assert len({m.links[0].code for m in sent}) == 4  # one link per customer
    assert {m.links[0].url for m in sent} == {
        "https://shop.example/r?utm_source=sms&utm_campaign=flow&utm_content=step1"
    }
    store = open_store(cfg)
    clicker = next(m for m in sent if m.ext_id == "c0")
    store.record_clicks([ClickIn(code=clicker.links[0].code, at=at(DAY0) + 60)])
    store.close()

    later = by_name(run(cfg, DAY0 + timedelta(days=10)))  # too soon for step 2, step 1 done
    assert later["step1"].excluded == {} and later["step1"].recipients == 0
    assert later["step2"].recipients == 0

    day30 = by_name(run(cfg, DAY0 + timedelta(days=30)))
    assert day30["step2"].enqueued.queued == 3  # the non-clickers
    deliver_all(cfg, at(DAY0 + timedelta(days=30)))
    again = by_name(run(cfg, DAY0 + timedelta(days=31)))
    assert again["step2"].excluded == {"already_sent": 3}  # never twice

    end = run(cfg, DAY0 + timedelta(days=61), dry_run=True)
    assert by_name(end)["done"].recipients == 3 and by_name(end)["done"].suppressed == 0
    end = by_name(run(cfg, DAY0 + timedelta(days=61)))
    assert end["done"].suppressed == 3
    store = open_store(cfg)
    stopped = dict(store.list_stopped())
    store.close()
    assert set(stopped) == {f"+7916100000{i}" for i in (1, 2, 3)}
    assert stopped["+79161000001"].reason == "campaign flow: end of the flow (segment done)"
    text = report.render(run(cfg, DAY0 + timedelta(days=62), dry_run=True), True)
    assert "segment step2 -> batch" in text


def test_dry_run_counts_parts_on_the_tracked_text(cfg):
    result = by_name(run(cfg, DAY0, dry_run=True))["step1"]
    assert result.parts == {"GSM": 4}  # 'Name0, a gift for you: https://s.example/XXXXXXX'
    assert all(BASE in sample for sample in result.samples)


def test_memory_values_are_checked_names():
    bad = RULES.replace("sent_step1 = false", "sent_stepX = false")
    with pytest.raises(rules.RulesError, match="unknown value 'sent_stepX'"):
        rules.parse(bad)
    with pytest.raises(rules.RulesError, match='suppress: only for action = "list"'):
        rules.parse(
            RULES.replace(
                'template = "{name}, a gift', 'suppress = true\ntemplate = "{name}, a gift'
            )
        )
    assert rules.parse(RULES).remembers
    step1 = '[[segments]]\nname = "step1"\n'
    repeating = RULES.replace(
        step1 + "when = { sent_step1 = false }", step1 + "repeat = true\nwhen = {}"
    )
    only = (
        repeating[: repeating.index('[[segments]]\nname = "done"')]
        + repeating[repeating.index('[[segments]]\nname = "step1"') :]
    )
    assert not rules.parse(only).remembers

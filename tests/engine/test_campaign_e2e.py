"""The 30/60 re-activation flow end to end, over simulated days: segment, send through
the simulator, clicks through `volley serve`'s links listener with an HTTP client and
replies by SMS, the next step only to those who did nothing, the end of the flow
stop-listed, and the campaign report."""

import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import trio

from engine import report
from engine.http.links import Links
from engine.http.server import Listener, serve_all
from engine.segment import rules
from engine.segment.job import Job
from engine.service import Engine
from engine.wiring import open_store

from .helpers import make_config, operator, simulator

pytestmark = pytest.mark.trio

MSK = ZoneInfo("Europe/Moscow")
DAY0 = date.today() - timedelta(days=90)  # the flow's days are simulated, in the past
BASE = "https://s.example/"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148 Safari/604.1"
RULES = """
[campaign]
name = "winback"
sender = "Shop"
link = "https://shop.example/back"
[columns]
phone = "phone"
id = "id"
name = "name"
consent = "consent"

[[segments]]
name = "end"
action = "list"
suppress = true
[segments.when]
sent_contest = true
clicked_contest = false
replied_contest = false
days_since_sent_contest = { ge = 30 }

[[segments]]
name = "contest"
template = "{name}, we draw 10 gift cards: {link}"
template_no_name = "We draw 10 gift cards: {link}"
[segments.when]
sent_survey = true
clicked_survey = false
replied_survey = false
days_since_sent_survey = { ge = 30 }

[[segments]]
name = "survey"
template = "{name}, how are we doing? 3 questions: {link}"
template_no_name = "How are we doing? 3 questions: {link}"
when = { sent_survey = false }
"""
CUSTOMERS = "id,phone,name,consent\n" + "".join(
    f"c{i},+7916300000{i},{'Name' + str(i) if i % 2 else ''},да\n" for i in range(6)
)
NUMBER = {f"c{i}": f"+7916300000{i}" for i in range(6)}


def noon(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), MSK).timestamp() + 12 * 3600


def segment(cfg, store, day):
    job = Job(cfg, rules.parse(RULES), store, as_of=day, now=noon(day))
    result = job.run(io.StringIO(CUSTOMERS), "customers.csv")
    return {s.name: s for s in result.segments}


async def send(cfg, store, smsc, replies=()):
    """Run the engine until drained; (number, text) replies arrive by SMS meanwhile."""
    engine = Engine(cfg, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        with trio.fail_after(20):
            while not await engine.drained():
                await trio.sleep(0.02)
            seen = len(store.list_mo())
            for number, text in replies:
                assert await smsc.send_mo(number, text) == 1
            while len(store.list_mo()) < seen + len(replies):
                await trio.sleep(0.02)
        await engine.stop()


async def click(store, codes, agent=PHONE):
    """Follow short links through the links listener, as a phone (or a robot) would."""
    links, shutdown = Links(store), trio.Event()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            lambda task_status: serve_all(
                [Listener("links", links, "127.0.0.1:0")], shutdown, task_status=task_status
            )
        )
        async with httpx.AsyncClient(base_url=bound["links"][0]) as client:
            for code in codes:
                r = await client.get(f"/{code}", headers={"User-Agent": agent})
                assert r.status_code == 302
                assert r.headers["location"].startswith("https://shop.example/back?utm_source=sms")
        shutdown.set()
    return links


def code_of(store, batch, ext_id):
    return store.find(batch, ext_id).links[0].code


async def test_three_steps_over_simulated_days(nursery, tmp_path):
    smsc = await simulator(nursery)
    cfg = make_config(
        tmp_path, operator("local", smsc.port, tps=500), extra=f'[links]\nbase = "{BASE}"\n'
    )
    store = open_store(cfg)

    # day 0: the survey to everyone, one short link each
    day0 = segment(cfg, store, DAY0)
    survey = day0["survey"].batch
    assert day0["survey"].enqueued.queued == 6
    await send(cfg, store, smsc, replies=[(NUMBER["c2"], "Всё хорошо, спасибо")])
    codes = {m.ext_id: m.links[0].code for m in store.messages(survey)}
    assert len(set(codes.values())) == 6
    assert (
        store.find(survey, "c1").text
        == f"Name1, how are we doing? 3 questions: {BASE}{codes['c1']}"
    )
    # c0 clicks twice, c1 once; a preview robot fetches c3's link (not a click)
    links = await click(store, [codes["c0"], codes["c1"], codes["c0"]])
    assert links.answered["click"] == 3
    await click(store, [codes["c3"]], agent="TelegramBot (like TwitterBot)")

    # day 10: nothing new (the survey never repeats; the contest waits for day 30)
    day10 = segment(cfg, store, DAY0 + timedelta(days=10))
    assert day10["survey"].recipients == day10["contest"].recipients == 0

    # day 30: the contest only to those who neither clicked nor replied: c3, c4, c5
    day30 = segment(cfg, store, DAY0 + timedelta(days=30))
    contest = day30["contest"].batch
    assert day30["contest"].enqueued.queued == 3
    assert sorted(m.ext_id for m in store.messages(contest)) == ["c3", "c4", "c5"]
    await send(cfg, store, smsc, replies=[(NUMBER["c5"], "СТОП")])  # an opt-out, apart
    await click(store, [code_of(store, contest, "c4")])

    # day 61: the end of the flow: c3 did nothing after two steps, stop-listed; c5 had
    # already opted out (its reason kept); c4 clicked the contest
    day61 = segment(cfg, store, DAY0 + timedelta(days=61))
    assert day61["end"].recipients == 2 and day61["end"].suppressed == 1
    stopped = dict(store.list_stopped())
    assert set(stopped) == {NUMBER["c3"], NUMBER["c5"]}
    assert stopped[NUMBER["c3"]].reason == "campaign winback: end of the flow (segment end)"
    assert stopped[NUMBER["c5"]].reason == "MO 'СТОП'"

    result = report.build(cfg, store, campaign="winback")
    steps = {s.segment: s for s in result.batches}
    s, c = steps["survey"], steps["contest"]
    assert (s.messages, s.delivered, s.clickers, s.clicks, s.replies, s.optouts) == (
        6,
        6,
        2,
        3,
        1,
        0,
    )
    assert (c.messages, c.delivered, c.clickers, c.clicks, c.replies, c.optouts) == (
        3,
        3,
        1,
        1,
        0,
        1,
    )
    assert s.ctr == pytest.approx(2 / 6) and c.ctr == pytest.approx(1 / 3)
    (total,) = result.campaigns
    assert (total.total.delivered, total.total.clickers, total.total.cost_parts) == (9, 3, 9)
    text = report.render(result)
    assert "campaign winback" in text and "survey" in text and "33.3%" in text
    mo = {m.source: m for m in store.list_mo()}
    assert mo[NUMBER["c2"]].batch == survey and mo[NUMBER["c5"]].batch == contest
    store.close()

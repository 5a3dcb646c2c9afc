"""The short-link listener served for real: hypercorn on 127.0.0.1, a real LMDB, httpx."""

import httpx
import pytest
import trio

from engine.http.links import Links, location
from engine.http.server import Listener, serve_all
from engine.wiring import open_store

from .helpers import JSONL, TOKEN, make_config
from .helpers import serve as serve_api

pytestmark = pytest.mark.trio

BASE = "https://s.example/"
PHONE = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36"


async def serve(nursery, tmp_path, every=0.002):
    cfg = make_config(tmp_path, f'[links]\nbase = "{BASE}"')
    store = open_store(cfg)
    links = Links(store, every=every)
    served = await serve_api(nursery, cfg, store=store, links=links)
    return store, links, served.url, served.links_url, served.shutdown, served.stopped


async def enqueue(api_url, n=3, text="Скидка -20%: https://shop.example/r?utm_source=sms&x=1"):
    body = "".join(f'{{"id": "m{i}", "to": "+7916{i:07d}", "text": "{text}"}}\n' for i in range(n))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        r = await client.post(f"{api_url}/v1/batches/b1", content=body.encode(), headers=JSONL)
    assert r.status_code == 200 and r.json()["queued"] == n


async def test_a_batch_posted_as_a_campaign_step(nursery, tmp_path):
    store, _links, api_url, _url, shutdown, stopped = await serve(nursery, tmp_path)
    body = b'{"id": "1", "to": "+79161234567", "text": "https://shop.example/x"}\n'
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        r = await client.post(
            f"{api_url}/v1/batches/b9?campaign=spring", content=body, headers=JSONL
        )
        assert r.status_code == 200
        r = await client.post(
            f"{api_url}/v1/batches/b9?campaign=autumn&step=s", content=body, headers=JSONL
        )
        assert r.status_code == 409 and "is step 'b9' of campaign 'spring'" in r.json()["error"]
    info = store.batch_infos("spring")["b9"]
    assert (info.campaign, info.segment) == ("spring", "b9")
    shutdown.set()
    await stopped.wait()
    store.close()


def txn_id(store):
    return store.env.info()["last_txnid"]


async def test_a_click_redirects_and_is_recorded_before_the_answer(nursery, tmp_path):
    store, _links, api_url, url, shutdown, stopped = await serve(nursery, tmp_path)
    await enqueue(api_url)
    msg = next(iter(store.messages("b1")))
    code = msg.links[0].code
    assert msg.text == f"Скидка -20%: {BASE}{code}"
    async with httpx.AsyncClient(base_url=url, headers={"User-Agent": PHONE}) as client:
        r = await client.get(f"/{code}")
        assert r.status_code == 302
        assert r.headers["location"] == "https://shop.example/r?utm_source=sms&x=1"
        assert r.headers["cache-control"] == "no-store"
        eng, clicks = store.engagement(msg.id)  # committed before the 302 was answered
        assert eng.clicks == 1 and clicks[0].agent == PHONE and clicks[0].code == code
        assert store.step_stats(["b1"])["b1"].clickers == 1
    shutdown.set()
    await stopped.wait()
    store.close()


async def test_head_and_preview_robots_are_redirected_not_counted(nursery, tmp_path):
    store, links, api_url, url, shutdown, stopped = await serve(nursery, tmp_path)
    await enqueue(api_url, n=1)
    msg = next(iter(store.messages("b1")))
    code = msg.links[0].code
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.head(f"/{code}", headers={"User-Agent": PHONE})).status_code == 302
        for robot in ("TelegramBot (like TwitterBot)", "WhatsApp/2.23.20.0", "Slackbot 1.0"):
            r = await client.get(f"/{code}", headers={"User-Agent": robot})
            assert r.status_code == 302 and r.headers["location"].startswith("https://shop")
    assert store.engagement(msg.id)[0].clicks == 0
    assert links.answered == {"click": 0, "preview": 3, "head": 1, "unknown": 0}
    shutdown.set()
    await stopped.wait()
    store.close()


async def test_an_unknown_code_is_404_and_writes_nothing(nursery, tmp_path):
    store, _links, api_url, url, shutdown, stopped = await serve(nursery, tmp_path)
    await enqueue(api_url, n=1)
    before = txn_id(store)
    async with httpx.AsyncClient(base_url=url, headers={"User-Agent": PHONE}) as client:
        for path in ("/Zz9Zz9Z", "/", "/../../etc/passwd", "/%00%01", "/" + "a" * 5000, "/ab"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/Zz9Zz9Z")).status_code == 405
        r = await client.get("/robots.txt")
        assert r.status_code == 200 and "Disallow: /" in r.text
    assert txn_id(store) == before
    assert store.step_stats() == {}
    shutdown.set()
    await stopped.wait()
    store.close()


async def test_clicks_arriving_together_share_commits(nursery, tmp_path):
    store, links, api_url, url, shutdown, stopped = await serve(nursery, tmp_path, every=0.02)
    await enqueue(api_url, n=40)
    codes = [m.links[0].code for m in store.messages("b1")]
    async with httpx.AsyncClient(base_url=url, headers={"User-Agent": PHONE}) as client:

        async def click(code):
            assert (await client.get(f"/{code}")).status_code == 302

        async with trio.open_nursery() as inner:
            for code in codes + codes[:10]:
                inner.start_soon(click, code)
    stats = store.step_stats(["b1"])["b1"]
    assert (stats.clicks, stats.clickers) == (50, 40)
    assert links.clicks.written == 50 and links.clicks.commits < 25
    shutdown.set()
    await stopped.wait()
    store.close()


async def test_a_stop_flushes_the_clicks_under_way(nursery, tmp_path):
    store, _links, api_url, url, shutdown, stopped = await serve(nursery, tmp_path, every=0.5)
    await enqueue(api_url, n=1)
    code = next(iter(store.messages("b1"))).links[0].code
    client = httpx.AsyncClient(base_url=url, headers={"User-Agent": PHONE})
    async with client, trio.open_nursery() as inner:
        inner.start_soon(client.get, f"/{code}")
        await trio.sleep(0.1)  # waiting for its group's commit
        shutdown.set()
    await stopped.wait()
    assert store.step_stats(["b1"])["b1"].clicks == 1
    store.close()


async def test_location_is_ascii_whatever_the_url():
    assert location("https://магазин.рф/акция?a=б#x") == (
        b"https://xn--80aairftm.xn--p1ai/%D0%B0%D0%BA%D1%86%D0%B8%D1%8F?a=%D0%B1#x"
    )
    assert location("https://shop.example:8443/a%20b?q=1&r=2") == (
        b"https://shop.example:8443/a%20b?q=1&r=2"
    )
    assert location("http://[::1]:8080/x") == b"http://[::1]:8080/x"


async def test_a_click_that_cannot_be_written_still_redirects(nursery, tmp_path, caplog):
    store, _links, api_url, _url, shutdown, stopped = await serve(nursery, tmp_path)
    await enqueue(api_url, n=1)
    code = next(iter(store.messages("b1"))).links[0].code
    shutdown.set()
    await stopped.wait()
    store.close()
    readonly = open_store(make_config(tmp_path, f'[links]\nbase = "{BASE}"'), readonly=True)
    links, done = Links(readonly), trio.Event()
    async with trio.open_nursery() as inner:
        bound = await inner.start(
            lambda task_status: serve_all(
                [Listener("links", links, "127.0.0.1:0")], done, task_status=task_status
            )
        )
        async with httpx.AsyncClient(base_url=bound["links"][0]) as client:
            r = await client.get(f"/{code}", headers={"User-Agent": PHONE})
        done.set()
    readonly.close()
    assert r.status_code == 302  # the customer still gets to the page
    assert (links.clicks.failed, links.clicks.written) == (1, 0)
    assert "1 click(s) could not be written" in caplog.text

"""Every endpoint against the real server over HTTP (hypercorn on 127.0.0.1, httpx, real LMDB)."""

import json

import pytest
import trio

from engine.commands import status
from engine.http import api as api_module
from engine.store import STATES

from .helpers import JSONL, TOKEN, lines, make_config, serve

pytestmark = pytest.mark.trio


async def test_every_request_needs_the_token(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    paths = ["/v1/status", "/metrics", "/v1/openapi.json", "/v1/batches/b", "/nowhere"]
    async with served.client(token=None) as anonymous, served.client("wrong") as wrong:
        for path in paths:
            for client in (anonymous, wrong):
                r = await client.get(path)
                assert r.status_code == 401, path
                assert "bearer token" in r.json()["error"]
                assert r.headers["www-authenticate"].startswith("Bearer")
        r = await anonymous.post("/v1/batches/b", content=lines(2), headers=JSONL)
        assert r.status_code == 401
        r = await anonymous.get("/v1/status", headers={"Authorization": TOKEN})  # no scheme
        assert r.status_code == 401
    assert served.store.batch_progress("b") == {}
    async with served.client() as client:
        assert (await client.get("/v1/status")).status_code == 200
    await served.stop()


async def test_without_a_token_the_loopback_api_is_open(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path), token=None)
    async with served.client(token=None) as client:
        assert (await client.get("/v1/status")).status_code == 200
    await served.stop()


async def test_enqueue_json_lines_then_again_is_idempotent(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        r = await client.post("/v1/batches/spring-1", content=lines(25), headers=JSONL)
        assert r.status_code == 200
        body = r.json()
        assert (body["batch"], body["queued"], body["already"]) == ("spring-1", 25, 0)
        r = await client.post("/v1/batches/spring-1", content=lines(30), headers=JSONL)
        assert (r.json()["queued"], r.json()["already"]) == (5, 25)
        r = await client.get("/v1/batches/spring-1")
        assert r.status_code == 200
        assert r.json()["batch"] == "spring-1"
        assert r.json()["states"] == dict.fromkeys(STATES, 0) | {"queued": 30}
        assert r.json()["total"] == 30
    assert served.store.counts().states["queued"] == 30
    await served.stop()


async def test_enqueue_csv_with_kind_and_a_batch_id_needing_escapes(nursery, tmp_path):
    cfg = make_config(tmp_path, '[windows.promo]\nhours = "00:00-24:00"')
    served = await serve(nursery, cfg)
    csv_body = 'to,text,id\n+79161234567,Привет,a\n89161234568,"Hi, there",b\n'.encode()
    batch = "crm/2026 spring?#1"
    path = "/v1/batches/crm%2F2026%20spring%3F%231"
    async with served.client() as client:
        r = await client.post(
            path + "?kind=promo",
            content=csv_body,
            headers={"Content-Type": "text/csv; charset=utf-8"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["batch"] == batch
        r = await client.get(path + "/messages/b")
        assert r.status_code == 200
        msg = r.json()
        assert (msg["to"], msg["text"], msg["kind"], msg["state"]) == (
            "+79161234568",
            "Hi, there",
            "promo",
            "queued",
        )
        r = await client.post(
            path + "?kind=nope", content=csv_body, headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 400
        assert "kind" in r.json()["error"]
    await served.stop()


async def test_bad_lines_are_all_reported_and_nothing_is_queued(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    body = (
        lines(3)
        + b'{"id": "x", "to": "not a number", "text": "hi"}\n'
        + b"{broken json\n"
        + lines(2, start=10)
        + b'{"id": "y", "to": "+79161234567", "text": ""}\n'
        + b'{"id": "z", "to": "+79161234567", "text": "hi", "colour": "red"}\n'
    )
    async with served.client() as client:
        r = await client.post("/v1/batches/bad", content=body, headers=JSONL)
        assert r.status_code == 422
        errors = r.json()["errors"]
        assert [(e["line"], e["field"]) for e in errors] == [
            (4, "to"),
            (5, "line"),
            (8, "text"),
            (9, "colour"),
        ]
        assert "not valid JSON" in errors[1]["reason"]
        assert all(e["reason"] for e in errors)
        assert (await client.get("/v1/batches/bad")).status_code == 404
        r = await client.post(
            "/v1/batches/bad", content=b"to,text\n+7916\xff\n", headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["line"] is None
        assert "UTF-8" in r.json()["errors"][0]["reason"]
        r = await client.post(
            "/v1/batches/bad", content=b"number,text\n1,2\n", headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"line": 1, "field": "header", "reason": "missing column(s) to"}
        ]
    assert sum(served.store.counts().states.values()) == 0
    assert list(served.store.messages()) == []
    await served.stop()


async def test_the_body_is_bounded(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path, '[http]\nmax_body = "4KB"'))
    big = lines(200)  # ~11 KB
    async with served.client() as client:
        r = await client.post("/v1/batches/big", content=big, headers=JSONL)  # Content-Length
        assert r.status_code == 413
        assert "max_body" in r.json()["error"]

        r = await client.post("/v1/batches/small", content=lines(20), headers=JSONL)
        assert r.status_code == 200

        async def over():
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        r = await client.post("/v1/batches/big", content=over(), headers=JSONL)
        assert r.status_code == 413
    assert served.store.batch_progress("big") == {}
    assert served.store.counts().states["queued"] == 20
    await served.stop()


async def test_a_large_body_is_streamed_in_chunks_into_the_store(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    body = lines(20_000)  # ~1.1 MB, many reads of the socket

    async def stream():
        for i in range(0, len(body), 7_919):  # chunks that split lines anywhere
            yield body[i : i + 7_919]

    async with served.client() as client:
        r = await client.post("/v1/batches/large", content=stream(), headers=JSONL)
        assert r.status_code == 200
        assert r.json()["queued"] == 20_000
    assert served.store.find("large", "m19999").to == "+79160019999"
    await served.stop()


async def test_a_client_that_goes_away_mid_body_enqueues_nothing(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    host, port = served.url.removeprefix("http://").split(":")
    body = lines(100)
    head = (
        f"POST /v1/batches/cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(head + body[: len(body) // 2])
    async with served.client() as client:  # the batch is being loaded: a second load waits
        r = await client.post("/v1/batches/cut", content=lines(3), headers=JSONL)
        assert r.status_code == 409
        await stream.aclose()
        with trio.fail_after(5):
            while "cut" in served.api._loading:
                await trio.sleep(0.01)
        assert served.store.batch_progress("cut") == {}
        assert list(served.store.messages("cut")) == []
        r = await client.post("/v1/batches/cut", content=lines(3), headers=JSONL)
        assert (r.status_code, r.json()["queued"]) == (200, 3)
    await served.stop()


async def test_wrong_content_type_method_and_path(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        r = await client.post(
            "/v1/batches/b", content=lines(1), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 415
        r = await client.post(
            "/v1/batches/b", content=lines(1), headers={"Content-Type": "text/csv; charset=latin-1"}
        )
        assert r.status_code == 415
        r = await client.delete("/v1/batches/b")
        assert r.status_code == 405
        assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}
        r = await client.get("/v2/anything")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        r = await client.post("/v1/batches/%00x", content=lines(1), headers=JSONL)
        assert r.status_code == 400
        r = await client.get("/v1/batches/%ff")
        assert r.status_code == 400
    await served.stop()


async def test_messages_are_found_by_batch_and_id(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        await client.post("/v1/batches/b", content=lines(3), headers=JSONL)
        r = await client.get("/v1/batches/b/messages/m1")
        assert r.status_code == 200
        msg = r.json()
        assert (msg["batch"], msg["id"], msg["to"], msg["state"]) == (
            "b",
            "m1",
            "+79160000001",
            "queued",
        )
        assert msg["smsc_ids"] == [] and msg["receipt"] is None
        r = await client.get("/v1/batches/b/messages/m9")
        assert r.status_code == 404
        assert r.json() == {"error": "no message 'm9' in batch 'b'"}
        r = await client.get("/v1/batches/nobatch/messages/m1")
        assert r.status_code == 404
        assert r.json() == {"error": "no batch 'nobatch'"}
        assert (await client.get("/v1/batches/nobatch")).status_code == 404
        r = await client.get("/v1/batches/b/messages", params={"format": "csv"})
        assert r.status_code == 200
        rows = r.text.splitlines()
        assert rows[0].startswith("batch,id,number,state")
        assert len(rows) == 4
        r = await client.get("/v1/batches/b/messages", params={"state": "delivered"})
        assert r.text == ""
        r = await client.get("/v1/batches/b/messages", params={"state": "nope"})
        assert r.status_code == 400
        r = await client.get("/v1/batches/b/messages")
        assert [json.loads(x)["id"] for x in r.text.splitlines()] == ["m0", "m1", "m2"]
    await served.stop()


async def test_status_is_what_volley_status_json_prints(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        await client.post("/v1/batches/b", content=lines(4), headers=JSONL)
        r = await client.get("/v1/status")
    assert r.status_code == 200
    got = r.json()
    expected = json.loads(
        json.dumps(status.live(served.cfg, status.snapshot(served.cfg, served.store)))
    )
    assert got == expected
    assert got["states"]["queued"] == 4
    assert got["batches"] == {"b": {"queued": 4}}
    assert got["engine"] == {"running": False}
    await served.stop()


async def test_cancel_cancels_what_waits_and_404s_an_unknown_batch(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        await client.post("/v1/batches/b", content=lines(3), headers=JSONL)
        r = await client.post("/v1/batches/b/cancel")
        assert r.status_code == 200
        assert r.json() == {"batch": "b", "cancelled": 3}
        r = await client.post("/v1/batches/nope/cancel")
        assert r.status_code == 404
        r = await client.post("/v1/batches/b", content=lines(3), headers=JSONL)
        assert r.json()["queued"] == 0
    assert served.store.counts().states["cancelled"] == 3
    await served.stop()


async def test_openapi_parses_and_lists_every_route(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    async with served.client() as client:
        r = await client.get("/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    described = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    assert described == {(m, p) for m, p, _ in api_module.ROUTES}
    for path, item in spec["paths"].items():
        names = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == {s[1:-1] for s in path.split("/") if s.startswith("{")}, path
        for method in ("get", "post"):
            if method in item:
                assert "401" in item[method]["responses"]
    await served.stop()

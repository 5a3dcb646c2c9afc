"""`volley serve` as a process: refusals at start, graceful stops, its logs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import trio

from bench.links import listening
from engine import cli

from .helpers import TOKEN, lines, make_config, serve


def write(tmp_path, listen: str) -> str:
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n[control]\nsocket = "{tmp_path / "v.sock"}"\n'
        f'[http]\nlisten = "{listen}"\n'
    )
    return str(path)


def test_no_token_refuses_a_public_address(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VOLLEY_API_TOKEN", raising=False)
    assert cli.main(["serve", "--config", write(tmp_path, "0.0.0.0:8080")]) == 2
    err = capsys.readouterr().err
    assert "not a loopback address and no API token" in err
    assert "VOLLEY_API_TOKEN" in err
    assert (
        cli.main(["serve", "--config", write(tmp_path, "127.0.0.1:8080"), "--listen", "[::]:1"])
        == 2
    )
    assert (
        cli.main(["serve", "--config", write(tmp_path, "127.0.0.1:8080"), "--listen", "nope"]) == 2
    )
    assert "--listen: 'nope': expected HOST:PORT" in capsys.readouterr().err


def test_a_bad_http_section_names_the_key(tmp_path):
    from engine import config

    for doc, expected in (
        ('[http]\nlisen = "x"', "http.lisen: unknown key"),
        ('[http]\nmax_body = "64 furlongs"', "http.max_body: expected a size such as"),
        ('[http]\nlisten = "localhost"', "http.listen: 'localhost': expected HOST:PORT"),
        ('[log]\nlevel = "loud"', "log.level: invalid enum value 'loud'"),
        ("[log]\nmax_mb = 0", "log.max_mb: expected an integer >= 1"),
    ):
        with pytest.raises(config.ConfigError, match=expected.replace("[", r"\[")):
            config.parse(doc.encode())
    assert config.size_bytes(config.parse(b"").http.max_body) == 64 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_process_serves_then_stops_gracefully_on_sigterm(tmp_path):
    port = free_port()
    config = write(tmp_path, f"127.0.0.1:{port}")
    env = {**os.environ, "VOLLEY_API_TOKEN": TOKEN}
    with subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", config, "--log-json"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    r = httpx.get(
                        f"http://127.0.0.1:{port}/v1/status",
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)
            assert r.status_code == 200
            # a second one on the same address cannot listen: exit 1, saying why
            second = subprocess.run(
                [sys.executable, "-m", "engine", "serve", "--config", config],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert second.returncode == 1
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0
        finally:
            proc.kill()
    logs = [json.loads(line) for line in err.splitlines()]
    request = next(x for x in logs if x["msg"] == "request")
    assert (request["method"], request["path"], request["status"]) == ("GET", "/v1/status", 200)
    assert request["level"] == "info" and request["logger"] == "volley.http"
    assert any("SIGTERM" in x["msg"] for x in logs)
    assert logs[-1]["msg"] == "stopped"


@pytest.mark.trio
async def test_a_stop_lets_a_request_under_way_finish(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))
    host, port = served.url.removeprefix("http://").split(":")
    body = lines(50)
    head = (
        f"POST /v1/batches/late HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(head + body[:100])
    await trio.sleep(0.1)
    served.shutdown.set()  # as SIGTERM does
    await trio.sleep(0.1)
    with pytest.raises(OSError, match="connect"):  # no new connections
        await trio.open_tcp_stream(host, int(port))
    await stream.send_all(body[100:])
    answer = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            answer += chunk
    await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 200")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["queued"] == 50
    await served.stop(close=False)
    assert served.store.counts().states["queued"] == 50
    served.store.close()


@pytest.mark.trio
async def test_a_request_cut_by_the_stop_enqueues_nothing(nursery, tmp_path):
    served = await serve(nursery, make_config(tmp_path))  # graceful_timeout 2s
    host, port = served.url.removeprefix("http://").split(":")
    body = lines(50)
    head = (
        f"POST /v1/batches/cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(head + body[:100])
    await trio.sleep(0.1)
    await served.stop(close=False)  # the body never completes: cut after graceful_timeout
    assert served.store.batch_progress("cut") == {}
    assert list(served.store.messages()) == []
    served.store.close()
    await stream.aclose()


@pytest.mark.slow
def test_links_answered_by_several_processes_each_taking_connections(tmp_path):
    from pathlib import Path

    from engine import config
    from engine.store import NewMessage
    from engine.store.records import Link
    from engine.wiring import open_store

    base, phone = "https://s.example/", "Mozilla/5.0 (Android 13) Mobile Safari/537.36"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "engine.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db"}"\n[control]\nsocket = "{tmp_path / "v.sock"}"\n'
        f'[http]\nlisten = "127.0.0.1:0"\n'
        f'[links]\nbase = "{base}"\nlisten = "127.0.0.1:{port}"\nprocesses = 3\n'
    )
    store = open_store(config.load(path))
    store.enqueue(
        "b",
        [NewMessage(to=f"+7916500{i:04d}", text=f"x {base}code{i:03d}", sender="S",
                    ext_id=str(i), route="op",
                    links=[Link(code=f"code{i:03d}", url="https://shop.example/")])
         for i in range(30)],
        now=time.time(),
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", str(path)],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            if len(children) == 2 and listening(port) == 3:  # each process its own socket
                break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        pids = [proc.pid, *map(int, children)]
        before = {pid: _sockets(pid) for pid in pids}
        held = []
        for i in range(30):  # a connection each, kept open: the kernel spreads them
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(conn)
            conn.sendall(
                f"GET /code{i:03d} HTTP/1.1\r\nHost: s\r\nUser-Agent: {phone}\r\n\r\n".encode()
            )
            assert conn.recv(65536).startswith(b"HTTP/1.1 302 ")
        gained = {pid: _sockets(pid) - before[pid] for pid in pids}
        assert all(n >= 1 for n in gained.values()), gained  # each process answered some
        assert sum(gained.values()) >= 30
        for conn in held:
            conn.close()
        assert store.step_stats(["b"])["b"].clicks == 30
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text()
            )
    finally:
        proc.kill()
        proc.wait()
        store.close()


def _sockets(pid: int) -> int:
    from pathlib import Path

    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if _readlink(fd).startswith("socket:"))


def _readlink(path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""

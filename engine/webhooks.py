"""Webhook delivery: the store's outbox POSTed to ``[webhooks] url``, at least once, in order
per message (`volley serve` runs one :class:`WebhookSender` per store).

Events come from the outbox (engine/store/outbox.py), written in the transaction
of the change they report. Each is one JSON object POSTed with
``X-Volley-Signature: sha256=<hex HMAC-SHA256 of the body>`` (the secret from
``[webhooks] secret_env``) and ``X-Volley-Event: <event id>`` (unique per store:
a receiver that sees an id twice has seen a retry). A 2xx answer acknowledges;
acknowledged events leave the outbox in group commits, so a crash resends at
most those under way and those answered in the last moment (at least once).

Order: events of one message (a receipt, then its final state) and the MOs of
one number go one at a time, in outbox order; different messages go
``max_in_flight`` at a time. A failure (an answer other than 2xx, a timeout, a
refused connection) is retried with exponential backoff (1 s doubling, at most
5 min) and holds the sender back as a whole for as long (a receiver that is
down gets one probe per backoff, not a flood); the first success lifts it. An
event that still fails ``retry_for`` after it happened is dead-lettered (kept
with its body and the last error: ``volley webhooks dead``, status, metrics);
while the receiver keeps failing, events already older than that are
dead-lettered without a try, so a long outage drains instead of crawling.

One sender per store: an flock on ``webhooks.lock`` in the store's folder; a
second `volley serve` on the store waits and takes over when the first goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from engine.config import WebhooksConfig, seconds
from engine.lookup import RECEIPT_STAT, error_of, iso
from engine.store import Store
from engine.store.outbox import Dead, DeadLetter, Event

log = logging.getLogger("volley.webhooks")

LOCK_NAME = "webhooks.lock"
WINDOW = 1024  # events held in memory at once (in flight, waiting for a retry, next)
ENTRIES_PER_READ = 16
FLUSH_EVERY = 0.2  # seconds between commits of what was acknowledged
POLL = 0.5  # seconds between looks at an empty outbox (the engine is another process)
LEASE_RETRY = 5.0  # seconds between tries of a lock another sender holds
_json = msgspec.json.Encoder()


def sign(secret: bytes, body: bytes) -> str:
    """The X-Volley-Signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def payload(ev: Event) -> dict[str, Any]:
    """The JSON object of one event, in the upstream's words (its batch and id)."""
    eid = f"{ev.seq}.{ev.index}"
    if ev.type == "mo":
        mo = ev.mo
        if mo is None:
            return {"type": "mo", "event": eid, "key": ev.mo_seq, "missing": True}
        reply = {"batch": mo.batch, "key": mo.message} if mo.batch else None
        return {
            "type": "mo", "event": eid, "from": mo.source, "to": mo.destination,
            "text": mo.text, "at": iso(mo.at), "stop": mo.stopped, "stop_rule": mo.stop_rule,
            "reply_to": reply,
        }  # fmt: skip
    msg = ev.message
    head: dict[str, Any] = {"type": ev.type, "event": eid}
    if msg is None:  # purged by retention before it could be sent
        return head | {"key": ev.message_id, "missing": True}
    head |= {"batch": msg.batch, "id": msg.ext_id, "key": msg.id, "to": msg.to}
    rec = ev.receipt
    if rec is not None:
        return head | {
            "state": rec.state, "stat": rec.stat, "err": rec.err,
            "network_error": rec.network_error, "final": rec.final, "at": iso(rec.at),
            "smsc_id": rec.smsc_id, "operator": rec.operator, "parts": msg.parts,
        }  # fmt: skip
    return head | {
        "state": msg.state, "stat": RECEIPT_STAT.get(msg.state), "err": msg.err,
        "network_error": msg.network_error, "at": iso(msg.updated), "error": error_of(msg),
        "reason": msg.reason, "submit_status": f"0x{msg.status:02X}" if msg.status else None,
        "smsc_ids": list(msg.smsc_ids), "parts": msg.parts, "attempts": msg.attempts,
        "operator": msg.operator,
    }  # fmt: skip


class Pending:
    """An event on its way: its body, its order key, when it happened, its tries."""

    __slots__ = ("at", "attempts", "body", "event_id", "index", "key", "next_try", "seq", "type",
                 "under_way")  # fmt: skip

    def __init__(self, ev: Event) -> None:
        self.seq, self.index, self.type = ev.seq, ev.index, ev.type
        self.event_id = f"{ev.seq}.{ev.index}"
        data = payload(ev)
        self.body = _json.encode(data)
        if ev.type == "mo":
            self.key: tuple[str, object] = ("mo", ev.mo.source if ev.mo else ev.mo_seq)
            self.at = ev.mo.at if ev.mo else 0.0
        else:
            self.key = ("m", ev.message_id)
            rec, msg = ev.receipt, ev.message
            self.at = rec.at if rec is not None else (msg.updated if msg is not None else 0.0)
        self.attempts = 0
        self.next_try = 0.0
        self.under_way = False


class WebhookSender:
    def __init__(
        self,
        store: Store,
        hooks: WebhooksConfig,
        secret: bytes,
        *,
        wall: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (1.0, 300.0),
        poll: float = POLL,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.url = hooks.url
        self.secret = secret
        self.retry_for = seconds(hooks.retry_for)
        self.timeout = seconds(hooks.timeout)
        self.max_in_flight = hooks.max_in_flight
        self.wall = wall
        self.backoff_min, self.backoff_max = backoff
        self.poll = poll
        self._transport = transport
        self.window: list[Pending] = []
        self.after = 0  # the last outbox seq read
        self.under_way = 0
        self.failures = 0  # in a row: the sender's own backoff
        self.gate = 0.0  # trio time before which nothing new is tried
        self.last_error = ""
        self.deliveries: Counter[str] = Counter()  # by HTTP status, "error", "dead"
        self.active = False  # holds the store's webhook lock
        self._done: dict[int, list[int]] = {}
        self._dead: list[Dead] = []
        self._changed = trio.Event()
        self._empty_until = 0.0  # the outbox was empty: look again after this (trio time)
        self._stopping = False
        self.stopped = trio.Event()

    # -- lifetime ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await self._run()
        finally:
            self.stopped.set()

    def stop(self) -> None:
        """Start nothing new; the requests under way finish (their own timeout), what was
        acknowledged is committed, then :meth:`run` returns."""
        self._stopping = True
        self._changed.set()

    async def _run(self) -> None:
        async with self._lease():
            if self._stopping:
                return
            self.active = True
            log.info("webhooks: delivering to %s", self.url)
            limits = httpx.Limits(
                max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
            )
            client = httpx.AsyncClient(
                timeout=self.timeout, limits=limits, transport=self._transport
            )
            try:
                async with client, trio.open_nursery() as nursery:
                    nursery.start_soon(self._flusher)
                    await self._deliver(nursery, client)
            finally:
                self.active = False
                with trio.CancelScope(shield=True):
                    await self._flush()

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[None]:
        """The store's one sender: wait for the lock another `volley serve` may hold."""
        path = Path(self.store.path) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            told = False
            while not self._stopping:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not told:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                        log.info("webhooks: another sender (pid %s) delivers; waiting", holder)
                        told = True
                    with trio.move_on_after(LEASE_RETRY):
                        await self._changed.wait()
            if not self._stopping:  # (stopped while waiting: the lock is not ours)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    # -- the loop -------------------------------------------------------------------

    async def _deliver(self, nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
        while not self._stopping or self.under_way:
            if not self._stopping:
                await self._refill()
            now = trio.current_time()
            if not self._stopping:
                self._start_due(nursery, client, now)
            wake = self._next_wake(now)
            with trio.move_on_after(max(0.0, wake - now)):
                await self._changed.wait()
            self._changed = trio.Event()
        nursery.cancel_scope.cancel()  # the flusher: the last flush is run()'s

    async def _refill(self) -> None:
        if len(self.window) >= WINDOW or trio.current_time() < self._empty_until:
            return
        events, last = await trio.to_thread.run_sync(
            self.store.outbox_events, self.after, ENTRIES_PER_READ
        )
        if last == self.after:
            self._empty_until = trio.current_time() + self.poll
            return
        self.after = last
        self.window += [Pending(ev) for ev in events]

    def _start_due(self, nursery: trio.Nursery, client: httpx.AsyncClient, now: float) -> None:
        """Start what may go now: the first unfinished event of each key, within the limit."""
        seen: set[tuple[str, object]] = set()
        wall = self.wall()
        for ev in list(self.window):
            if ev.key in seen:
                continue
            seen.add(ev.key)
            if ev.under_way or now < ev.next_try:
                continue
            if self.failures and wall - ev.at >= self.retry_for:
                self._give_up(ev, f"receiver failing: {self.last_error}", wall)
                continue
            if now < self.gate or self.under_way >= self.max_in_flight:
                continue
            ev.under_way = True
            self.under_way += 1
            nursery.start_soon(self._post, client, ev)

    def _next_wake(self, now: float) -> float:
        wake = now + self.poll if len(self.window) < WINDOW else now + 60.0
        for ev in self.window:
            if not ev.under_way:
                wake = min(wake, max(ev.next_try, self.gate))
        return wake

    async def _post(self, client: httpx.AsyncClient, ev: Pending) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Volley-Signature": sign(self.secret, ev.body),
            "X-Volley-Event": ev.event_id,
            "X-Volley-Event-Type": ev.type,
        }
        try:
            response = await client.post(self.url, content=ev.body, headers=headers)
            status, error = str(response.status_code), f"HTTP {response.status_code}"
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            status, error, ok = "error", f"{type(exc).__name__}: {exc}"[:200], False
        finally:
            ev.under_way = False
            self.under_way -= 1
        self.deliveries[status] += 1
        if ok:
            self._delivered(ev)
        else:
            self._failed(ev, error)
        self._changed.set()

    def _delivered(self, ev: Pending) -> None:
        if self.failures:
            log.info("webhooks: %s answers again", self.url)
        self.failures, self.gate = 0, 0.0
        self.window.remove(ev)
        self._done.setdefault(ev.seq, []).append(ev.index)

    def _failed(self, ev: Pending, error: str) -> None:
        now, wall = trio.current_time(), self.wall()
        ev.attempts += 1
        self.failures += 1
        if self.failures == 1 or error != self.last_error:
            log.warning("webhooks: %s: %s (event %s, try %d)", self.url, error, ev.event_id,
                        ev.attempts)  # fmt: skip
        self.last_error = error
        self.gate = now + self._backoff(self.failures)
        if wall - ev.at >= self.retry_for:
            self._give_up(ev, error, wall)
        else:
            ev.next_try = now + self._backoff(ev.attempts)

    def _give_up(self, ev: Pending, error: str, wall: float) -> None:
        log.error("webhooks: event %s (%s) dead-lettered after %d tries: %s", ev.event_id,
                  ev.type, ev.attempts, error)  # fmt: skip
        self.window.remove(ev)
        self.deliveries["dead"] += 1
        letter = DeadLetter(body=ev.body, at=wall, attempts=ev.attempts, error=error, type=ev.type)
        self._dead.append((ev.seq, ev.index, letter))

    def _backoff(self, n: int) -> float:
        return float(min(self.backoff_max, self.backoff_min * 2 ** min(n - 1, 40)))

    # -- acknowledging ------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            await trio.sleep(FLUSH_EVERY)
            await self._flush()

    async def _flush(self) -> None:
        """Commit what was delivered or dead-lettered since the last flush (once written,
        it is never sent again)."""
        if not self._done and not self._dead:
            return
        done, dead = self._done, self._dead
        self._done, self._dead = {}, []
        try:
            await trio.to_thread.run_sync(self.store.acknowledge, done, dead)
        except Exception:
            log.exception("webhooks: could not record deliveries (they may be sent again)")
            for seq, indexes in done.items():
                self._done.setdefault(seq, []).extend(indexes)
            self._dead = dead + self._dead

    def stats(self) -> dict[str, Any]:
        """What this sender is doing now (for status and metrics)."""
        return {
            "active": self.active,
            "url": self.url,
            "under_way": self.under_way,
            "failing": self.failures > 0,
            "last_error": self.last_error,
            "deliveries": dict(self.deliveries),
        }

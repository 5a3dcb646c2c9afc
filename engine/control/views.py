"""Snapshots for the control channel: from a running engine, or from the store alone.

``StoreView`` reads what the store knows in read-only transactions (never
blocking the writer), caching the costlier parts (the latest prunes, scheduled
counts by hour) between the frequent snapshots a subscription asks for.
``store_snapshot`` is what `volley status` and the TUI show when no engine runs.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.config import Config
from engine.control import protocol as p
from engine.sched.schedule import windows_now
from engine.store import STATES, Store, StoreError

RECEIPT_OUTCOMES = ("delivered", "undelivered", "expired", "rejected", "deleted", "unknown")
PRUNES_SHOWN = 10
HOURS_TTL = 10.0


class StoreView:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._dead = -1
        self._prunes: list[str] = []
        self._hours: dict[str, int] = {}
        self._hours_at = -math.inf

    def read(self, now: float) -> dict[str, Any]:
        store = self.store
        counts = store.counts()
        dead, stopped = store.number_counts()
        backlog, dead_letters, _ = store.webhook_counts()
        if dead != self._dead:
            self._dead, self._prunes = dead, _latest_prunes(store)
        if now - self._hours_at >= HOURS_TTL:
            self._hours_at = now
            self._hours = {
                datetime.fromtimestamp(h, UTC).isoformat(timespec="minutes"): n
                for h, n in sorted(store.scheduled_by_hour().items())
            }
        return {
            "states": counts.states,
            "kinds": counts.kinds,
            "batches": counts.batches,
            "paused_batches": store.paused_batches(),
            "receipts": {k: counts.states.get(k, 0) for k in RECEIPT_OUTCOMES},
            "unmatched": counts.unmatched_receipts,
            "default_zone": counts.zone_default,
            "unroutable": counts.unroutable,
            "dead": dead,
            "stopped": stopped,
            "prunes": self._prunes,
            "webhook_backlog": backlog,
            "webhook_dead": dead_letters,
            "scheduled_by_hour": self._hours,
            "engagement": {
                batch: {
                    "clicks": st.clicks,
                    "clickers": st.clickers,
                    "replies": st.replies,
                    "optouts": st.optouts,
                }
                for batch, st in store.step_stats().items()
                if batch in counts.batches
            },
        }


def _latest_prunes(store: Store) -> list[str]:
    latest = sorted(store.list_dead(), key=lambda item: item[1].at, reverse=True)
    out = []
    for number, entry in latest[:PRUNES_SHOWN]:
        last = entry.evidence[-1] if entry.evidence else None
        why = f" ({last.stat} err {last.err})" if last else ""
        out.append(f"{datetime.fromtimestamp(entry.at, UTC):%Y-%m-%d %H:%M} {number}{why}")
    return out


def window_views(cfg: Config, now: float) -> list[p.WindowView]:
    return [
        p.WindowView(kind=w["kind"], open=w["open"], next_open=w["next_open"] or "", zone=w["zone"])
        for w in windows_now(cfg, now)
    ]


def store_snapshot(cfg: Config, now: float | None = None) -> p.Snapshot:
    """The store's side of a snapshot, with ``live`` false: no engine is running."""
    now = time.time() if now is None else now
    windows = window_views(cfg, now)
    try:
        store = Store.open(cfg.resolve(cfg.store.path), readonly=True)
    except StoreError as exc:  # none yet, or unreadable: zero counts, and why in the events
        return p.Snapshot(
            at=now,
            live=False,
            states=dict.fromkeys(STATES, 0),
            windows=windows,
            events=[str(exc)],
        )
    try:
        fields = StoreView(store).read(now)
    except StoreError as exc:
        return p.Snapshot(at=now, live=False, windows=windows, events=[str(exc)])
    finally:
        store.close()
    return p.Snapshot(at=now, live=False, windows=windows, **fields)


def merge_snapshots(snaps: list[p.Snapshot], *, pid: int) -> p.Snapshot:
    """One engine's view of several engine processes on one store.

    What the store knows comes from the newest snapshot; operators are summed
    by name (rates, limits, throttles; up if any process has it up, paused if
    every one has it paused), binds listed together, meters and counters summed,
    events interleaved by time.
    """
    newest = max(snaps, key=lambda s: s.at)
    operators: dict[str, p.OperatorView] = {}
    for snap in snaps:
        for op in snap.operators:
            seen = operators.get(op.name)
            operators[op.name] = op if seen is None else _sum_operator(seen, op)
    errors: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    rates: Counter[str] = Counter()
    for snap in snaps:
        errors.update(dict(snap.top_errors))
        totals.update(snap.totals)
        rates.update(snap.rates)
    return msgspec.structs.replace(
        newest,
        pid=pid,
        operators=list(operators.values()),
        binds=sorted((b for s in snaps for b in s.binds), key=lambda b: (b.operator, b.name)),
        top_errors=errors.most_common(10),
        rates=dict(rates),
        totals=dict(totals),
        history=_sum_aligned([s.history for s in snaps]),
        events=sorted(e for s in snaps for e in s.events)[-50:],
    )


def _sum_operator(a: p.OperatorView, b: p.OperatorView) -> p.OperatorView:
    return p.OperatorView(
        name=a.name,
        up=a.up or b.up,
        paused=a.paused and b.paused,
        tps_now=a.tps_now + b.tps_now,
        tps_limit=a.tps_limit + b.tps_limit,
        tps_configured=a.tps_configured + b.tps_configured,
        throttles=a.throttles + b.throttles,
        submits=dict(Counter(a.submits) + Counter(b.submits)),
        receipts=dict(Counter(a.receipts) + Counter(b.receipts)),
        submit_latency=_sum_histograms(a.submit_latency, b.submit_latency),
        receipt_latency=_sum_histograms(a.receipt_latency, b.receipt_latency),
    )


def _sum_histograms(a: p.Histogram | None, b: p.Histogram | None) -> p.Histogram | None:
    """Two processes' histograms of the same buckets as one (one alone if the other has none)."""
    if a is None or b is None or a.bounds != b.bounds:
        return a or b
    counts = [x + y for x, y in zip(a.counts, b.counts, strict=True)]
    return p.Histogram(bounds=a.bounds, counts=counts, total=a.total + b.total)


def _sum_aligned(series: list[list[float]]) -> list[float]:
    """Per-second series ending now, of different lengths: summed from their ends."""
    longest = max((len(s) for s in series), default=0)
    out = [0.0] * longest
    for s in series:
        for i, v in enumerate(s, longest - len(s)):
            out[i] += v
    return out

"""GET /metrics: a prometheus_client Collector over the store and the running engine.

What the store knows is always there (messages by state, the age of each
route's queue head, numbers pruned and stop-listed, send windows). What only
a running engine knows (submits by status, receipts by stat, binds, TPS,
windows in use, throttles, latency histograms) comes from one snapshot over
the control socket per scrape; with no engine running those series are
absent, and ``volley_engine_up`` is 0. Counters restart from zero when the
engine does (Prometheus' ``rate()`` handles the reset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from engine.config import Config
from engine.control import protocol as p
from engine.control.views import window_views
from engine.store import Store

if TYPE_CHECKING:
    from engine.webhooks import WebhookSender

log = logging.getLogger("volley.http")
SNAPSHOT_TIMEOUT = 3.0


class VolleyCollector:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        control: Path,
        clock: Callable[[], float] = time.time,
        sender: WebhookSender | None = None,
    ) -> None:
        self.sender = sender
        self.cfg = cfg
        self.store = store
        self.control = control
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        yield from self._store_families(now)
        snap = self._snapshot()
        yield GaugeMetricFamily(
            "volley_engine_up",
            "1 if an engine answers on the control socket (the live series below need one)",
            value=1 if snap is not None else 0,
        )
        if snap is not None:
            yield from live_families(snap)
        yield from self._webhook_families()

    def _webhook_families(self) -> Iterator[Metric]:
        backlog, dead, _ = self.store.webhook_counts()
        yield GaugeMetricFamily(
            "volley_webhook_backlog", "Webhook events waiting in the outbox", value=backlog
        )
        yield GaugeMetricFamily(
            "volley_webhook_dead_letters",
            "Webhook events given up after [webhooks] retry_for (kept in the store)",
            value=dead,
        )
        if self.sender is None:
            return
        deliveries = CounterMetricFamily(
            "volley_webhook_deliveries",
            'Webhook POSTs by HTTP status ("error": no answer; "dead": given up) since start',
            labels=["status"],
        )
        for status, n in sorted(self.sender.deliveries.items()):
            deliveries.add_metric([status], n)
        yield deliveries

    def _snapshot(self) -> p.Snapshot | None:
        from engine.control.client import Client, ControlUnavailable

        try:
            with Client.connect(self.control, timeout=SNAPSHOT_TIMEOUT) as client:
                return client.snapshot(timeout=SNAPSHOT_TIMEOUT)
        except (ControlUnavailable, OSError) as exc:  # TimeoutError is an OSError
            log.debug("metrics: no engine snapshot (%s)", exc)
            return None

    def _store_families(self, now: float) -> Iterator[Metric]:
        counts = self.store.counts()
        messages = GaugeMetricFamily(
            "volley_messages", "Messages by state (messages, not parts)", labels=["state"]
        )
        for state, n in counts.states.items():
            messages.add_metric([state], n)
        yield messages
        age = GaugeMetricFamily(
            "volley_queue_age_seconds",
            "Per route: how long the next message to be claimed has been due (0: none waits)",
            labels=["route"],
        )
        heads = dict.fromkeys((op.name for op in self.cfg.operators), now)  # none waiting: 0
        heads.update(self.store.queue_heads())
        for route, since in sorted(heads.items()):
            age.add_metric([route], max(0.0, now - since))
        yield age
        yield GaugeMetricFamily(
            "volley_awaiting_receipts",
            "Sent messages waiting for their final receipt",
            value=self.store.awaiting_receipts(),
        )
        yield CounterMetricFamily(
            "volley_unmatched_receipts",
            "Receipts that matched no sent message",
            value=counts.unmatched_receipts,
        )
        dead, stopped = self.store.number_counts()
        numbers = GaugeMetricFamily("volley_numbers", "Numbers by list", labels=["list"])
        numbers.add_metric(["dead"], dead)
        numbers.add_metric(["stopped"], stopped)
        yield numbers
        windows = GaugeMetricFamily(
            "volley_window_open", "1 while a [windows.KIND] is open", labels=["kind"]
        )
        for w in window_views(self.cfg, now):
            windows.add_metric([w.kind], 1 if w.open else 0)
        yield windows


def live_families(snap: p.Snapshot) -> Iterator[Metric]:
    """The running engine's series, from its snapshot (merged over its processes)."""
    yield from _operator_families(snap.operators)
    yield from _bind_families(snap.binds)
    totals = CounterMetricFamily(
        "volley_engine_events",
        "Engine events since it started (claimed, submitted, failed, requeued, lost, ...)",
        labels=["event"],
    )
    for event, n in sorted(snap.totals.items()):
        totals.add_metric([event], n)
    yield totals


def _operator_families(operators: list[p.OperatorView]) -> Iterator[Metric]:
    submits = CounterMetricFamily(
        "volley_submits",
        'submit_sm responses (parts) by command_status ("0x00" accepted; "none": no response)',
        labels=["operator", "status"],
    )
    receipts = CounterMetricFamily(
        "volley_receipts", "Delivery receipts by stat", labels=["operator", "stat"]
    )
    gauges = {
        "up": GaugeMetricFamily(
            "volley_operator_up",
            "1 if a bind of the operator is bound and not paused",
            labels=["operator"],
        ),
        "paused": GaugeMetricFamily(
            "volley_operator_paused", "1 if the operator is paused", labels=["operator"]
        ),
        "tps_limit": GaugeMetricFamily(
            "volley_operator_tps_limit",
            "submit_sm per second allowed now (after throttling and live changes)",
            labels=["operator"],
        ),
        "tps_configured": GaugeMetricFamily(
            "volley_operator_tps_configured",
            "submit_sm per second set in engine.toml or by `volley tps`",
            labels=["operator"],
        ),
        "tps_now": GaugeMetricFamily(
            "volley_operator_tps", "submit_sm accepted in the last second", labels=["operator"]
        ),
    }
    throttles = CounterMetricFamily(
        "volley_operator_throttles",
        "Times the operator's pace was cut after a throttling response",
        labels=["operator"],
    )
    submit_latency = HistogramMetricFamily(
        "volley_submit_latency_seconds",
        "From the submit_sm's send to its response",
        labels=["operator"],
    )
    receipt_latency = HistogramMetricFamily(
        "volley_receipt_latency_seconds",
        "From the submit_sm_resp to the final receipt (messages this engine sent lately)",
        labels=["operator"],
    )
    for op in operators:
        for status, n in sorted(op.submits.items()):
            submits.add_metric([op.name, status], n)
        for stat, n in sorted(op.receipts.items()):
            receipts.add_metric([op.name, stat], n)
        for key, family in gauges.items():
            family.add_metric([op.name], float(getattr(op, key)))
        throttles.add_metric([op.name], op.throttles)
        for family, histogram in (
            (submit_latency, op.submit_latency),
            (receipt_latency, op.receipt_latency),
        ):
            if histogram is not None:
                family.add_metric([op.name], *_buckets(histogram))
    yield submits
    yield receipts
    yield from gauges.values()
    yield throttles
    yield submit_latency
    yield receipt_latency


def _buckets(h: p.Histogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative (le, count) pairs ending with +Inf, and the sum."""
    out, total = [], 0
    for bound, n in zip([*h.bounds, float("inf")], h.counts, strict=True):
        total += n
        out.append((floatToGoString(bound), total))
    return out, h.total


def _bind_families(binds: list[p.BindView]) -> Iterator[Metric]:
    labels = ["bind", "operator"]
    up = GaugeMetricFamily("volley_bind_up", "1 if the bind is bound", labels=labels)
    paused = GaugeMetricFamily("volley_bind_paused", "1 if the bind is paused", labels=labels)
    used = GaugeMetricFamily(
        "volley_bind_window_used", "submit_sm awaiting their response", labels=labels
    )
    size = GaugeMetricFamily(
        "volley_bind_window_size", "submit_sm the bind may have outstanding", labels=labels
    )
    counters = {
        "submitted": CounterMetricFamily(
            "volley_bind_submitted", "submit_sm accepted by the SMSC", labels=labels
        ),
        "errors": CounterMetricFamily(
            "volley_bind_errors", "Error responses and protocol errors", labels=labels
        ),
        "throttled": CounterMetricFamily(
            "volley_bind_throttled", "Throttling responses (0x58, 0x14)", labels=labels
        ),
        "reconnects": CounterMetricFamily(
            "volley_bind_reconnects", "Connections lost and made again", labels=labels
        ),
    }
    for b in binds:
        key = [b.name, b.operator]
        up.add_metric(key, 1 if b.state == "bound" else 0)
        paused.add_metric(key, 1 if b.paused else 0)
        if b.window:  # a receiver bind sends nothing
            used.add_metric(key, b.window_used)
            size.add_metric(key, b.window)
        for field, family in counters.items():
            family.add_metric(key, getattr(b, field))
    yield from (up, paused, used, size, *counters.values())


def registry(
    cfg: Config, store: Store, control: Path, sender: WebhookSender | None = None
) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(VolleyCollector(cfg, store, control, sender=sender))
    return reg

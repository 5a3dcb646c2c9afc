"""The running engine's side of a snapshot: operators, binds, rates, totals, events."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import trio

from engine.control import protocol as cp
from engine.control.views import window_views

if TYPE_CHECKING:
    from engine.net.bind import Bind
    from engine.operators import Operator
    from engine.service import Engine


async def snapshot(engine: Engine) -> cp.Snapshot:
    now = engine.now()
    fields = await trio.to_thread.run_sync(engine.store_view.read, now)
    operators = engine.operators.values()
    rates = engine.rates
    return cp.Snapshot(
        at=now,
        pid=os.getpid(),
        operators=[operator_view(op, rates) for op in operators],
        binds=[bind_view(op, b, rates) for op in operators for b in op.binds],
        top_errors=engine.errors.most_common(10),
        windows=window_views(engine.cfg, now),
        rates={k: v for k, v in rates.items() if k in ("submit", "receipts")},
        history=list(engine.history),
        totals=dict(engine.totals),
        events=list(engine.events)[-50:],
        **fields,
    )


def operator_view(op: Operator, rates: dict[str, float]) -> cp.OperatorView:
    return cp.OperatorView(
        name=op.name,
        up=op.up,
        paused=op.paused,
        tps_now=sum(rates.get(b.name, 0.0) for b in op.binds),
        tps_limit=op.pacer.rate,
        tps_configured=op.pacer.target,
        throttles=op.pacer.throttles,
        submits=dict(op.meters.submits),
        receipts=dict(op.meters.receipts),
        submit_latency=op.meters.submit_latency.view(),
        receipt_latency=op.meters.receipt_latency.view(),
    )


def bind_view(op: Operator, bind: Bind, rates: dict[str, float]) -> cp.BindView:
    s = bind.stats
    return cp.BindView(
        name=bind.name,
        operator=op.name,
        state=s.state,
        tps_now=rates.get(bind.name, 0.0),
        tps_limit=op.pacer.rate,
        window_used=s.window_used,
        window=op.cfg.window if bind.mode != "receiver" else 0,
        submitted=s.submitted,
        errors=s.errors,
        throttled=s.throttled,
        last_error=s.last_error,
        reconnects=s.reconnects,
        paused=bind.paused or op.paused,
    )

"""The engine: wires the store, the dispatchers, the binds, the writer and the control socket.

Lifetimes: the Engine owns one nursery; each Operator owns the nursery of its
binds, each bind one connection at a time. Data flows one way: a Dispatcher
(engine/sched/dispatcher.py) claims due messages in batches and puts their
jobs on the operator's queue; binds take jobs in batches as their windows
allow and report outcomes, a list per read; the outcome loop turns each into a
store operation (engine/outcomes.py) for the Writer (engine/writer.py), which
commits them in groups. Inbound PDUs (engine/inbound.py) are answered only after
their effect is committed; a receipt that comes before its submit_sm_resp is
committed is held (engine/held.py), so a crash in between makes the SMSC send it
again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

from engine import outcomes
from engine import store as st
from engine.config import Config, OperatorConfig, seconds
from engine.control import live
from engine.control import protocol as cp
from engine.control.actions import Actions
from engine.control.server import ControlServer
from engine.control.views import StoreView
from engine.inbound import InboundHandler
from engine.logs import message_debug
from engine.net.bind import Bind
from engine.net.jobs import (
    Inbound,
    Job,
    Lost,
    Outcome,
    Report,
    StateChanged,
    Submitted,
    Unsent,
    Vetoed,
)
from engine.operators import Operator
from engine.optout import OptOutRules
from engine.rerouting import Rerouter
from engine.sched.dispatcher import Dispatcher
from engine.sched.schedule import Scheduler
from engine.smpp import constants as c
from engine.smpp import receipts
from engine.writer import Writer

log = logging.getLogger("volley.engine")

HISTORY_SECONDS = 300
DRAIN_LOOK = 0.1  # seconds between looks for --until-drained when this engine is quiet
LOG_EVERY = 10  # seconds between throughput log lines
WINDOW_CLOSED = outcomes.WINDOW_CLOSED


class Engine:
    def __init__(
        self,
        cfg: Config,
        store: st.Store,
        *,
        wall: Callable[[], float] = time.time,
        control: Path | None = None,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        self.cfg = cfg
        self.control = control  # serve the control socket here
        self.part = part  # (this process's index, engine processes): its share of the binds
        self.store = store
        self.config_path = ""  # the file a reload reads again (engine/reload.py)
        store.id_forms = receipts.normalise_id  # a receipt's id in the other form, on a miss
        self.outcomes_in, self.outcomes = trio.open_memory_channel[Report](8192)
        self.operators: dict[str, Operator] = {}
        self.binds: dict[str, tuple[Operator, Bind]] = {}
        for op_cfg in cfg.operators:
            self._operator(op_cfg)
        self.scheduler = Scheduler(cfg)
        self._wall = wall
        self._wall_offset = 0.0
        self._db_limiter = trio.CapacityLimiter(1)
        self.writer = Writer(store, self.db, self._committed)
        optout = OptOutRules(cfg.stop.keywords, cfg.stop.phrases, cfg.stop.polite)
        self.inbound = InboundHandler(self, optout)
        self.stopped_now: set[str] = set()  # STOPs received in this run, before commit
        self._stop_exempt = {"transactional"} if cfg.stop.transactional_exempt else set()
        self._stopping = False
        self._nursery: trio.Nursery | None = None
        self._activity = trio.Event()  # something happened that may leave the engine drained
        self._outcomes_read = trio.Event()
        self.stopped = trio.Event()
        self.receipt_timeout = seconds(cfg.defaults.receipt_timeout)
        self.retention = seconds(cfg.store.retention)
        self.events: deque[str] = deque(maxlen=200)
        self.totals = dict.fromkeys(
            ("claimed", "submitted", "failed", "requeued", "lost", "receipts", "unmatched", "mo"), 0
        )
        self.errors: Counter[str] = Counter()  # submit statuses and receipt errors
        self.history: deque[float] = deque(maxlen=HISTORY_SECONDS)  # submits/s, per second
        self.rates: dict[str, float] = {}  # per bind and "submit", "receipts": per second
        self.store_view = StoreView(store)
        self.rerouter = Rerouter(cfg, store, self.db, first=part[0] == 0)
        self.stuck = ""  # why --until-drained ended with messages no bind can send
        self.actions = Actions(self)
        self.dispatchers = [self._dispatcher(op) for op in self.operators.values()]

    def _operator(self, op_cfg: OperatorConfig) -> Operator:
        operator = Operator(
            op_cfg, self.cfg, part=self.part, outcomes=self.outcomes_in, veto=self.veto
        )
        self.operators[operator.name] = operator
        self.binds.update((b.name, (operator, b)) for b in operator.binds)
        return operator

    def _dispatcher(self, operator: Operator) -> Dispatcher:
        return Dispatcher(
            operator,
            self.operators,
            claim=partial(self.db, self.store.claim),
            submit=self.writer.submit,
            scheduler=self.scheduler,
            rerouter=self.rerouter,
            now=self.now,
            totals=self.totals,
        )

    def new_operator(self, op_cfg: OperatorConfig) -> Operator:
        """An operator added while running (engine/reload.py): its binds and dispatcher start."""
        operator = self._operator(op_cfg)
        dispatcher = self._dispatcher(operator)
        self.dispatchers.append(dispatcher)
        self.start_soon(operator.run)
        self.start_soon(dispatcher.run)
        return operator

    def apply_stop_rules(self, rules: OptOutRules, exempt: set[str]) -> None:
        self.inbound.optout, self._stop_exempt = rules, exempt

    async def reload(self) -> str:
        """Read the config file again and apply it (engine/reload.py); ReloadError if refused."""
        from engine.reload import reload

        return await reload(self, self.config_path)

    @property
    def stopping(self) -> bool:
        """A stop was asked for: no new claims; draining."""
        return self._stopping

    def now(self) -> float:
        """Wall-clock seconds, driven by trio's clock (so MockClock moves it too)."""
        return self._wall_offset + trio.current_time()

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A store call on a worker thread; one at a time (one LMDB writer)."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self._db_limiter)

    def start_soon(self, fn: Callable[[], Any]) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn)

    # -- lifetime -----------------------------------------------------------

    async def run(
        self,
        *,
        until_drained: bool = False,
        task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._wall_offset = self._wall() - trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.control is not None:
                    await nursery.start(ControlServer(self.control, self).serve)
                nursery.start_soon(self.writer.run)
                nursery.start_soon(self._meter)
                nursery.start_soon(self._outcome_loop)
                nursery.start_soon(self._housekeeping)
                await self.rerouter.start()
                for op in self.operators.values():
                    nursery.start_soon(op.run)
                for dispatcher in self.dispatchers:
                    nursery.start_soon(dispatcher.run)
                task_status.started(self)
                self.event(f"engine started: {len(self.operators)} operator(s)")
                if until_drained:
                    nursery.start_soon(self._stop_when_drained)
        finally:
            self.stopped.set()

    async def _stop_when_drained(self) -> None:
        while True:
            # After this engine's commits; and at least every DRAIN_LOOK seconds, for what
            # other processes do to the store (engine processes, enqueue, cancel) tells none.
            with trio.move_on_after(DRAIN_LOOK):
                await self._activity.wait()
            self._activity = trio.Event()
            await self.writer.idle()
            if await self.drained():
                break
        if self.stuck:
            log.error("%s", self.stuck)
        self.event("drained")
        await self.stop()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let binds drain and unbind, commit everything, then end."""
        if self._stopping:
            return
        self._stopping = True
        self.event("stopping: draining in-flight responses, then unbinding")
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        for op in self.operators.values():
            op.stop()
        with trio.move_on_after(grace) as waited:
            for op in self.operators.values():
                await op.stopped()
        if waited.cancelled_caught:
            busy = [b.name for _, b in self.binds.values() if not b.ended.is_set()]
            log.error("stopping: binds %s still draining after %gs", ", ".join(busy), grace)
        for op in self.operators.values():
            self.give_back(op)
        with trio.move_on_after(grace) as waited:
            for dispatcher in self.dispatchers:
                await dispatcher.ended.wait()  # a claim under way is committed, then given back
            if self._unread():
                self._outcomes_read = trio.Event()
                await self._outcomes_read.wait()
            await self.writer.idle()
        if waited.cancelled_caught:
            log.error(
                "stopping: gave up waiting after %gs (writer busy %s, outcomes unread %d)",
                grace,
                self.writer.busy,
                self._unread(),
            )
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
            await self.stopped.wait()  # (a caller inside the engine is cancelled here: fine)

    async def outcomes_handled(self) -> None:
        """Until the outcome loop has handled everything reported so far (engine/reload.py)."""
        if self._unread():
            if self._outcomes_read.is_set():
                self._outcomes_read = trio.Event()
            await self._outcomes_read.wait()

    def _unread(self) -> int:
        """Outcomes the binds reported that the outcome loop has not turned into ops yet."""
        return self.outcomes_in.statistics().current_buffer_used

    def give_back(self, op: Operator, reason: str = "engine stopped") -> None:
        """The operator's queued jobs back to the store's queue, at their place."""
        for job in op.queue.drain():
            self.writer.submit(st.Requeue(id=job.msg_id, due=0.0, reason=reason))

    async def drained(self) -> bool:
        if self.writer.busy or self._unread():
            return False
        if any(len(op.queue) for op in self.operators.values()):
            return False
        if any(b.stats.window_used for _, b in self.binds.values()):
            return False
        inflight, awaiting, due = await self.db(self._store_quiet, self.now())
        if inflight:
            return False
        if self.inbound.held:  # every sent message's ids are committed: these can never match
            self.inbound.retry_held(give_up=True)
            return False
        if awaiting:
            return False
        if due:
            self.stuck = await self.db(self._unsendable, due)
            return bool(self.stuck)
        return True

    def _store_quiet(self, now: float) -> tuple[int, int, int]:
        """(in flight, awaiting a receipt, due) in one go on the store's thread: no claim or
        commit of this engine runs between the three reads."""
        inflight = self.store.counts().states["inflight"]
        return inflight, self.store.awaiting_receipts(), self.store.due_count(now)

    def _unsendable(self, due: int) -> str:
        """Why every due message is one that no bind of this run can send, or "" if some can:
        no operator routes them, or only operators whose binds all failed (credentials)."""
        from engine.routing import UNROUTED

        counts = {UNROUTED: self.store.ready_count(UNROUTED)}
        for op in self.operators.values():
            if op.dead and all(self.operators[n].dead for n in op.cfg.failover):
                counts[op.name] = self.store.ready_count(op.name)
        if sum(counts.values()) < due:
            return ""
        parts = [f"{counts.pop(UNROUTED)} that no operator routes"] if counts[UNROUTED] else []
        parts += [f"{n} that only operator {name}'s failed binds could send"
                  for name, n in counts.items() if n]  # fmt: skip
        return "not drained: " + ", ".join(parts)

    async def _committed(self) -> None:
        """After each commit: answer what it made durable, retry held receipts, look again
        whether the engine is drained."""
        await self.inbound.committed()
        self._activity.set()

    # -- outcomes: binds -> store operations ---------------------------------

    async def _outcome_loop(self) -> None:
        async for report in self.outcomes:
            answered: Counter[str] = Counter()  # parts per bind of the messages answered here
            for outcome in report if isinstance(report, list) else (report,):
                if isinstance(outcome, Submitted):
                    answered[outcome.bind] += len(outcome.job.parts)
                try:
                    self._outcome(outcome)
                except Exception:  # one outcome's fault stays with it
                    self._outcome_failed(outcome)
            self.inbound.commit_receipts()
            if answered:  # their window slots free once their outcomes are durable
                self.writer.after_commit(partial(self._settle_binds, answered))
            if not self._unread():
                self._outcomes_read.set()

    def _settle_binds(self, answered: Counter[str]) -> None:
        for bind, parts in answered.items():
            self.binds[bind][1].settle(parts)

    def _outcome_failed(self, outcome: Outcome) -> None:
        log.exception("could not handle %s from bind %s", type(outcome).__name__, outcome.bind)
        self.errors["internal error handling an outcome"] += 1
        if isinstance(outcome, Inbound):  # the SMSC will try it again later
            self.writer.after_commit(lambda: self.inbound.ack(outcome, c.ESME_RX_T_APPN))

    def _outcome(self, outcome: Outcome) -> None:
        match outcome:
            case Submitted():
                self._submitted(outcome)
            case Inbound():
                self.inbound.handle(outcome)
            case Lost():
                self._lost(outcome)
            case Vetoed():
                self.writer.submit(outcomes.vetoed(outcome, self.now()))
            case Unsent():
                self.writer.submit(outcomes.unsent(outcome))
            case StateChanged(state="failed"):
                self._bind_failed(outcome)
            case StateChanged():
                self._bind_changed(outcome)

    def _bind_changed(self, change: StateChanged) -> None:
        level = logging.WARNING if change.state in ("backoff", "failed") else logging.INFO
        context = {"bind": change.bind, "operator": self.binds[change.bind][0].name}
        text = f"bind {change.bind}: {change.state} {change.detail}".rstrip()
        self.event(text, level, context | {"state": change.state, "detail": change.detail})

    def _bind_failed(self, out: StateChanged) -> None:
        """A bind that gave up for good (credentials refused): an ERROR, and an event."""
        operator = self.binds[out.bind][0] if out.bind in self.binds else None
        name = operator.name if operator else "?"
        log.error("operator %s, bind %s failed: %s", name, out.bind, out.detail)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.now()))
        self.events.append(f"{stamp} bind {out.bind} (operator {name}) FAILED: {out.detail}")

    def _submitted(self, out: Submitted) -> None:
        job, now = out.job, self.now()
        operator = self.binds[out.bind][0]
        operator.meters.responses(len(job.parts), out.accepted, len(job.parts), out.status)
        verdict = outcomes.submitted(out, operator.cfg, now)
        self.totals[verdict.total] += 1
        if verdict.error:
            self.errors[verdict.error] += 1
        op = verdict.op
        self.writer.submit(op)
        if isinstance(op, st.MarkSent):
            self.inbound.sent(job.msg_id, now if op.receipt else None)
            message_debug(log, "sent", key=job.msg_id, number=job.to, smsc_ids=op.smsc_ids)
        elif isinstance(op, st.Fail):
            context: dict[str, object] = {"operator": operator.name, "bind": out.bind}
            context |= {"status": verdict.error, "key": job.msg_id, "number": job.to}
            context["attempts"] = job.attempts
            log.warning("submit failed: %s", verdict.error, extra=context)
        elif isinstance(op, st.Requeue):
            message_debug(log, "requeued", key=job.msg_id, number=job.to, status=verdict.error)

    def _lost(self, out: Lost) -> None:
        self.totals["lost"] += 1
        meters = self.binds[out.bind][0].meters
        meters.responses(len(out.job.parts), out.accepted, out.answered, out.status)
        self.writer.submit(outcomes.lost(out, self.cfg.store.on_crash_inflight, self.now()))

    def veto(self, job: Job) -> str:
        """Last check before a claimed job goes out: a STOP, or its window closed, since."""
        if job.to in self.stopped_now and job.kind not in self._stop_exempt:
            return "stopped"
        if job.closes_at is not None and self.now() >= job.closes_at:
            return WINDOW_CLOSED
        return ""

    # -- housekeeping ---------------------------------------------------------

    async def _housekeeping(self) -> None:
        last_sweep = -1e18
        while True:
            now = self.now()
            await self.db(self.store.promote, now)
            if now - last_sweep >= min(60.0, self.receipt_timeout / 4):
                last_sweep = now
                n = await self.db(self.store.expire_sent, now - self.receipt_timeout, now)
                if n:
                    self.event(f"{n} message(s) had no receipt within receipt_timeout: unknown")
            if self.inbound.held:
                self.inbound.retry_held()
            await self.rerouter.sweep(now)
            await self.db(self.store.purge, now - self.retention, 500)
            self._activity.set()
            await trio.sleep(1.0)

    def event(
        self, text: str, level: int = logging.INFO, context: dict[str, Any] | None = None
    ) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.now()))
        self.events.append(f"{stamp} {text}")
        log.log(level, text, extra=context)

    # -- control: meters, snapshots, operators' actions ------------------------

    async def _meter(self) -> None:
        """Once a second: rates per bind and overall, and the throughput history."""
        last: dict[str, int] = {}
        tick = 0
        while True:
            counts = {b.name: b.stats.submitted for _, b in self.binds.values()}
            counts["submit"] = self.totals["submitted"]
            counts["receipts"] = self.totals["receipts"]
            self.rates = {k: float(n - last.get(k, n)) for k, n in counts.items()}
            self.history.append(self.rates["submit"])
            last = counts
            tick += 1
            recent = list(self.history)[-LOG_EVERY:] if tick % LOG_EVERY == 0 else []
            if any(recent):
                log.info(
                    "throughput: %.0f submit/s over %ds; totals %s",
                    sum(recent) / len(recent),
                    LOG_EVERY,
                    ", ".join(f"{k} {v}" for k, v in self.totals.items() if v),
                )
            await trio.sleep(1.0)

    async def snapshot(self) -> cp.Snapshot:
        return await live.snapshot(self)

    async def act(self, req: cp.Request, uid: int) -> cp.Reply:
        return await self.actions.act(req, uid)

    def all_binds(self) -> list[Bind]:
        return [b for _, b in self.binds.values()]

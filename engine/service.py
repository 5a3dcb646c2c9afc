"""The engine: wires the store, the dispatchers, the binds and the writer together.

Lifetimes: the Engine owns one nursery; each Operator owns the nursery of its
binds. Data flows one way: a dispatcher claims due messages of its route from
the store (in batches, on the writer thread), builds their submit_sm parts and
puts Jobs on the operator's bounded channel (backpressure); binds send them at
the operator's pace and report Outcomes; the outcome loop turns outcomes into
store operations and the writer commits them in groups. Inbound PDUs are
answered only after their effect is committed; a receipt that arrives before
its submit_sm_resp is held unanswered (bounded) until the id is committed, so
a crash in between makes the SMSC resend it rather than lose it.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from engine import routing
from engine import store as st
from engine.config import Config, ConfigError, OperatorConfig, resolve_password, seconds
from engine.control import protocol as cp
from engine.control.server import ControlServer
from engine.control.views import StoreView, window_views
from engine.logs import message_debug
from engine.meters import OperatorMeters, SentTimes
from engine.net.bind import Bind
from engine.net.connection import Connection
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
from engine.optout import OptOutRules
from engine.rerouting import Rerouter
from engine.sched.pacing import Pacer, check_tps
from engine.sched.schedule import Scheduler
from engine.smpp import constants as c
from engine.smpp import encoding, receipts
from engine.submit import SubmitBuilder

log = logging.getLogger("volley.engine")
_Receipt = tuple[int, Inbound, st.RecordReceipt, float | None]

CLAIM_BATCH = 512
HOLD_RECEIPTS = 10_000
HOLD_SECONDS = 30.0
RETRY_BASE = 2.0
HISTORY_SECONDS = 300
WINDOW_CLOSED = "the send window closed while it waited to go out"
LOG_EVERY = 10  # seconds between throughput log lines


def tls_context(op: OperatorConfig, cfg: Config) -> ssl.SSLContext:
    """The operator's TLS trust: its ``tls_ca`` file, else the system's CAs."""
    if not op.tls_ca:
        return ssl.create_default_context()
    path = cfg.resolve(op.tls_ca)
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"operators {op.name!r}: tls_ca: {path}: {exc}") from None


class Operator:
    """One SMSC account: its pacer, its job channel, its binds."""

    def __init__(self, cfg: OperatorConfig, engine: Engine) -> None:
        self.cfg = cfg
        self.name = cfg.name
        index, processes = engine.part
        mine = [i for i in range(cfg.binds) if i % processes == index]
        self.share = len(mine) / cfg.binds  # of the operator's TPS, with this many binds
        self.pacer = Pacer(cfg.tps * self.share)
        self.capacity = max(64, min(4 * CLAIM_BATCH, cfg.window * cfg.binds * 2))
        self.jobs_in, self.jobs = trio.open_memory_channel[Job](self.capacity)
        self.builder = SubmitBuilder(cfg, max_parts=engine.cfg.defaults.max_parts)
        self.paused = cfg.paused
        self.meters = OperatorMeters()
        password = resolve_password(cfg, os.environ)
        tls = tls_context(cfg, engine.cfg) if cfg.tls else None
        self.binds: list[Bind] = []
        for i in mine:
            common = {
                "outcomes": engine.outcomes_in,
                "pacer": self.pacer,
                "password": password,
                "veto": engine.veto,
                "tls": tls,
            }
            self.binds.append(Bind(cfg, i, jobs=self.jobs, **common))
            if cfg.bind == "transmitter":
                self.binds.append(Bind(cfg, i, jobs=None, mode="receiver", **common))
        for bind in self.binds:  # a list-like sink: response times go into buckets
            bind.latencies = self.meters.submit_latency

    @property
    def dead(self) -> bool:
        """Every bind that could send has failed for good (credentials): nothing will go."""
        return all(b.stats.state == "failed" for b in self.binds if b.mode != "receiver")

    @property
    def up(self) -> bool:
        return not self.paused and any(
            b.stats.state == "bound" and not b.paused for b in self.binds if b.mode != "receiver"
        )

    def free(self) -> int:
        s = self.jobs_in.statistics()
        return s.max_buffer_size - s.current_buffer_used

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for bind in self.binds:
                await nursery.start(bind.run)

    def stop(self) -> None:
        for bind in self.binds:
            bind.stop()


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
        self.outcomes_in, self.outcomes = trio.open_memory_channel[Report](8192)
        self.operators = {op.name: Operator(op, self) for op in cfg.operators}
        self._binds = {b.name: (op, b) for op in self.operators.values() for b in op.binds}
        self.scheduler = Scheduler(cfg)
        self._wall = wall
        self._wall_offset = 0.0
        self._db_limiter = trio.CapacityLimiter(1)
        self._ops: list[st.Op] = []
        self._after: list[Callable[[list[st.Result]], None]] = []
        self._receipts: list[_Receipt] = []  # in this commit: (op index, inbound, op, held since)
        self._ops_ready = trio.Event()
        self._writing = False  # a commit is under way on the writer thread
        self._held: deque[tuple[float, Inbound, st.RecordReceipt]] = deque()
        self._to_flush: set[Connection] = set()
        self._stopped_now: set[str] = set()  # STOPs received in this run, before commit
        self._stop_exempt = {"transactional"} if cfg.stop.transactional_exempt else set()
        self._optout = OptOutRules(cfg.stop.keywords, cfg.stop.phrases, cfg.stop.polite)
        self._stopping = False
        self._claiming = 0  # claims under way on the writer thread
        self._nursery: trio.Nursery | None = None
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
        self._sent_at = SentTimes()  # for receipt latency
        self._store_view = StoreView(store)
        self.rerouter = Rerouter(cfg, store, self.db, first=part[0] == 0)
        self.stuck = ""  # why --until-drained ended with messages no bind can send

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

    def submit_op(self, op: st.Op) -> None:
        self._ops.append(op)
        self._ops_ready.set()

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
                nursery.start_soon(self._writer)
                nursery.start_soon(self._meter)
                nursery.start_soon(self._outcome_loop)
                nursery.start_soon(self._housekeeping)
                await self.rerouter.start()
                for op in self.operators.values():
                    nursery.start_soon(op.run)
                    nursery.start_soon(self._dispatch, op)
                task_status.started(self)
                self._event(f"engine started: {len(self.operators)} operator(s)")
                if until_drained:
                    nursery.start_soon(self._stop_when_drained)
        finally:
            self.stopped.set()

    async def _stop_when_drained(self) -> None:
        while not await self.drained():  # noqa: ASYNC110
            await trio.sleep(0.25)
        if self.stuck:
            log.error("%s", self.stuck)
        self._event("drained")
        await self.stop()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let binds drain and unbind, commit everything, then end."""
        if self._stopping:
            return
        self._stopping = True
        self._event("stopping: draining in-flight responses, then unbinding")
        for op in self.operators.values():
            op.stop()
        with trio.move_on_after(grace) as waited:
            while not all(b.stats.state in ("stopped", "failed") for b in self._all_binds()):  # noqa: ASYNC110
                await trio.sleep(0.05)
        if waited.cancelled_caught:
            busy = [b.name for b in self._all_binds() if b.stats.state not in ("stopped", "failed")]
            log.error("stopping: binds %s still draining after %gs", ", ".join(busy), grace)
        for op in self.operators.values():
            self._give_back_queued(op)
        with trio.move_on_after(grace) as waited:
            while self._ops or self._writing or self._claiming or self._unread():  # noqa: ASYNC110
                await trio.sleep(0.01)
        if waited.cancelled_caught:
            log.error(
                "stopping: gave up waiting after %gs (ops %d, writing %s, claiming %d, unread %d)",
                grace,
                len(self._ops),
                self._writing,
                self._claiming,
                self._unread(),
            )
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _unread(self) -> int:
        """Outcomes the binds reported that the outcome loop has not turned into ops yet."""
        return self.outcomes_in.statistics().current_buffer_used

    def _give_back_queued(self, op: Operator) -> None:
        while True:
            try:
                job = op.jobs.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self.submit_op(st.Requeue(id=job.msg_id, due=0.0, reason="engine stopped"))

    def _all_binds(self) -> list[Bind]:
        return [b for op in self.operators.values() for b in op.binds]

    async def drained(self) -> bool:
        if self._ops or self._writing or self._unread():
            return False
        if any(op.jobs_in.statistics().current_buffer_used for op in self.operators.values()):
            return False
        if any(b.stats.window_used for b in self._all_binds()):
            return False
        counts = await trio.to_thread.run_sync(self.store.counts)
        due = await trio.to_thread.run_sync(self.store.due_count, self.now())
        if counts.states["inflight"]:
            return False
        if self._held:  # every sent message's ids are committed: these can never match
            self._retry_held(give_up=True)
            return False
        if await trio.to_thread.run_sync(self.store.awaiting_receipts):
            return False
        if due:
            self.stuck = await trio.to_thread.run_sync(self._unsendable, due)
            return bool(self.stuck)
        return True

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

    # -- the writer: group commit ------------------------------------------

    async def _writer(self) -> None:
        while True:
            await self._ops_ready.wait()
            self._ops_ready = trio.Event()
            ops, self._ops = self._ops, []
            after, self._after = self._after, []
            receipts, self._receipts = self._receipts, []
            if not ops and not after:
                continue
            self._writing = True
            try:
                results = await self.db(self.store.apply, ops) if ops else []
            finally:
                self._writing = False
            for fn in after:
                fn(results)
            self._settle(receipts, results)
            connections, self._to_flush = self._to_flush, set()
            for connection in connections:
                await connection.flush()
            if self._held and any(isinstance(op, st.MarkSent) for op in ops):
                self._retry_held()

    def after_commit(self, fn: Callable[[list[st.Result]], None]) -> None:
        self._after.append(fn)
        self._ops_ready.set()

    # -- dispatch: store -> jobs -------------------------------------------

    async def _dispatch(self, operator: Operator) -> None:
        idle = 0.05
        while not self._stopping:
            routes = self._routes_for(operator)
            free = operator.free()
            if not routes or free < min(CLAIM_BATCH // 4, operator.capacity // 2):
                await trio.sleep(0.02)
                continue
            claimed = 0
            for route in routes:
                self._claiming += 1
                try:
                    msgs = await self.db(self.store.claim, route, free - claimed, self.now())
                finally:
                    self._claiming -= 1
                claimed += len(msgs)
                for msg in msgs:
                    if self._stopping:  # claimed while stop() gave back the rest
                        self.submit_op(st.Requeue(id=msg.id, due=0.0, reason="engine stopped"))
                    else:
                        self._hand_over(operator, route, msg)
            if claimed:
                self.totals["claimed"] += claimed
                idle = 0.05
            else:
                await trio.sleep(idle)
                idle = min(1.0, idle * 2)

    def _routes_for(self, operator: Operator) -> list[str]:
        """Its own route when up, plus those of down or paused operators failing over to it."""
        if not operator.up:
            return []
        return [operator.name] + [
            other.name
            for other in self.operators.values()
            if other is not operator and not other.up and self._failover(other) is operator
        ]

    def _failover(self, down: Operator) -> Operator | None:
        """The first operator of ``down``'s failover list that is up."""
        return next((self.operators[n] for n in down.cfg.failover if self.operators[n].up), None)

    def _hand_over(self, operator: Operator, route: str, msg: st.Claimed) -> None:
        right = self.rerouter.misrouted(msg.route, msg.to)
        if right is not None:  # the running config routes it elsewhere (engine/rerouting.py)
            self.submit_op(st.Reroute(id=msg.id, route=right))
            return
        message_debug(
            log, "claimed", batch=msg.batch, id=msg.ext_id, key=msg.id, number=msg.to, route=route
        )
        if route != operator.name and not routing.accepts(operator.cfg, msg.to):
            self.submit_op(st.Requeue(id=msg.id, due=self.now() + 1.0, reason="no route"))
            return
        now = self.now()
        window = msg.window or msg.kind
        also = operator.cfg.send_windows.get(msg.kind, "")
        decision = self.scheduler.decide(window, msg.to, now, also)
        if not decision.open:
            self._outside_window(msg, decision.due, now)
            return
        validity = self.scheduler.validity(window, decision, now, also)
        try:
            parts = operator.builder.build(msg.to, msg.text, msg.sender, validity_period=validity)
        except (encoding.TextTooLong, encoding.EncodingError) as exc:
            self.submit_op(st.Fail(id=msg.id, status=0, description=str(exc), at=self.now()))
            return
        operator.jobs_in.send_nowait(
            Job(
                msg.id,
                tuple(parts),
                attempts=msg.attempts,
                to=msg.to,
                kind=msg.kind,
                closes_at=decision.closes_at,
            )
        )

    def _outside_window(self, msg: st.Claimed, due: float | None, now: float) -> None:
        """The window closed while it waited (or a retry came due at night): wait again."""
        if due is None or (msg.expires is not None and due >= msg.expires):
            self.submit_op(st.Skip(id=msg.id, reason="expired", at=now))
        else:
            self.submit_op(st.Schedule(id=msg.id, due=due, reason="outside the send window"))

    # -- outcomes: binds -> store operations ---------------------------------

    async def _outcome_loop(self) -> None:
        async for report in self.outcomes:
            for outcome in report if isinstance(report, list) else (report,):
                try:
                    self._outcome(outcome)
                except Exception:  # one outcome's fault stays with it
                    self._outcome_failed(outcome)

    def _outcome_failed(self, outcome: Outcome) -> None:
        log.exception("could not handle %s from bind %s", type(outcome).__name__, outcome.bind)
        self.errors["internal error handling an outcome"] += 1
        if isinstance(outcome, Inbound):  # the SMSC will try it again later
            self.after_commit(lambda _: self._ack(outcome, c.ESME_RX_T_APPN))

    def _outcome(self, outcome: Outcome) -> None:
        if isinstance(outcome, Submitted):
            self._submitted(outcome)
        elif isinstance(outcome, Inbound):
            self._inbound(outcome)
        elif isinstance(outcome, Lost):
            self._lost(outcome)
        elif isinstance(outcome, Vetoed) and outcome.reason == WINDOW_CLOSED:
            # back to the queue: its next claim schedules it for the next opening
            self.submit_op(st.Requeue(id=outcome.job.msg_id, due=0.0, reason=WINDOW_CLOSED))
        elif isinstance(outcome, Vetoed):
            self.submit_op(st.Skip(id=outcome.job.msg_id, reason=outcome.reason, at=self.now()))
        elif isinstance(outcome, Unsent):
            self.submit_op(st.Requeue(id=outcome.job.msg_id, due=0.0, reason="not sent"))
        elif isinstance(outcome, StateChanged) and outcome.state == "failed":
            self._bind_failed(outcome)
        elif isinstance(outcome, StateChanged):
            self._bind_changed(outcome)

    def _bind_changed(self, change: StateChanged) -> None:
        level = logging.WARNING if change.state in ("backoff", "failed") else logging.INFO
        context = {"bind": change.bind, "operator": self._binds[change.bind][0].name}
        text = f"bind {change.bind}: {change.state} {change.detail}".rstrip()
        self._event(text, level, context | {"state": change.state, "detail": change.detail})

    def _bind_failed(self, out: StateChanged) -> None:
        """A bind that gave up for good (credentials refused): an ERROR, and an event."""
        operator = self._binds[out.bind][0] if out.bind in self._binds else None
        name = operator.name if operator else "?"
        log.error("operator %s, bind %s failed: %s", name, out.bind, out.detail)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.now()))
        self.events.append(f"{stamp} bind {out.bind} (operator {name}) FAILED: {out.detail}")

    def _submitted(self, out: Submitted) -> None:
        job, status, now = out.job, out.status, self.now()
        operator = self._binds[out.bind][0]
        operator.meters.responses(len(job.parts), out.accepted, len(job.parts), status)
        if status == 0 and out.bad_id:
            self.totals["submitted"] += 1
            self.errors["accepted with an unusable message_id"] += 1
            self.submit_op(st.MarkUnknown(id=job.msg_id, reason=out.bad_id, at=now))
            return
        if status == 0:
            self.totals["submitted"] += 1
            ids = [receipts.canonical_id(i) for i in out.smsc_ids]
            receipt = operator.cfg.registered_delivery
            self.submit_op(
                st.MarkSent(
                    id=job.msg_id, smsc_ids=ids, at=now, receipt=receipt, operator=operator.name
                )
            )
            if receipt:
                self._sent_at.add(job.msg_id, now)
            message_debug(log, "sent", key=job.msg_id, number=job.to, smsc_ids=ids)
            return
        desc = f"0x{status:02X} {c.status_description(status)}"
        self.errors[desc] += 1
        if status in c.THROTTLE_STATUSES:
            self.totals["requeued"] += 1
            self.submit_op(st.Requeue(id=job.msg_id, due=0.0, reason=desc))
        elif status in c.TRANSIENT_STATUSES and job.attempts < operator.cfg.max_retries:
            self.totals["requeued"] += 1
            delay = RETRY_BASE * 2**job.attempts
            self.submit_op(st.Requeue(id=job.msg_id, due=now + delay, reason=desc, retry=True))
        else:
            self.totals["failed"] += 1
            self.submit_op(st.Fail(id=job.msg_id, status=status, description=desc, at=now))
            context = {"operator": operator.name, "bind": out.bind, "status": desc}
            context.update(key=job.msg_id, number=job.to, attempts=job.attempts)
            log.warning("submit failed: %s", desc, extra=context)
            return
        message_debug(log, "requeued", key=job.msg_id, number=job.to, status=desc)

    def _lost(self, out: Lost) -> None:
        """No response (timeout or connection loss): treated as a crash would be."""
        self.totals["lost"] += 1
        meters = self._binds[out.bind][0].meters
        meters.responses(len(out.job.parts), out.accepted, out.answered, out.status)
        reason = f"no response: {out.reason}"
        if self.cfg.store.on_crash_inflight == "resend":
            self.submit_op(st.Requeue(id=out.job.msg_id, due=0.0, reason=reason))
        else:
            self.submit_op(st.MarkUnknown(id=out.job.msg_id, reason=reason, at=self.now()))

    def _inbound(self, inb: Inbound) -> None:
        pdu = inb.pdu
        if not receipts.is_receipt(pdu.esm_class):
            self._mo(inb)
            return
        self.totals["receipts"] += 1
        rec = receipts.parse_receipt_pdu(pdu)
        if isinstance(rec, receipts.ReceiptError):
            self._event(f"unparseable receipt from {inb.bind}: {rec.reason}")
            self.after_commit(lambda _: self._ack(inb))
            return
        if rec.state != st.records.DELIVERED:
            self.errors[f"receipt {rec.stat} err:{rec.err_raw or '-'}"] += 1
        operator = self._binds[inb.bind][0]
        operator.meters.receipts[rec.stat] += 1
        form = operator.cfg.receipt_id_form
        op = st.RecordReceipt(
            candidates=rec.id_forms
            if form == "auto"
            else receipts.normalise_id(rec.message_id, form),
            state=rec.state,
            final=rec.final,
            stat=rec.stat,
            err=rec.err,
            network_error=rec.network_error[1] if rec.network_error else None,
            at=self.now(),
            hold=True,
            operator=self._binds[inb.bind][0].name,
        )
        self._record_receipt(inb, op)

    def _record_receipt(
        self, inb: Inbound, op: st.RecordReceipt, since: float | None = None
    ) -> None:
        """Commit a receipt; an unmatched one is held (since its first try) and retried."""
        self._receipts.append((len(self._ops), inb, op, since))
        self.submit_op(op)

    def _settle(self, receipts: list[_Receipt], results: list[st.Result]) -> None:
        """After their commit: acknowledge the receipts, or hold those that matched nothing."""
        for index, inb, op, since in receipts:
            result = results[index] if index < len(results) else None
            unmatched = result is not None and result.detail == "unmatched" and op.hold
            if unmatched and inb.connection.closed:
                continue  # it can no longer be answered: the SMSC will send it again
            if unmatched and len(self._held) < HOLD_RECEIPTS:
                self._held.append((self.now() if since is None else since, inb, op))
            elif unmatched:  # no room to hold it: kept as unmatched (counted), then acked
                self.totals["unmatched"] += 1
                self._record_receipt(inb, msgspec.structs.replace(op, hold=False), since)
            else:
                self._ack(inb)
            if result is not None and result.ok and op.final:
                self._receipt_latency(inb.bind, result.id, op.at)

    def _receipt_latency(self, bind: str, msg_id: int, at: float) -> None:
        sent = self._sent_at.pop(msg_id)
        if sent is not None:
            self._binds[bind][0].meters.receipt_latency.observe(max(0.0, at - sent))

    def _retry_held(self, give_up: bool = False) -> None:
        now, held = self.now(), self._held
        self._held = deque()
        for since, inb, op in held:
            if inb.connection.closed:
                continue  # the SMSC sends it again on another connection
            if give_up or now - since > HOLD_SECONDS:
                self.totals["unmatched"] += 1
                op = msgspec.structs.replace(op, hold=False)
            self._record_receipt(inb, op, since)

    def _mo(self, inb: Inbound) -> None:
        pdu = inb.pdu
        sm = pdu.short_message or pdu.message_payload or b""
        text = encoding.decode_text(encoding.strip_udh(sm, pdu.esm_class), pdu.data_coding)
        verdict = self._optout.check(text)
        stop = verdict.stop
        self.totals["mo"] += 1
        self.submit_op(
            st.RecordMo(
                source="+" + pdu.source_addr.removeprefix("+"),
                destination=pdu.destination_addr,
                text=text,
                at=self.now(),
                bind=inb.bind,
                stop=stop,
                stop_rule=verdict.why,
            )
        )
        if stop:
            self._stopped_now.add("+" + pdu.source_addr.removeprefix("+"))
            self._event(f"opt-out: {pdu.source_addr} sent {text!r}, stop-listed")
        self.after_commit(lambda _: self._ack(inb))

    def veto(self, job: Job) -> str:
        """Last check before a claimed job goes out: a STOP, or its window closed, since."""
        if job.to in self._stopped_now and job.kind not in self._stop_exempt:
            return "stopped"
        if job.closes_at is not None and self.now() >= job.closes_at:
            return WINDOW_CLOSED
        return ""

    def _ack(self, inb: Inbound, status: int = 0) -> None:
        """Queue the answer on its connection; the writer flushes each once per commit."""
        connection = inb.connection
        if connection is not None and connection.ack(inb, status):
            self._to_flush.add(connection)

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
                    self._event(f"{n} message(s) had no receipt within receipt_timeout: unknown")
            if self._held:
                self._retry_held()
            await self.rerouter.sweep(now)
            await self.db(self.store.purge, now - self.retention, 500)
            await trio.sleep(1.0)

    def _event(
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
            counts = {b.name: b.stats.submitted for b in self._all_binds()}
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
        now = self.now()
        fields = await trio.to_thread.run_sync(self._store_view.read, now)
        return cp.Snapshot(
            at=now,
            pid=os.getpid(),
            operators=[self._operator_view(op) for op in self.operators.values()],
            binds=[self._bind_view(op, b) for op in self.operators.values() for b in op.binds],
            top_errors=self.errors.most_common(10),
            windows=window_views(self.cfg, now),
            rates={k: v for k, v in self.rates.items() if k in ("submit", "receipts")},
            history=list(self.history),
            totals=dict(self.totals),
            events=list(self.events)[-50:],
            **fields,
        )

    def _operator_view(self, op: Operator) -> cp.OperatorView:
        return cp.OperatorView(
            name=op.name,
            up=op.up,
            paused=op.paused,
            tps_now=sum(self.rates.get(b.name, 0.0) for b in op.binds),
            tps_limit=op.pacer.rate,
            tps_configured=op.pacer.target,
            throttles=op.pacer.throttles,
            submits=dict(op.meters.submits),
            receipts=dict(op.meters.receipts),
            submit_latency=op.meters.submit_latency.view(),
            receipt_latency=op.meters.receipt_latency.view(),
        )

    def _bind_view(self, op: Operator, bind: Bind) -> cp.BindView:
        s = bind.stats
        return cp.BindView(
            name=bind.name,
            operator=op.name,
            state=s.state,
            tps_now=self.rates.get(bind.name, 0.0),
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

    async def act(self, req: cp.Request, uid: int) -> cp.Reply:
        """An operator's request from the control socket: logged with who asked."""
        context = {"uid": uid, "action": type(req).__name__} | msgspec.structs.asdict(req)
        try:
            detail = await self._act(req)
        except (KeyError, ValueError, st.StoreError) as exc:
            message = str(exc).strip("'\"")
            log.warning("control: refused: %s", message, extra=context)
            code = "" if isinstance(exc, st.StoreError) else cp.BAD_REQUEST
            return cp.Error(message=message, code=code)
        self._event(f"uid {uid}: {detail}", context=context)
        return cp.Ok(detail=detail)

    async def _act(self, req: cp.Request) -> str:
        match req:
            case cp.Pause() | cp.Resume():
                return await self._pause(req, paused=isinstance(req, cp.Pause))
            case cp.Reconnect(bind=name):
                self._find_bind(name).reset()
                return f"bind {name}: reconnecting"
            case cp.SetTps(operator=name, tps=tps):
                operator = self._find_operator(name)
                operator.pacer.set_tps(check_tps(tps) * operator.share)
                return f"operator {name}: tps set to {tps:g}"
            case cp.StopNumber(number=raw, reason=reason):
                from engine.ingest import BadField, Validator

                try:
                    number = Validator(self.cfg).number(raw)
                except BadField as exc:
                    raise ValueError(f"{raw!r}: {exc.reason}") from None
                self._stopped_now.add(number)
                await self.db(self.store.stop, [number], reason, self.now())
                return f"{number} stop-listed ({reason})"
            case cp.Drain():
                assert self._nursery is not None
                self._nursery.start_soon(self.stop)
                return "draining: finishing in-flight messages, then stopping"
        raise ValueError(f"unsupported request {type(req).__name__}")

    async def _pause(self, req: cp.Pause | cp.Resume, paused: bool) -> str:
        verb = "paused" if paused else "resumed"
        if req.batch:
            if not await self.db(self.store.batch_progress, req.batch):
                raise KeyError(f"no batch {req.batch!r}")
            moved = await self.db(self.store.pause_batch, req.batch, paused)
            return f"batch {req.batch}: {verb} ({moved} queued message(s))"
        if req.bind:
            self._find_bind(req.bind).paused = paused
            return f"bind {req.bind}: {verb}"
        if req.operator:
            op = self._find_operator(req.operator)
            op.paused = paused
            if paused:
                self._give_back_queued(op)  # to its failover, or back to the queue
            return f"operator {req.operator}: {verb}"
        raise ValueError("name an operator, a bind or a batch")

    def _find_operator(self, name: str) -> Operator:
        if name not in self.operators:
            raise KeyError(f"no operator {name!r} (have {', '.join(self.operators)})")
        return self.operators[name]

    def _find_bind(self, name: str) -> Bind:
        if name not in self._binds:
            raise KeyError(f"no bind {name!r}")
        return self._binds[name][1]

"""Store -> jobs, for one operator: the only part of sched/ that touches the store and queues.

A Dispatcher claims its operator's due messages in batches (its own route, and
the routes of down or paused operators failing over to it), decides each
against its send window (skipped if it expired, scheduled if the window is
shut), builds its submit_sm bodies and puts the whole batch on the operator's
job queue in one call. Whatever it decides instead of sending goes to the
writer as a store operation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from engine import routing
from engine import store as st
from engine.logs import message_debug
from engine.net.jobs import Job
from engine.operators import CLAIM_BATCH
from engine.sched.schedule import Scheduler
from engine.smpp import encoding

if TYPE_CHECKING:
    from engine.operators import Operator
    from engine.rerouting import Rerouter

log = logging.getLogger("volley.engine")

IDLE_MIN, IDLE_MAX = 0.05, 1.0  # seconds between claims that find nothing (others may enqueue)
ROUTES_EVERY = 0.05  # seconds: how often a dispatcher with a full queue or no route looks again


class Dispatcher:
    def __init__(
        self,
        operator: Operator,
        operators: Mapping[str, Operator],
        *,
        claim: Callable[[str, int, float], Awaitable[list[Any]]],
        submit: Callable[[st.Op], None],
        scheduler: Scheduler,
        rerouter: Rerouter,
        now: Callable[[], float],
        totals: dict[str, int],
    ) -> None:
        self.operator = operator
        self._operators = operators
        self._claim = claim
        self._submit = submit
        self.scheduler = scheduler
        self._rerouter = rerouter
        self._now = now
        self._totals = totals  # the engine's: "claimed" counts here
        self.stopping = False
        self.ended = trio.Event()
        self._waiting: trio.CancelScope | None = None  # a wait a stop cuts short

    async def run(self) -> None:
        queue = self.operator.queue
        idle = IDLE_MIN
        try:
            while not self.stopping:
                routes = self.routes()
                low = min(CLAIM_BATCH // 4, queue.capacity // 2)
                if not routes or queue.free() < low:
                    with trio.move_on_after(ROUTES_EVERY) as self._waiting:
                        if routes:
                            await queue.wait_room(low)
                        else:
                            await trio.sleep_forever()  # until operators come up or down
                    continue
                if await self._claim_once(routes, queue.free()):
                    idle = IDLE_MIN
                    continue
                with trio.CancelScope() as self._waiting:
                    await trio.sleep(idle)  # nothing due: another process may enqueue
                idle = min(IDLE_MAX, idle * 2)
        finally:
            self.ended.set()

    def stop(self) -> None:
        """Claim no more: a claim under way finishes (its messages go back), a wait ends."""
        self.stopping = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def _claim_once(self, routes: list[str], room: int) -> int:
        claimed = 0
        for route in routes:
            msgs = await self._claim(route, room - claimed, self._now())
            claimed += len(msgs)
            if self.stopping:  # claimed while the engine stopped: back they go
                for msg in msgs:
                    self._submit(st.Requeue(id=msg.id, due=0.0, reason="engine stopped"))
            else:
                self.operator.queue.put([j for msg in msgs if (j := self._job(route, msg))])
        self._totals["claimed"] += claimed
        return claimed

    def routes(self) -> list[str]:
        """Its own route when up, plus those of down or paused operators failing over to it."""
        operator = self.operator
        if not operator.up:
            return []
        return [operator.name] + [
            other.name
            for other in self._operators.values()
            if other is not operator and not other.up and self._failover(other) is operator
        ]

    def _failover(self, down: Operator) -> Operator | None:
        """The first operator of ``down``'s failover list that is up."""
        ops = self._operators
        return next((ops[n] for n in down.cfg.failover if ops[n].up), None)

    def _job(self, route: str, msg: Any) -> Job | None:
        """The message's job, or None with the store operation that replaces sending it."""
        operator = self.operator
        right = self._rerouter.misrouted(msg.route, msg.to)
        if right is not None:  # the running config routes it elsewhere (engine/rerouting.py)
            self._submit(st.Reroute(id=msg.id, route=right))
            return None
        message_debug(
            log, "claimed", batch=msg.batch, id=msg.ext_id, key=msg.id, number=msg.to, route=route
        )
        if route != operator.name and not routing.accepts(operator.cfg, msg.to):
            self._submit(st.Requeue(id=msg.id, due=self._now() + 1.0, reason="no route"))
            return None
        now = self._now()
        window = msg.window or msg.kind
        also = operator.cfg.send_windows.get(msg.kind, "")
        decision = self.scheduler.decide(window, msg.to, now, also)
        if not decision.open:
            self._outside_window(msg, decision.due, now)
            return None
        validity = self.scheduler.validity(window, decision, now, also)
        try:
            parts = operator.builder.bodies(msg.to, msg.text, msg.sender, validity_period=validity)
        except (encoding.TextTooLong, encoding.EncodingError) as exc:
            self._submit(st.Fail(id=msg.id, status=0, description=str(exc), at=now))
            return None
        return Job(
            msg.id,
            parts,
            attempts=msg.attempts,
            to=msg.to,
            kind=msg.kind,
            closes_at=decision.closes_at,
        )

    def _outside_window(self, msg: Any, due: float | None, now: float) -> None:
        """The window closed while it waited (or a retry came due at night): wait again."""
        if due is None or (msg.expires is not None and due >= msg.expires):
            self._submit(st.Skip(id=msg.id, reason="expired", at=now))
        else:
            self._submit(st.Schedule(id=msg.id, due=due, reason="outside the send window"))

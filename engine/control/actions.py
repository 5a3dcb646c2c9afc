"""What an operator asks of a running engine through the control socket.

Pause or resume an operator, a bind or a batch; reconnect a bind; set an
operator's TPS live; stop-list a number; drain. Every action is logged with the
uid that asked; a refused one gets an ``Error`` naming why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec

from engine import store as st
from engine.control import protocol as cp
from engine.sched.pacing import check_tps

if TYPE_CHECKING:
    from engine.net.bind import Bind
    from engine.operators import Operator
    from engine.service import Engine

log = logging.getLogger("volley.engine")


class Actions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def act(self, req: cp.Request, uid: int) -> cp.Reply:
        """An operator's request: logged with who asked."""
        context = {"uid": uid, "action": type(req).__name__} | msgspec.structs.asdict(req)
        try:
            detail = await self._act(req)
        except (KeyError, ValueError, st.StoreError) as exc:
            message = str(exc).strip("'\"")
            log.warning("control: refused: %s", message, extra=context)
            code = "" if isinstance(exc, st.StoreError) else cp.BAD_REQUEST
            return cp.Error(message=message, code=code)
        self.engine.event(f"uid {uid}: {detail}", context=context)
        return cp.Ok(detail=detail)

    async def _act(self, req: cp.Request) -> str:
        engine = self.engine
        match req:
            case cp.Pause() | cp.Resume():
                return await self._pause(req, paused=isinstance(req, cp.Pause))
            case cp.Reconnect(bind=name):
                self.bind(name).reset()
                return f"bind {name}: reconnecting"
            case cp.SetTps(operator=name, tps=tps):
                operator = self.operator(name)
                operator.pacer.set_tps(check_tps(tps) * operator.share)
                return f"operator {name}: tps set to {tps:g}"
            case cp.StopNumber(number=raw, reason=reason):
                from engine.ingest import BadField, Validator

                try:
                    number = Validator(engine.cfg).number(raw)
                except BadField as exc:
                    raise ValueError(f"{raw!r}: {exc.reason}") from None
                engine.stopped_now.add(number)
                await engine.db(engine.store.stop, [number], reason, engine.now())
                return f"{number} stop-listed ({reason})"
            case cp.Reload():
                return await engine.reload()
            case cp.Drain():
                engine.start_soon(engine.stop)
                return "draining: finishing in-flight messages, then stopping"
        raise ValueError(f"unsupported request {type(req).__name__}")

    async def _pause(self, req: cp.Pause | cp.Resume, paused: bool) -> str:
        engine = self.engine
        verb = "paused" if paused else "resumed"
        if req.batch:
            if not await engine.db(engine.store.batch_progress, req.batch):
                raise KeyError(f"no batch {req.batch!r}")
            moved = await engine.db(engine.store.pause_batch, req.batch, paused)
            return f"batch {req.batch}: {verb} ({moved} queued message(s))"
        if req.bind:
            self.bind(req.bind).paused = paused
            return f"bind {req.bind}: {verb}"
        if req.operator:
            operator = self.operator(req.operator)
            operator.paused = paused
            if paused:
                engine.give_back(operator)  # to its failover, or back to the queue
            return f"operator {req.operator}: {verb}"
        raise ValueError("name an operator, a bind or a batch")

    def operator(self, name: str) -> Operator:
        operators = self.engine.operators
        if name not in operators:
            raise KeyError(f"no operator {name!r} (have {', '.join(operators)})")
        return operators[name]

    def bind(self, name: str) -> Bind:
        binds = self.engine.binds
        if name not in binds:
            raise KeyError(f"no bind {name!r}")
        return binds[name][1]

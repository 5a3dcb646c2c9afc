"""One SMSC account in the running engine: its pacer, its job queue, its binds, its meters."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable

import trio

from engine.config import Config, ConfigError, OperatorConfig, resolve_password
from engine.meters import OperatorMeters
from engine.net.bind import Bind
from engine.net.jobs import Job, JobQueue, Report
from engine.sched.pacing import Pacer
from engine.submit import SubmitBuilder

CLAIM_BATCH = 512


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
    def __init__(
        self,
        cfg: OperatorConfig,
        engine_cfg: Config,
        *,
        part: tuple[int, int],
        outcomes: trio.MemorySendChannel[Report],
        veto: Callable[[Job], str],
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        index, processes = part
        mine = [i for i in range(cfg.binds) if i % processes == index]
        self.share = len(mine) / cfg.binds  # of the operator's TPS, with this many binds
        self.pacer = Pacer(cfg.tps * self.share)
        self.queue = JobQueue(max(64, min(4 * CLAIM_BATCH, cfg.window * len(mine) * 2)))
        self.builder = SubmitBuilder(cfg, max_parts=engine_cfg.defaults.max_parts)
        self.paused = cfg.paused
        self.meters = OperatorMeters()
        password = resolve_password(cfg, os.environ)
        tls = tls_context(cfg, engine_cfg) if cfg.tls else None
        self.binds: list[Bind] = []
        for i in mine:
            for mode, queue in [(cfg.bind, self.queue)] + (
                [("receiver", None)] if cfg.bind == "transmitter" else []
            ):
                bind = Bind(
                    cfg,
                    i,
                    jobs=queue,
                    outcomes=outcomes,
                    pacer=self.pacer,
                    mode=mode,
                    password=password,
                    veto=veto,
                    tls=tls,
                )
                self.binds.append(bind)
        for bind in self.binds:  # a list-like sink: response times go into buckets
            bind.latencies = self.meters.submit_latency

    def reconfigure(self, cfg: OperatorConfig, engine_cfg: Config) -> None:
        """New settings that keep its binds (engine/reload.py): the next submits, receipts
        and connections use them; TPS, pause and window are the reload's to set."""
        self.cfg = cfg
        self.builder = SubmitBuilder(cfg, max_parts=engine_cfg.defaults.max_parts)
        for bind in self.binds:
            bind.op = cfg

    @property
    def dead(self) -> bool:
        """Every bind that could send has failed for good (credentials): nothing will go."""
        return all(b.stats.state == "failed" for b in self.binds if b.mode != "receiver")

    @property
    def up(self) -> bool:
        return not self.paused and any(
            b.stats.state == "bound" and not b.paused for b in self.binds if b.mode != "receiver"
        )

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for bind in self.binds:
                await nursery.start(bind.run)

    def stop(self) -> None:
        for bind in self.binds:
            bind.stop()

    async def stopped(self) -> None:
        """Until every bind has stopped (or failed)."""
        for bind in self.binds:
            await bind.ended.wait()

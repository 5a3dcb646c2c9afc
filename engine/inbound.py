"""What the SMSC sends the engine: receipts and MOs become store operations, and each is
answered on its connection once the writer has committed them (engine/held.py holds
the receipts that come before their submit is committed)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import msgspec

from engine import outcomes
from engine import store as st
from engine.held import HeldReceipts
from engine.meters import SentTimes
from engine.net.jobs import Inbound
from engine.optout import OptOutRules
from engine.smpp import receipts

if TYPE_CHECKING:
    from engine.net.connection import Connection
    from engine.service import Engine

Receipt = tuple[Inbound, st.RecordReceipt, float | None]  # (the PDU, its record, held since)


class InboundHandler:
    def __init__(self, engine: Engine, optout: OptOutRules) -> None:
        self.engine = engine
        self.optout = optout
        self.held = HeldReceipts()
        self._receipts: list[Receipt] = []  # of the report being handled: committed together
        self._sent_since_retry = False  # a MarkSent went out since the held receipts were retried
        self._sent_at = SentTimes()  # for receipt latency
        self._to_flush: set[Connection] = set()

    def sent(self, msg_id: int, at: float | None) -> None:
        """A MarkSent went to the writer (``at``: when, if it asks for a receipt): held
        receipts are tried again after its commit."""
        self._sent_since_retry = True
        if at is not None:
            self._sent_at.add(msg_id, at)

    async def committed(self) -> None:
        """After each commit: answer what it made durable, retry held receipts."""
        connections, self._to_flush = self._to_flush, set()
        for connection in connections:
            await connection.flush()
        if self.held and self._sent_since_retry:
            self.retry_held()
        self._sent_since_retry = False

    def handle(self, inb: Inbound) -> None:
        if not receipts.is_receipt(inb.pdu.esm_class):
            self._mo(inb)
            return
        engine = self.engine
        engine.totals["receipts"] += 1
        operator = engine.binds[inb.bind][0]
        parsed = outcomes.receipt(inb.pdu, operator.cfg, engine.now())
        if isinstance(parsed, receipts.ReceiptError):
            engine.event(f"unparseable receipt from {inb.bind}: {parsed.reason}")
            engine.writer.after_commit(lambda: self.ack(inb))
            return
        rec, op = parsed
        if rec.state != st.records.DELIVERED:
            engine.errors[f"receipt {rec.stat} err:{rec.err_raw or '-'}"] += 1
        operator.meters.receipts[rec.stat] += 1
        self._record_receipt(inb, op, None)

    def _record_receipt(self, inb: Inbound, op: st.RecordReceipt, since: float | None) -> None:
        """A receipt to commit with the others of its read (``commit_receipts``); one that
        matches nothing yet is held (since its first try)."""
        self._receipts.append((inb, op, since))

    def commit_receipts(self) -> None:
        if self._receipts:
            batch, self._receipts = self._receipts, []
            self.engine.writer.submit_all([op for _, op, _ in batch], partial(self._settle, batch))

    def _settle(self, batch: list[Receipt], results: list[st.Result]) -> None:
        """After their commit: acknowledge the receipts, or hold those that matched nothing."""
        for (inb, op, since), result in zip(batch, results, strict=True):
            if op.hold and result.detail == "unmatched":
                self._unmatched(inb, op, since)
                continue
            self.ack(inb)
            if result.ok and op.final:
                sent = self._sent_at.pop(result.id)
                if sent is not None:
                    meter = self.engine.binds[inb.bind][0].meters.receipt_latency
                    meter.observe(max(0.0, op.at - sent))
        self.commit_receipts()

    def _unmatched(self, inb: Inbound, op: st.RecordReceipt, since: float | None) -> None:
        if inb.connection is not None and inb.connection.closed:
            return  # it can no longer be answered: the SMSC will send it again
        if not self.held.hold(self.engine.now() if since is None else since, inb, op):
            self.engine.totals["unmatched"] += 1  # no room to hold it: kept as unmatched, acked
            self._record_receipt(inb, msgspec.structs.replace(op, hold=False), since)

    def retry_held(self, give_up: bool = False) -> None:
        for since, inb, op in self.held.retry(self.engine.now(), give_up):
            if not op.hold:
                self.engine.totals["unmatched"] += 1
            self._record_receipt(inb, op, since)
        self.commit_receipts()

    def _mo(self, inb: Inbound) -> None:
        engine = self.engine
        op = outcomes.mo(inb.pdu, inb.bind, self.optout, engine.now())
        engine.totals["mo"] += 1
        engine.writer.submit(op)
        if op.stop:
            engine.stopped_now.add(op.source)
            engine.event(f"opt-out: {inb.pdu.source_addr} sent {op.text!r}, stop-listed")
        engine.writer.after_commit(lambda: self.ack(inb))

    def ack(self, inb: Inbound, status: int = 0) -> None:
        """Queue the answer on its connection; the writer flushes each once per commit."""
        connection = inb.connection
        if connection is not None and connection.ack(inb, status):
            self._to_flush.add(connection)

"""What a bind's outcome means for the store: pure functions from outcomes to operations.

No trio, no store, no clock of its own: each function takes ``now`` and the
operator's settings and returns the operation to commit (and what to count),
so every rule here is tested without sockets or threads.
"""

from __future__ import annotations

import msgspec

from engine import store as st
from engine.config import OperatorConfig
from engine.net.jobs import Lost, Submitted, Unsent, Vetoed
from engine.optout import OptOutRules
from engine.smpp import constants as c
from engine.smpp import encoding, receipts
from engine.smpp.pdu import DataSm, DeliverSm

RETRY_BASE = 2.0  # seconds before a transient failure's first retry; doubled each time
WINDOW_CLOSED = "the send window closed while it waited to go out"


class Verdict(msgspec.Struct, frozen=True, gc=False):
    """The operation to commit, the total it counts in, and the error it is (if any)."""

    op: st.Op
    total: str = ""
    error: str = ""


def describe_status(status: int) -> str:
    return f"0x{status:02X} {c.status_description(status)}"


def submitted(out: Submitted, operator: OperatorConfig, now: float) -> Verdict:
    """Every part answered: sent (or unknown, if an accepted part's id is unusable), retried
    later (throttling, a transient error with retries left) or failed for good."""
    job, status = out.job, out.status
    if status == 0 and out.bad_id:
        return Verdict(
            st.MarkUnknown(id=job.msg_id, reason=out.bad_id, at=now),
            "submitted",
            "accepted with an unusable message_id",
        )
    if status == 0:
        ids = [receipts.canonical_id(i) for i in out.smsc_ids]
        receipt = operator.registered_delivery
        op = st.MarkSent(
            id=job.msg_id, smsc_ids=ids, at=now, receipt=receipt, operator=operator.name
        )
        return Verdict(op, "submitted")
    desc = describe_status(status)
    if status in c.THROTTLE_STATUSES:
        return Verdict(st.Requeue(id=job.msg_id, due=0.0, reason=desc), "requeued", desc)
    if status in c.TRANSIENT_STATUSES and job.attempts < operator.max_retries:
        due = now + RETRY_BASE * 2**job.attempts
        return Verdict(
            st.Requeue(id=job.msg_id, due=due, reason=desc, retry=True), "requeued", desc
        )
    return Verdict(st.Fail(id=job.msg_id, status=status, description=desc, at=now), "failed", desc)


def lost(out: Lost, on_crash_inflight: str, now: float) -> st.Op:
    """No response to some part (timeout, connection lost): handled as a crash would be."""
    reason = f"no response: {out.reason}"
    if on_crash_inflight == "resend":
        return st.Requeue(id=out.job.msg_id, due=0.0, reason=reason)
    return st.MarkUnknown(id=out.job.msg_id, reason=reason, at=now)


def unsent(out: Unsent) -> st.Op:
    """Taken, never written: back to the queue, at its place."""
    return st.Requeue(id=out.job.msg_id, due=0.0, reason="not sent")


def vetoed(out: Vetoed, now: float) -> st.Op:
    """A STOP came in: skipped. Its window closed: back to the queue, whose next claim
    schedules it for the next opening."""
    if out.reason == WINDOW_CLOSED:
        return st.Requeue(id=out.job.msg_id, due=0.0, reason=WINDOW_CLOSED)
    return st.Skip(id=out.job.msg_id, reason=out.reason, at=now)


def receipt(
    pdu: DeliverSm | DataSm, operator: OperatorConfig, now: float
) -> receipts.ReceiptError | tuple[receipts.Receipt, st.RecordReceipt]:
    """A receipt's record, matched through the operator's SMSC ids; an unmatched one is held."""
    rec = receipts.parse_receipt_pdu(pdu)
    if isinstance(rec, receipts.ReceiptError):
        return rec
    op = st.RecordReceipt(
        candidates=(receipts.canonical_id(rec.message_id),),
        state=rec.state,
        final=rec.final,
        stat=rec.stat,
        err=rec.err,
        network_error=rec.network_error[1] if rec.network_error else None,
        at=now,
        hold=True,
        operator=operator.name,
        forms=operator.receipt_id_form,
    )
    return rec, op


def mo(pdu: DeliverSm | DataSm, bind: str, optout: OptOutRules, now: float) -> st.RecordMo:
    """An inbound SMS: its text, and whether it stop-lists its sender (and why)."""
    sm = getattr(pdu, "short_message", b"") or pdu.message_payload or b""
    text = encoding.decode_text(encoding.strip_udh(sm, pdu.esm_class), pdu.data_coding)
    verdict = optout.check(text)
    return st.RecordMo(
        source="+" + pdu.source_addr.removeprefix("+"),
        destination=pdu.destination_addr,
        text=text,
        at=now,
        bind=bind,
        stop=verdict.stop,
        stop_rule=verdict.why,
    )

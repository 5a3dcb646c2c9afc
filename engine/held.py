"""Receipts that came before their message's submit_sm_resp was committed.

A receipt that matches no SMSC id yet is held, unanswered, and recorded again
after later commits (or once a second); one held longer than HOLD_SECONDS, or
once nothing is in flight any more, is recorded as unmatched and answered. The
hold is bounded: past HOLD_RECEIPTS a receipt is recorded as unmatched at once.
One that came on a connection since closed is dropped: the SMSC sends it again.
"""

from __future__ import annotations

from collections import deque

import msgspec

from engine import store as st
from engine.net.jobs import Inbound

HOLD_RECEIPTS = 10_000
HOLD_SECONDS = 30.0

Held = tuple[float, Inbound, st.RecordReceipt]  # (held since, the PDU, its record)


class HeldReceipts:
    def __init__(self, limit: int = HOLD_RECEIPTS, seconds: float = HOLD_SECONDS) -> None:
        self.limit = limit
        self.seconds = seconds
        self._held: deque[Held] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, since: float, inbound: Inbound, op: st.RecordReceipt) -> bool:
        """Keep it for another try; False when the hold is full."""
        if len(self._held) >= self.limit:
            return False
        self._held.append((since, inbound, op))
        return True

    def retry(self, now: float, give_up: bool = False) -> list[Held]:
        """Every held receipt to record again; those held too long (or all, ``give_up``)
        now as unmatched (``hold=False``): counted and answered whatever the result."""
        held, self._held = self._held, deque()
        out = []
        for since, inbound, op in held:
            if inbound.connection is not None and inbound.connection.closed:
                continue
            if give_up or now - since > self.seconds:
                op = msgspec.structs.replace(op, hold=False)
            out.append((since, inbound, op))
        return out

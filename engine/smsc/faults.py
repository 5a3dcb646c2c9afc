"""Misbehaviour on purpose: what real SMSCs have been seen to send (``volley smsc --fault``).

Tests and the demo use these to show that whatever one SMSC sends, only that
connection suffers: the engine resets it, counts and logs the fault, and every
other bind and operator keeps sending. Each fault strikes every
``fault_every``-th time its event comes (a submit, an acceptance, a receipt);
the bind-time ones strike at every bind.
"""

from __future__ import annotations

from collections import Counter

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p

FAULTS = {
    "wrong-response": "answer a submit_sm with enquire_link_resp, bind_transceiver_resp or "
    "unbind_resp (in turn) of the same sequence",
    "empty-id": "accept a submit_sm with an empty message_id",
    "blank-id": "accept a submit_sm with a message_id of spaces",
    "long-id": "accept a submit_sm with a 600-octet message_id",
    "cut": "close the connection on a submit_sm, unanswered (the Nth of each connection)",
    "receipt-blank-id": "send a receipt whose id is only spaces",
    "receipt-long-id": "send a receipt whose id has 600 characters (in message_payload)",
    "mo-on-bind": "send an MO (--mo-text) in the same write as bind_resp",
    "unknown-pdus": "send an unknown command_id and an alert_notification with bind_resp",
    "trickle": "after binding, answer nothing and send one byte every 1.5 s, never a whole PDU",
}
LONG_ID = "x" * 600
_WRONG = (p.EnquireLinkResp, p.BindTransceiverResp, p.UnbindResp)


class Faults:
    """Which faults are on, and when each strikes next."""

    def __init__(self, names: frozenset[str], every: int) -> None:
        unknown = set(names) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}: expected {sorted(FAULTS)}")
        self.names = names
        self.every = max(1, every)
        self._seen: Counter[str] = Counter()
        self.struck: Counter[str] = Counter()

    def on(self, name: str) -> bool:
        return name in self.names

    def strikes(self, name: str) -> bool:
        """Whether fault ``name`` hits this event (every ``every``-th one)."""
        if name not in self.names:
            return False
        self._seen[name] += 1
        if self._seen[name] % self.every:
            return False
        self.struck[name] += 1
        return True

    def accept_fault(self) -> str:
        """The id fault this acceptance carries, if any."""
        for name in ("empty-id", "blank-id", "long-id"):
            if self.strikes(name):
                return name
        return ""


def wrong_response(req: p.Pdu, nth: int) -> bytes:
    return codec.encode(_WRONG[nth % len(_WRONG)](sequence=req.sequence))


def accepted_with(req: p.Pdu, fault: str) -> bytes:
    """A submit_sm_resp (status 0) with the message_id of ``fault``, encoded by hand: no
    session would write a 600-octet C-Octet String."""
    mid = {"empty-id": b"", "blank-id": b"   ", "long-id": LONG_ID.encode()}[fault]
    body = mid + b"\0"
    return codec.HEADER.pack(16 + len(body), c.SUBMIT_SM_RESP, 0, req.sequence) + body


def trickle_bytes() -> bytes:
    """A PDU of a legal length, 60,000 octets: at a byte per 1.5 s it never arrives whole."""
    return codec.HEADER.pack(60_000, c.ENQUIRE_LINK_RESP, 0, 1) + bytes(60_000 - 16)


def bind_extras(faults: Faults) -> bytes:
    """What ``unknown-pdus`` writes after bind_resp: an unknown command and an alert."""
    if not faults.on("unknown-pdus"):
        return b""
    faults.struck["unknown-pdus"] += 1
    unknown = codec.HEADER.pack(16, 0x00000099, 0, 0x7FFF0001)
    alert = codec.encode(
        p.AlertNotification(sequence=0x7FFF0002, source_addr="79161234567", esme_addr="volley")
    )
    return unknown + alert


def receipt_with_bad_id(receipt: p.DeliverSm, fault: str) -> p.DeliverSm:
    import msgspec

    if fault == "receipt-blank-id":
        text = receipt.short_message.split(b" ", 1)[1]
        return msgspec.structs.replace(
            receipt, receipted_message_id="   ", short_message=b"id:    " + text
        )
    text = receipt.short_message.split(b" ", 1)[1]
    return msgspec.structs.replace(
        receipt,
        receipted_message_id=None,
        short_message=b"",
        message_payload=f"id:{LONG_ID} ".encode() + text,
    )

"""Straight-line decoders for the PDUs a busy ESME reads most: submit_sm_resp and deliver_sm.

Each takes a PDU's body in place (``buf[pos:end]``) and returns the decoded
Struct, or None when anything is unusual (a TLV it does not read, a field at
its limit, a body cut short): the general decoder (engine/smpp/bodies.py) then
decodes it and names what is wrong. Both are property-tested to give exactly
what the general decoder gives.

deliver_sm also exists compiled (engine/smpp/_speedups.c, built by setup.py
where a C compiler is found; about 4x faster): :data:`FAST` takes it when it
was built, unless ``VOLLEY_PURE_PYTHON=1``. The tests run both.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from engine.smpp import constants as c
from engine.smpp import layout as L
from engine.smpp import pdu as p

_RECEIPTED_ID, _STATE, _NETWORK_ERROR, _PAYLOAD = (
    c.TLV_RECEIPTED_MESSAGE_ID,
    c.TLV_MESSAGE_STATE,
    c.TLV_NETWORK_ERROR_CODE,
    c.TLV_MESSAGE_PAYLOAD,
)
Fast = Callable[[bytes, int, int, int, int], p.Pdu | None]


def submit_sm_resp(buf: bytes, pos: int, end: int, seq: int, status: int) -> p.Pdu | None:
    nul = buf.find(b"\0", pos, end)
    if nul == end - 1 and nul - pos < L.MESSAGE_ID:
        return p.SubmitSmResp(
            sequence=seq, status=status, message_id=buf[pos:nul].decode("latin-1")
        )
    if pos == end and status:
        return p.SubmitSmResp(sequence=seq, status=status)
    return None


def deliver_sm(buf: bytes, pos: int, end: int, seq: int, status: int) -> p.Pdu | None:
    find = buf.find
    n1 = find(b"\0", pos, min(end, pos + L.SERVICE_TYPE))
    if n1 < 0:
        return None
    n2 = find(b"\0", n1 + 3, min(end, n1 + 3 + L.ADDR_LEN))
    if n2 < 0:
        return None
    n3 = find(b"\0", n2 + 3, min(end, n2 + 3 + L.ADDR_LEN))
    if n3 < 0 or n3 + 6 > end or buf[n3 + 4] or buf[n3 + 5]:
        return None  # schedule_delivery_time and validity_period are empty in what an SMSC sends
    sm_start = n3 + 11
    if sm_start > end:
        return None
    sm_end = sm_start + buf[sm_start - 1]
    if sm_end > end:
        return None
    receipted: str | None = None
    state: int | None = None
    network_error: bytes | None = None
    payload: bytes | None = None
    at = sm_end
    while at < end:
        if at + 4 > end:
            return None
        tag = buf[at] << 8 | buf[at + 1]
        start = at + 4
        at = start + (buf[at + 2] << 8 | buf[at + 3])
        if at > end:
            return None
        if tag == _RECEIPTED_ID:
            nul = find(b"\0", start, at)
            if nul < 0 or nul - start >= L.MESSAGE_ID:
                return None
            receipted = buf[start:nul].decode("latin-1")
        elif tag == _STATE and at - start == 1:
            state = buf[start]
        elif tag == _NETWORK_ERROR:
            network_error = buf[start:at]
        elif tag == _PAYLOAD:
            payload = buf[start:at]
        else:
            return None  # SAR, references, anything else: the general decoder keeps them
    if payload is not None and sm_end > sm_start:
        return None
    return p.DeliverSm(
        sequence=seq,
        status=status,
        service_type=buf[pos:n1].decode("latin-1"),
        source_addr_ton=buf[n1 + 1],
        source_addr_npi=buf[n1 + 2],
        source_addr=buf[n1 + 3 : n2].decode("latin-1"),
        dest_addr_ton=buf[n2 + 1],
        dest_addr_npi=buf[n2 + 2],
        destination_addr=buf[n2 + 3 : n3].decode("latin-1"),
        esm_class=buf[n3 + 1],
        protocol_id=buf[n3 + 2],
        priority_flag=buf[n3 + 3],
        registered_delivery=buf[n3 + 6],
        replace_if_present_flag=buf[n3 + 7],
        data_coding=buf[n3 + 8],
        sm_default_msg_id=buf[n3 + 9],
        short_message=buf[sm_start:sm_end],
        receipted_message_id=receipted,
        message_state=state,
        network_error_code=network_error,
        message_payload=payload,
    )


def compiled_deliver_sm() -> Fast | None:
    """The compiled deliver_sm, if it was built (and not turned off)."""
    if os.environ.get("VOLLEY_PURE_PYTHON"):
        return None
    try:
        from engine.smpp import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    return functools.partial(_speedups.deliver_sm, p.DeliverSm)


COMPILED = compiled_deliver_sm()
FAST: dict[int, Fast] = {
    c.SUBMIT_SM_RESP: submit_sm_resp,
    c.DELIVER_SM: COMPILED or deliver_sm,
}

"""Encoding SMPP 3.4 PDUs: Structs to bytes.

C-Octet strings are written as latin-1 so every byte round-trips; max lengths
include the NUL, as in the specification. Encoding errors are
:class:`LocalProtocolError` naming the PDU and the field.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from engine.smpp import constants as c
from engine.smpp import layout as L
from engine.smpp import pdu as p
from engine.smpp.errors import LocalProtocolError

_NAMES = {cls.command_id: cls.__name__ for cls in p.ALL}


def command_name(command_id: int) -> str:
    """The PDU's class name, or its id in hex when unknown."""
    return _NAMES.get(command_id, f"command 0x{command_id:08X}")


_name = command_name


# -- encoding ---------------------------------------------------------------


def _cstr(value: str, limit: int, pdu: p.Pdu, field: str) -> bytes:
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(
            f"{type(pdu).__name__}.{field}: {value!r} is not latin-1 encodable"
        ) from exc
    if len(raw) >= limit or b"\0" in raw:
        raise LocalProtocolError(
            f"{type(pdu).__name__}.{field}: {value!r} longer than {limit - 1} octets or has NUL"
        )
    return raw + b"\0"


def _time(value: str, pdu: p.Pdu, field: str) -> bytes:
    if value and len(value) != 16:
        raise LocalProtocolError(
            f"{type(pdu).__name__}.{field}: {value!r} must be empty or 16 characters"
        )
    return _cstr(value, L.TIME, pdu, field)


def _int_tlv(tag: int, size: int, value: int, pdu: p.Pdu, field: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise LocalProtocolError(f"{type(pdu).__name__}.{field}: {value} out of range")
    return L.TLV.pack(tag, size) + value.to_bytes(size, "big")


def _raw_tlv(tag: int, value: bytes, pdu: p.Pdu, field: str) -> bytes:
    if len(value) > 0xFFFF:
        raise LocalProtocolError(f"{type(pdu).__name__}.{field}: longer than 65535 octets")
    return L.TLV.pack(tag, len(value)) + value


def _message_tlvs(m: p.SubmitSm | p.DeliverSm | p.DataSm) -> bytes:
    out = []
    if m.user_message_reference is not None:
        out.append(_int_tlv(c.TLV_USER_MESSAGE_REFERENCE, 2, m.user_message_reference, m, "umr"))
    if m.sar_msg_ref_num is not None:
        out.append(_int_tlv(c.TLV_SAR_MSG_REF_NUM, 2, m.sar_msg_ref_num, m, "sar_msg_ref_num"))
    if m.sar_total_segments is not None:
        out.append(
            _int_tlv(c.TLV_SAR_TOTAL_SEGMENTS, 1, m.sar_total_segments, m, "sar_total_segments")
        )
    if m.sar_segment_seqnum is not None:
        out.append(
            _int_tlv(c.TLV_SAR_SEGMENT_SEQNUM, 1, m.sar_segment_seqnum, m, "sar_segment_seqnum")
        )
    if m.receipted_message_id is not None:
        out.append(
            _raw_tlv(
                c.TLV_RECEIPTED_MESSAGE_ID,
                _cstr(m.receipted_message_id, L.MESSAGE_ID, m, "receipted_message_id"),
                m,
                "receipted_message_id",
            )
        )
    if m.message_state is not None:
        out.append(_int_tlv(c.TLV_MESSAGE_STATE, 1, m.message_state, m, "message_state"))
    if m.network_error_code is not None:
        out.append(
            _raw_tlv(c.TLV_NETWORK_ERROR_CODE, m.network_error_code, m, "network_error_code")
        )
    if m.message_payload is not None:
        out.append(_raw_tlv(c.TLV_MESSAGE_PAYLOAD, m.message_payload, m, "message_payload"))
    for tag, value in m.tlvs:
        out.append(_raw_tlv(tag, value, m, f"tlv 0x{tag:04X}"))
    return b"".join(out)


def _enc_bind(b: p._Bind) -> bytes:
    return b"".join(
        (
            _cstr(b.system_id, L.SYSTEM_ID, b, "system_id"),
            _cstr(b.password, L.PASSWORD, b, "password"),
            _cstr(b.system_type, L.SYSTEM_TYPE, b, "system_type"),
            L.MSG_MID.pack(b.interface_version, b.addr_ton, b.addr_npi),
            _cstr(b.address_range, L.ADDRESS_RANGE, b, "address_range"),
        )
    )


def _enc_bind_resp(b: p._BindResp) -> bytes:
    body = _cstr(b.system_id, L.SYSTEM_ID, b, "system_id")
    if b.sc_interface_version is not None:
        body += _int_tlv(c.TLV_SC_INTERFACE_VERSION, 1, b.sc_interface_version, b, "sc_iv")
    for tag, value in b.tlvs:
        body += _raw_tlv(tag, value, b, f"tlv 0x{tag:04X}")
    return body


def _has_tlvs(m: p.SubmitSm | p.DeliverSm | p.DataSm) -> bool:
    return not (
        m.user_message_reference is None
        and m.sar_msg_ref_num is None
        and m.sar_total_segments is None
        and m.sar_segment_seqnum is None
        and m.receipted_message_id is None
        and m.message_state is None
        and m.network_error_code is None
        and m.message_payload is None
        and not m.tlvs
    )


def _enc_message(m: p.SubmitSm | p.DeliverSm) -> bytes:
    sm = m.short_message
    try:
        service = m.service_type.encode("latin-1")
        src = m.source_addr.encode("latin-1")
        dst = m.destination_addr.encode("latin-1")
        sched = m.schedule_delivery_time.encode("latin-1")
        valid = m.validity_period.encode("latin-1")
    except UnicodeEncodeError:
        service = src = dst = sched = valid = b"\0" * 99
    if (
        len(service) >= L.SERVICE_TYPE
        or len(src) >= L.ADDR_LEN
        or len(dst) >= L.ADDR_LEN
        or len(sched) not in (0, 16)
        or len(valid) not in (0, 16)
        or len(sm) > 254
        or b"\0" in service + src + dst + sched + valid
    ):
        return _enc_message_checked(m)
    if sm and m.message_payload is not None:
        raise LocalProtocolError(
            f"{type(m).__name__}: short_message and message_payload are mutually exclusive"
        )
    try:
        return b"".join(
            (
                service,
                L.ZERO_ADDR.pack(0, m.source_addr_ton, m.source_addr_npi),
                src,
                L.ZERO_ADDR.pack(0, m.dest_addr_ton, m.dest_addr_npi),
                dst,
                L.ZERO_MID.pack(0, m.esm_class, m.protocol_id, m.priority_flag),
                sched,
                b"\0",
                valid,
                L.ZERO_TAIL.pack(
                    0,
                    m.registered_delivery,
                    m.replace_if_present_flag,
                    m.data_coding,
                    m.sm_default_msg_id,
                    len(sm),
                ),
                sm,
                _message_tlvs(m) if _has_tlvs(m) else b"",
            )
        )
    except struct.error as exc:
        raise LocalProtocolError(f"{type(m).__name__}: an integer field is out of range") from exc


def _enc_message_checked(m: p.SubmitSm | p.DeliverSm) -> bytes:
    """The slow path: find the offending field and say which it is."""
    _cstr(m.service_type, L.SERVICE_TYPE, m, "service_type")
    _cstr(m.source_addr, L.ADDR_LEN, m, "source_addr")
    _cstr(m.destination_addr, L.ADDR_LEN, m, "destination_addr")
    _time(m.schedule_delivery_time, m, "schedule_delivery_time")
    _time(m.validity_period, m, "validity_period")
    raise LocalProtocolError(
        f"{type(m).__name__}.short_message: {len(m.short_message)} octets, "
        "at most 254 (use message_payload)"
    )


def _enc_data_sm(m: p.DataSm) -> bytes:
    try:
        return b"".join(
            (
                _cstr(m.service_type, L.SERVICE_TYPE, m, "service_type"),
                L.ADDR.pack(m.source_addr_ton, m.source_addr_npi),
                _cstr(m.source_addr, L.ADDR_LEN, m, "source_addr"),
                L.ADDR.pack(m.dest_addr_ton, m.dest_addr_npi),
                _cstr(m.destination_addr, L.ADDR_LEN, m, "destination_addr"),
                L.DATA_MID.pack(m.esm_class, m.registered_delivery, m.data_coding),
                _message_tlvs(m),
            )
        )
    except struct.error as exc:
        raise LocalProtocolError("DataSm: an integer field is out of range") from exc


def _enc_message_resp(r: p._MessageResp) -> bytes:
    body = _cstr(r.message_id, L.MESSAGE_ID, r, "message_id")
    for tag, value in r.tlvs:
        body += _raw_tlv(tag, value, r, f"tlv 0x{tag:04X}")
    return body


def _enc_query(q: p.QuerySm) -> bytes:
    return (
        _cstr(q.message_id, L.MESSAGE_ID, q, "message_id")
        + L.ADDR.pack(q.source_addr_ton, q.source_addr_npi)
        + _cstr(q.source_addr, L.ADDR_LEN, q, "source_addr")
    )


def _enc_query_resp(q: p.QuerySmResp) -> bytes:
    return (
        _cstr(q.message_id, L.MESSAGE_ID, q, "message_id")
        + _time(q.final_date, q, "final_date")
        + L.QUERY_TAIL.pack(q.message_state, q.error_code)
    )


def _enc_alert(a: p.AlertNotification) -> bytes:
    body = (
        L.ADDR.pack(a.source_addr_ton, a.source_addr_npi)
        + _cstr(a.source_addr, L.ALERT_ADDR, a, "source_addr")
        + L.ADDR.pack(a.esme_addr_ton, a.esme_addr_npi)
        + _cstr(a.esme_addr, L.ALERT_ADDR, a, "esme_addr")
    )
    for tag, value in a.tlvs:
        body += _raw_tlv(tag, value, a, f"tlv 0x{tag:04X}")
    return body


def _enc_empty(_: p.Pdu) -> bytes:
    return b""


_ENCODERS: dict[type[p.Pdu], Callable[[Any], bytes]] = {
    p.BindTransmitter: _enc_bind,
    p.BindReceiver: _enc_bind,
    p.BindTransceiver: _enc_bind,
    p.BindTransmitterResp: _enc_bind_resp,
    p.BindReceiverResp: _enc_bind_resp,
    p.BindTransceiverResp: _enc_bind_resp,
    p.SubmitSm: _enc_message,
    p.DeliverSm: _enc_message,
    p.SubmitSmResp: _enc_message_resp,
    p.DeliverSmResp: _enc_message_resp,
    p.DataSm: _enc_data_sm,
    p.DataSmResp: _enc_message_resp,
    p.QuerySm: _enc_query,
    p.QuerySmResp: _enc_query_resp,
    p.AlertNotification: _enc_alert,
    p.EnquireLink: _enc_empty,
    p.EnquireLinkResp: _enc_empty,
    p.Unbind: _enc_empty,
    p.UnbindResp: _enc_empty,
    p.GenericNack: _enc_empty,
}


def encode(pdu: p.Pdu) -> bytes:
    """The PDU's bytes, header included; LocalProtocolError on an unencodable field."""
    body = _ENCODERS[type(pdu)](pdu)
    if not 0 <= pdu.sequence <= 0xFFFFFFFF or not 0 <= pdu.status <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{type(pdu).__name__}: sequence or status out of range")
    return L.HEADER.pack(16 + len(body), pdu.command_id, pdu.status, pdu.sequence) + body


def encode_body(pdu: p.Pdu) -> bytes:
    """The PDU's body, without its header: encoded once, sent later under any sequence
    number (``Session.send_body``); LocalProtocolError on an unencodable field."""
    return _ENCODERS[type(pdu)](pdu)

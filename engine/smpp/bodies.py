"""The bodies of SMPP 3.4 PDUs: a reader whose errors name the field and the offset, and a
decoder per command_id (a straight-line scan for submit_sm and deliver_sm)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from engine.smpp import constants as c
from engine.smpp import layout as L
from engine.smpp import pdu as p
from engine.smpp.encode import command_name
from engine.smpp.errors import RemoteProtocolError

_name = command_name


class _Reader:
    """A cursor over one PDU's bytes that raises errors naming the field and offset."""

    __slots__ = ("buf", "cid", "end", "pos", "seq", "status")

    def __init__(self, buf: bytes, pos: int, end: int, cid: int, seq: int, status: int) -> None:
        self.buf, self.pos, self.end, self.cid, self.seq = buf, pos, end, cid, seq
        self.status = status

    def fail(self, field: str, what: str, status: int, offset: int | None = None) -> None:
        off = self.pos if offset is None else offset
        raise RemoteProtocolError(
            f"{_name(self.cid)} seq {self.seq}: {field} at offset {off}: {what}",
            command_status=status,
            command_id=self.cid,
            sequence=self.seq,
            field=field,
            offset=off,
            pdu_status=self.status,
        )

    def cstr(self, field: str, limit: int) -> str:
        buf, pos = self.buf, self.pos
        nul = buf.find(b"\0", pos, min(self.end, pos + limit))
        if nul < 0:
            if self.end - pos < limit:
                self.fail(field, "missing NUL terminator (truncated)", c.ESME_RINVCMDLEN)
            self.fail(field, f"longer than {limit - 1} octets", c.ESME_RINVMSGLEN)
        self.pos = nul + 1
        return buf[pos:nul].decode("latin-1")

    def time(self, field: str) -> str:
        value = self.cstr(field, L.TIME)
        if value and len(value) != 16:
            self.fail(field, f"expected 0 or 16 characters, got {len(value)}", c.ESME_RINVMSGLEN)
        return value

    def unpack(self, st: struct.Struct, field: str) -> tuple[int, ...]:
        if self.pos + st.size > self.end:
            self.fail(field, f"truncated: needs {st.size} octets", c.ESME_RINVCMDLEN)
        value = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > self.end:
            self.fail(field, f"truncated: needs {n} octets", c.ESME_RINVMSGLEN)
        pos = self.pos
        self.pos = pos + n
        return self.buf[pos : pos + n]

    def tlvs(self) -> dict[int, bytes] | None:
        if self.pos >= self.end:
            return None
        buf, pos, end = self.buf, self.pos, self.end
        out: dict[int, bytes] = {}
        while pos < end:
            if pos + 4 > end:
                self.fail("tlv", "truncated TLV header", c.ESME_RINVOPTPARSTREAM, pos)
            tag, length = L.TLV.unpack_from(buf, pos)
            if pos + 4 + length > end:
                self.fail(
                    f"tlv 0x{tag:04X}", f"length {length} runs past the end", c.ESME_RINVTLVLEN, pos
                )
            out[tag] = buf[pos + 4 : pos + 4 + length]
            pos += 4 + length
        self.pos = pos
        return out


_INT_TLVS = {
    c.TLV_USER_MESSAGE_REFERENCE: ("user_message_reference", 2),
    c.TLV_SAR_MSG_REF_NUM: ("sar_msg_ref_num", 2),
    c.TLV_SAR_TOTAL_SEGMENTS: ("sar_total_segments", 1),
    c.TLV_SAR_SEGMENT_SEQNUM: ("sar_segment_seqnum", 1),
    c.TLV_MESSAGE_STATE: ("message_state", 1),
}


def _message_tlv_fields(r: _Reader, raw: dict[int, bytes]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    other = []
    for tag, value in raw.items():
        spec = _INT_TLVS.get(tag)
        if spec is not None:
            name, size = spec
            if len(value) != size:
                r.fail(f"tlv {name}", f"length {len(value)}, expected {size}", c.ESME_RINVTLVLEN)
            fields[name] = int.from_bytes(value, "big")
        elif tag == c.TLV_RECEIPTED_MESSAGE_ID:
            fields["receipted_message_id"] = value.split(b"\0", 1)[0].decode("latin-1")
        elif tag == c.TLV_NETWORK_ERROR_CODE:
            fields["network_error_code"] = value
        elif tag == c.TLV_MESSAGE_PAYLOAD:
            fields["message_payload"] = value
        else:
            other.append((tag, value))
    if other:
        fields["tlvs"] = tuple(other)
    return fields


def _dec_bind(cls: type[p._Bind]) -> Callable[[_Reader, int, int], p.Pdu]:
    def dec(r: _Reader, seq: int, status: int) -> p.Pdu:
        system_id = r.cstr("system_id", L.SYSTEM_ID)
        password = r.cstr("password", L.PASSWORD)
        system_type = r.cstr("system_type", L.SYSTEM_TYPE)
        version, ton, npi = r.unpack(L.MSG_MID, "interface_version")
        address_range = r.cstr("address_range", L.ADDRESS_RANGE)
        return cls(
            sequence=seq,
            status=status,
            system_id=system_id,
            password=password,
            system_type=system_type,
            interface_version=version,
            addr_ton=ton,
            addr_npi=npi,
            address_range=address_range,
        )

    return dec


def _dec_bind_resp(cls: type[p._BindResp]) -> Callable[[_Reader, int, int], p.Pdu]:
    def dec(r: _Reader, seq: int, status: int) -> p.Pdu:
        if r.pos >= r.end and status:
            return cls(sequence=seq, status=status)
        system_id = r.cstr("system_id", L.SYSTEM_ID)
        raw = r.tlvs() or {}
        version = raw.pop(c.TLV_SC_INTERFACE_VERSION, None)
        if version is not None and len(version) != 1:
            r.fail("tlv sc_interface_version", "expected 1 octet", c.ESME_RINVTLVLEN)
        return cls(
            sequence=seq,
            status=status,
            system_id=system_id,
            sc_interface_version=version[0] if version is not None else None,
            tlvs=tuple(raw.items()),
        )

    return dec


def _dec_message_checked(r: _Reader, seq: int, status: int) -> dict[str, Any]:
    service_type = r.cstr("service_type", L.SERVICE_TYPE)
    src_ton, src_npi = r.unpack(L.ADDR, "source_addr_ton")
    source_addr = r.cstr("source_addr", L.ADDR_LEN)
    dst_ton, dst_npi = r.unpack(L.ADDR, "dest_addr_ton")
    destination_addr = r.cstr("destination_addr", L.ADDR_LEN)
    esm, pid, prio = r.unpack(L.MSG_MID, "esm_class")
    schedule = r.time("schedule_delivery_time")
    validity = r.time("validity_period")
    reg, replace, dcs, default_id, sm_length = r.unpack(L.MSG_TAIL, "registered_delivery")
    short_message = r.take(sm_length, "short_message")
    raw = r.tlvs()
    fields = _message_tlv_fields(r, raw) if raw else {}
    fields.update(
        sequence=seq,
        status=status,
        service_type=service_type,
        source_addr_ton=src_ton,
        source_addr_npi=src_npi,
        source_addr=source_addr,
        dest_addr_ton=dst_ton,
        dest_addr_npi=dst_npi,
        destination_addr=destination_addr,
        esm_class=esm,
        protocol_id=pid,
        priority_flag=prio,
        schedule_delivery_time=schedule,
        validity_period=validity,
        registered_delivery=reg,
        replace_if_present_flag=replace,
        data_coding=dcs,
        sm_default_msg_id=default_id,
        short_message=short_message,
    )
    return fields


def _dec_message(cls: type[p.SubmitSm | p.DeliverSm]) -> Callable[[_Reader, int, int], p.Pdu]:
    """A straight-line scan for well-formed PDUs; anything odd goes the checked way."""

    def dec(r: _Reader, seq: int, status: int) -> p.Pdu:
        buf, pos, end = r.buf, r.pos, r.end
        find = buf.find
        n1 = find(b"\0", pos, min(end, pos + L.SERVICE_TYPE))
        n2 = find(b"\0", n1 + 3, min(end, n1 + 3 + L.ADDR_LEN)) if n1 >= 0 else -1
        n3 = find(b"\0", n2 + 3, min(end, n2 + 3 + L.ADDR_LEN)) if n2 >= 0 else -1
        n4 = find(b"\0", n3 + 4, min(end, n3 + 4 + L.TIME)) if n3 >= 0 else -1
        n5 = find(b"\0", n4 + 1, min(end, n4 + 1 + L.TIME)) if n4 >= 0 else -1
        sm_start = n5 + 6
        if (
            n5 < 0
            or sm_start > end
            or n4 - n3 - 4 not in (0, 16)
            or n5 - n4 - 1 not in (0, 16)
            or sm_start + buf[sm_start - 1] > end
        ):
            return cls(**_dec_message_checked(r, seq, status))
        sm_end = sm_start + buf[sm_start - 1]
        if sm_end < end:
            fields = _message_tlv_fields(r, _tlvs_at(r, sm_end))
        else:
            fields = {}
            r.pos = end
        return cls(
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
            schedule_delivery_time=buf[n3 + 4 : n4].decode("latin-1"),
            validity_period=buf[n4 + 1 : n5].decode("latin-1"),
            registered_delivery=buf[n5 + 1],
            replace_if_present_flag=buf[n5 + 2],
            data_coding=buf[n5 + 3],
            sm_default_msg_id=buf[n5 + 4],
            short_message=buf[sm_start:sm_end],
            **fields,
        )

    return dec


def _tlvs_at(r: _Reader, pos: int) -> dict[int, bytes]:
    r.pos = pos
    return r.tlvs() or {}


def _dec_data_sm(r: _Reader, seq: int, status: int) -> p.Pdu:
    service_type = r.cstr("service_type", L.SERVICE_TYPE)
    src_ton, src_npi = r.unpack(L.ADDR, "source_addr_ton")
    source_addr = r.cstr("source_addr", L.ADDR_LEN)
    dst_ton, dst_npi = r.unpack(L.ADDR, "dest_addr_ton")
    destination_addr = r.cstr("destination_addr", L.ADDR_LEN)
    esm, reg, dcs = r.unpack(L.DATA_MID, "esm_class")
    raw = r.tlvs()
    extra = _message_tlv_fields(r, raw) if raw else {}
    return p.DataSm(
        sequence=seq,
        status=status,
        service_type=service_type,
        source_addr_ton=src_ton,
        source_addr_npi=src_npi,
        source_addr=source_addr,
        dest_addr_ton=dst_ton,
        dest_addr_npi=dst_npi,
        destination_addr=destination_addr,
        esm_class=esm,
        registered_delivery=reg,
        data_coding=dcs,
        **extra,
    )


def _dec_message_resp(cls: type[p._MessageResp]) -> Callable[[_Reader, int, int], p.Pdu]:
    def dec(r: _Reader, seq: int, status: int) -> p.Pdu:
        if status and (r.pos >= r.end or (r.end - r.pos == 1 and r.buf[r.pos] == 0)):
            return cls(sequence=seq, status=status)
        if r.pos >= r.end:
            r.fail("message_id", "missing", c.ESME_RINVCMDLEN)
        message_id = r.cstr("message_id", L.MESSAGE_ID)
        raw = r.tlvs()
        if raw:
            return cls(sequence=seq, status=status, message_id=message_id, tlvs=tuple(raw.items()))
        return cls(sequence=seq, status=status, message_id=message_id)

    return dec


def _dec_submit_resp(r: _Reader, seq: int, status: int) -> p.Pdu:
    buf, pos, end = r.buf, r.pos, r.end
    nul = buf.find(b"\0", pos, end)
    if nul == end - 1 and nul - pos < L.MESSAGE_ID:
        r.pos = end
        return p.SubmitSmResp(
            sequence=seq, status=status, message_id=buf[pos:nul].decode("latin-1")
        )
    return _dec_submit_resp_slow(r, seq, status)


_dec_submit_resp_slow = _dec_message_resp(p.SubmitSmResp)


def _dec_query(r: _Reader, seq: int, status: int) -> p.Pdu:
    message_id = r.cstr("message_id", L.MESSAGE_ID)
    ton, npi = r.unpack(L.ADDR, "source_addr_ton")
    source_addr = r.cstr("source_addr", L.ADDR_LEN)
    return p.QuerySm(
        sequence=seq,
        status=status,
        message_id=message_id,
        source_addr_ton=ton,
        source_addr_npi=npi,
        source_addr=source_addr,
    )


def _dec_query_resp(r: _Reader, seq: int, status: int) -> p.Pdu:
    if status and r.pos >= r.end:
        return p.QuerySmResp(sequence=seq, status=status)
    message_id = r.cstr("message_id", L.MESSAGE_ID)
    final_date = r.time("final_date")
    state, error = r.unpack(L.QUERY_TAIL, "message_state")
    return p.QuerySmResp(
        sequence=seq,
        status=status,
        message_id=message_id,
        final_date=final_date,
        message_state=state,
        error_code=error,
    )


def _dec_alert(r: _Reader, seq: int, status: int) -> p.Pdu:
    ton, npi = r.unpack(L.ADDR, "source_addr_ton")
    source_addr = r.cstr("source_addr", L.ALERT_ADDR)
    eton, enpi = r.unpack(L.ADDR, "esme_addr_ton")
    esme_addr = r.cstr("esme_addr", L.ALERT_ADDR)
    raw = r.tlvs() or {}
    return p.AlertNotification(
        sequence=seq,
        status=status,
        source_addr_ton=ton,
        source_addr_npi=npi,
        source_addr=source_addr,
        esme_addr_ton=eton,
        esme_addr_npi=enpi,
        esme_addr=esme_addr,
        tlvs=tuple(raw.items()),
    )


def _dec_empty(cls: type[p.Pdu]) -> Callable[[_Reader, int, int], p.Pdu]:
    def dec(r: _Reader, seq: int, status: int) -> p.Pdu:
        return cls(sequence=seq, status=status)

    return dec


_DECODERS: dict[int, Callable[[_Reader, int, int], p.Pdu]] = {
    c.BIND_TRANSMITTER: _dec_bind(p.BindTransmitter),
    c.BIND_RECEIVER: _dec_bind(p.BindReceiver),
    c.BIND_TRANSCEIVER: _dec_bind(p.BindTransceiver),
    c.BIND_TRANSMITTER_RESP: _dec_bind_resp(p.BindTransmitterResp),
    c.BIND_RECEIVER_RESP: _dec_bind_resp(p.BindReceiverResp),
    c.BIND_TRANSCEIVER_RESP: _dec_bind_resp(p.BindTransceiverResp),
    c.SUBMIT_SM: _dec_message(p.SubmitSm),
    c.DELIVER_SM: _dec_message(p.DeliverSm),
    c.SUBMIT_SM_RESP: _dec_submit_resp,
    c.DELIVER_SM_RESP: _dec_message_resp(p.DeliverSmResp),
    c.DATA_SM: _dec_data_sm,
    c.DATA_SM_RESP: _dec_message_resp(p.DataSmResp),
    c.QUERY_SM: _dec_query,
    c.QUERY_SM_RESP: _dec_query_resp,
    c.ALERT_NOTIFICATION: _dec_alert,
    c.ENQUIRE_LINK: _dec_empty(p.EnquireLink),
    c.ENQUIRE_LINK_RESP: _dec_empty(p.EnquireLinkResp),
    c.UNBIND: _dec_empty(p.Unbind),
    c.UNBIND_RESP: _dec_empty(p.UnbindResp),
    c.GENERIC_NACK: _dec_empty(p.GenericNack),
}
_HEADER_ONLY = frozenset(
    {c.ENQUIRE_LINK, c.ENQUIRE_LINK_RESP, c.UNBIND, c.UNBIND_RESP, c.GENERIC_NACK}
)


def decode_at(buf: bytes, start: int, length: int) -> p.Pdu:
    """The PDU at ``buf[start:start + length]`` (its header read again), field by field."""
    _, cid, status, seq = L.HEADER.unpack_from(buf, start)
    dec = _DECODERS.get(cid)
    if dec is None:
        raise RemoteProtocolError(
            f"{_name(cid)} seq {seq}: unknown command_id",
            command_status=c.ESME_RINVCMDID,
            command_id=cid,
            sequence=seq,
            field="command_id",
            offset=4,
            pdu_status=status,
        )
    end = start + length
    r = _Reader(buf, start + 16, end, cid, seq, status)
    pdu = dec(r, seq, status)
    if r.pos != end and cid not in _HEADER_ONLY:
        r.fail("body", f"{end - r.pos} unexpected trailing octets", c.ESME_RINVCMDLEN)
    return pdu

"""SMPP 3.4 PDUs as frozen msgspec Structs.

Field names follow the specification. Every PDU carries ``sequence`` and
``status`` (command_status). Optional TLVs that Volley understands are typed
fields defaulting to None; any other TLV is kept verbatim in ``tlvs`` as
``(tag, value)`` pairs so nothing the peer sent is lost.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from engine.smpp import constants as c

Tlvs = tuple[tuple[int, bytes], ...]


class Pdu(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int]
    sequence: int = 0
    status: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)


class _Bind(Pdu, frozen=True, gc=False, kw_only=True):
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


class _BindResp(Pdu, frozen=True, gc=False, kw_only=True):
    system_id: str = ""
    sc_interface_version: int | None = None
    tlvs: Tlvs = ()


class BindTransmitter(_Bind, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSMITTER


class BindTransmitterResp(_BindResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSMITTER_RESP


class BindReceiver(_Bind, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_RECEIVER


class BindReceiverResp(_BindResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_RECEIVER_RESP


class BindTransceiver(_Bind, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSCEIVER


class BindTransceiverResp(_BindResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.BIND_TRANSCEIVER_RESP


class _Message(Pdu, frozen=True, gc=False, kw_only=True):
    """The submit_sm / deliver_sm layout (they share it) with Volley's TLVs."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    # TLVs Volley reads or writes; None = absent.
    user_message_reference: int | None = None
    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None
    message_payload: bytes | None = None
    receipted_message_id: str | None = None
    message_state: int | None = None
    network_error_code: bytes | None = None
    tlvs: Tlvs = ()


class SubmitSm(_Message, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.SUBMIT_SM


class DeliverSm(_Message, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.DELIVER_SM


class _MessageResp(Pdu, frozen=True, gc=False, kw_only=True):
    message_id: str = ""
    tlvs: Tlvs = ()


class SubmitSmResp(_MessageResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.SUBMIT_SM_RESP


class DeliverSmResp(_MessageResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.DELIVER_SM_RESP


class DataSm(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.DATA_SM
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    user_message_reference: int | None = None
    sar_msg_ref_num: int | None = None
    sar_total_segments: int | None = None
    sar_segment_seqnum: int | None = None
    message_payload: bytes | None = None
    receipted_message_id: str | None = None
    message_state: int | None = None
    network_error_code: bytes | None = None
    tlvs: Tlvs = ()


class DataSmResp(_MessageResp, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.DATA_SM_RESP


class QuerySm(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.QUERY_SM
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


class QuerySmResp(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.QUERY_SM_RESP
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


class AlertNotification(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.ALERT_NOTIFICATION
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""
    tlvs: Tlvs = ()


class EnquireLink(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.ENQUIRE_LINK


class EnquireLinkResp(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.ENQUIRE_LINK_RESP


class Unbind(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.UNBIND


class UnbindResp(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.UNBIND_RESP


class GenericNack(Pdu, frozen=True, gc=False, kw_only=True):
    command_id: ClassVar[int] = c.GENERIC_NACK


ALL: tuple[type[Pdu], ...] = (
    BindTransmitter,
    BindTransmitterResp,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    DataSm,
    DataSmResp,
    QuerySm,
    QuerySmResp,
    AlertNotification,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
)
BY_COMMAND_ID: dict[int, type[Pdu]] = {cls.command_id: cls for cls in ALL}
RESPONSE_FOR: dict[type[Pdu], type[Pdu]] = {
    cls: BY_COMMAND_ID[cls.command_id | 0x80000000]
    for cls in ALL
    if not cls.command_id & 0x80000000 and cls.command_id | 0x80000000 in BY_COMMAND_ID
}

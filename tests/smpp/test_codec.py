"""The codec: golden bytes, round trips, smpplib as the oracle, hostile input."""

import pytest
import smpplib.smpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.errors import LocalProtocolError

BIND_HEX = "00000022 00000009 00000000 00000001 65736d653100 73656372657400 00 34 00 00 00"
SUBMIT_HEX = (
    "00000038 00000004 00000000 00000002 00 05 00 4d794272616e6400 01 01 373931363132333435363700"
    " 00 00 00 00 00 01 00 00 00 05 48656c6c6f"
)
BIND = p.BindTransceiver(sequence=1, system_id="esme1", password="secret")
SUBMIT = p.SubmitSm(
    sequence=2,
    source_addr_ton=5,
    source_addr="MyBrand",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="79161234567",
    registered_delivery=1,
    short_message=b"Hello",
)


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


@pytest.mark.parametrize(("pdu", "hexbytes"), [(BIND, BIND_HEX), (SUBMIT, SUBMIT_HEX)])
def test_golden_bytes_both_ways(pdu, hexbytes):
    assert codec.encode(pdu) == _hex(hexbytes)
    assert codec.decode(_hex(hexbytes)) == pdu


RECEIPT = p.DeliverSm(
    sequence=7,
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr="79161234567",
    destination_addr="MyBrand",
    esm_class=0x04,
    short_message=b"id:1a2b sub:001 dlvrd:001 submit date:2611221530 done date:2611221531 "
    b"stat:DELIVRD err:000 text:Hello",
    receipted_message_id="1a2b",
    message_state=2,
    network_error_code=b"\x03\x00\x00",
    tlvs=((0x1401, b"vendor"),),
)
EVERY_PDU = [
    BIND,
    p.BindTransmitter(sequence=3, system_id="a", password="b", system_type="VMA", addr_ton=1),
    p.BindReceiver(sequence=4, address_range="^7916"),
    p.BindTransceiverResp(sequence=1, system_id="SMSC", sc_interface_version=0x34),
    p.BindTransmitterResp(sequence=1, system_id="SMSC"),
    p.BindReceiverResp(sequence=1, status=0x0E),
    SUBMIT,
    p.SubmitSm(
        sequence=9,
        destination_addr="40721234567",
        esm_class=0x40,
        data_coding=8,
        validity_period="261122153000000+",
        short_message=b"\x05\x00\x03\x01\x02\x01" + "привет".encode("utf-16-be"),
    ),
    p.SubmitSm(
        sequence=10, message_payload=b"x" * 1000, sar_msg_ref_num=300, user_message_reference=7
    ),
    p.SubmitSmResp(sequence=2, message_id="0A1B2C"),
    p.SubmitSmResp(sequence=2, status=0x58),
    RECEIPT,
    p.DeliverSmResp(sequence=7),
    p.DataSm(sequence=11, destination_addr="1", message_payload=b"hi", receipted_message_id="9"),
    p.DataSmResp(sequence=11, message_id="m1"),
    p.QuerySm(sequence=12, message_id="m1", source_addr="MyBrand"),
    p.QuerySmResp(sequence=12, message_id="m1", final_date="261122153000000+", message_state=2),
    p.AlertNotification(sequence=13, source_addr="79161234567", esme_addr="MyBrand"),
    p.EnquireLink(sequence=14),
    p.EnquireLinkResp(sequence=14),
    p.Unbind(sequence=15),
    p.UnbindResp(sequence=15),
    p.GenericNack(sequence=16, status=0x03),
]


@pytest.mark.parametrize("pdu", EVERY_PDU, ids=lambda x: type(x).__name__)
def test_every_pdu_round_trips(pdu):
    assert codec.decode(codec.encode(pdu)) == pdu


def test_streaming_any_split_gives_the_same_pdus():
    stream = b"".join(codec.encode(x) for x in EVERY_PDU)
    for size in (1, 3, 16, 17, 100, len(stream)):
        dec = codec.Decoder()
        out = []
        for i in range(0, len(stream), size):
            out += dec.feed(stream[i : i + size])
        assert out == EVERY_PDU
        assert dec.buffered == 0


def test_error_response_bodies_may_be_absent_or_one_nul():
    for body in (b"", b"\0"):
        raw = codec.HEADER.pack(16 + len(body), c.SUBMIT_SM_RESP, 0x58, 5) + body
        assert codec.decode(raw) == p.SubmitSmResp(sequence=5, status=0x58)


# -- smpplib as the oracle ----------------------------------------------------


class _Client:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


def _smpplib_parse(data: bytes):
    return smpplib.smpp.parse_pdu(data, client=_Client())


ascii_field = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
octet = st.integers(0, 255)
message_fields = st.fixed_dictionaries(
    {
        "sequence": st.integers(1, 0x7FFFFFFF),
        "source_addr_ton": octet,
        "source_addr_npi": octet,
        "source_addr": ascii_field,
        "dest_addr_ton": octet,
        "dest_addr_npi": octet,
        "destination_addr": ascii_field,
        "esm_class": octet,
        "registered_delivery": octet,
        "data_coding": octet,
        "short_message": st.binary(min_size=1, max_size=254),
    },
    optional={
        "sar_msg_ref_num": st.integers(0, 0xFFFF),
        "sar_total_segments": octet,
        "sar_segment_seqnum": octet,
    },
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(message_fields, st.sampled_from(["submit_sm", "deliver_sm"]))
def test_what_we_encode_smpplib_parses_to_the_same_fields(fields, name):
    cls = p.SubmitSm if name == "submit_sm" else p.DeliverSm
    theirs = _smpplib_parse(codec.encode(cls(**fields)))
    for key, value in fields.items():
        got = getattr(theirs, key)
        assert (
            got.decode("latin-1") if isinstance(got, bytes) and isinstance(value, str) else got
        ) == value


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(message_fields, st.sampled_from(["submit_sm", "deliver_sm"]))
def test_what_smpplib_generates_we_decode_to_the_same_fields(fields, name):
    seq = fields.pop("sequence")
    theirs = smpplib.smpp.make_pdu(name, client=_Client(), **fields)
    theirs.sequence = seq
    ours = codec.decode(theirs.generate())
    assert ours.sequence == seq
    for key, value in fields.items():
        assert getattr(ours, key) == value


@settings(max_examples=60)
@given(ascii_field.filter(lambda s: len(s) < 16), ascii_field.filter(lambda s: len(s) < 9))
def test_binds_agree_with_smpplib(system_id, password):
    ours = codec.encode(p.BindTransceiver(sequence=1, system_id=system_id, password=password))
    theirs = smpplib.smpp.make_pdu(
        "bind_transceiver", client=_Client(), system_id=system_id, password=password
    )
    theirs.sequence = 1
    assert ours == theirs.generate()


def test_receipt_tlvs_agree_with_smpplib():
    theirs = _smpplib_parse(
        codec.encode(
            RECEIPT.__class__(
                **{f: getattr(RECEIPT, f) for f in RECEIPT.__struct_fields__ if f != "tlvs"}
            )
        )
    )
    assert theirs.receipted_message_id == b"1a2b"
    assert theirs.message_state == 2
    assert theirs.network_error_code == b"\x03\x00\x00"


# -- what we refuse to encode -------------------------------------------------


@pytest.mark.parametrize(
    ("pdu", "field"),
    [
        (p.SubmitSm(source_addr="x" * 21), "source_addr"),
        (p.SubmitSm(destination_addr="1" * 30), "destination_addr"),
        (p.SubmitSm(short_message=b"x" * 255), "short_message"),
        (p.SubmitSm(validity_period="1h"), "validity_period"),
        (p.BindTransceiver(password="123456789"), "password"),
        (p.SubmitSm(short_message=b"a", message_payload=b"b"), "mutually exclusive"),
        (p.SubmitSm(esm_class=256), "out of range"),
    ],
)
def test_unencodable_fields_are_local_errors_naming_the_field(pdu, field):
    with pytest.raises(LocalProtocolError, match=field):
        codec.encode(pdu)


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        p.DeliverSm,
        sequence=st.integers(1, 0x7FFFFFFF),
        service_type=st.text(alphabet="ABC", max_size=5),
        source_addr=st.text(alphabet="0123456789", max_size=20),
        destination_addr=st.text(alphabet="0123456789ab", max_size=20),
        esm_class=st.integers(0, 255),
        data_coding=st.integers(0, 255),
        short_message=st.binary(max_size=200),
        receipted_message_id=st.none() | st.text(alphabet="0123456789abcdef", max_size=64),
        message_state=st.none() | st.integers(0, 255),
        network_error_code=st.none() | st.binary(min_size=3, max_size=3),
        sar_msg_ref_num=st.none() | st.integers(0, 65535),
        validity_period=st.sampled_from(["", "000000010000000R"]),
    ),
    st.data(),
)
def test_the_fast_decoders_give_what_the_general_decoder_gives(pdu, data):
    from engine.smpp import bodies as general
    from engine.smpp import fastpath

    raw = codec.encode(pdu)
    if data.draw(st.booleans()):  # a response too
        raw = codec.encode(p.SubmitSmResp(sequence=pdu.sequence, message_id=pdu.destination_addr))
    length, cid, status, seq = codec.HEADER.unpack_from(raw)
    decoders = [fastpath.FAST[cid], fastpath.submit_sm_resp, fastpath.deliver_sm]
    if fastpath.COMPILED is not None:
        decoders.append(fastpath.COMPILED)
    for fast in decoders:
        if (fast is fastpath.submit_sm_resp) != (cid == c.SUBMIT_SM_RESP) and fast is not (
            fastpath.FAST[cid]
        ):
            continue
        got = fast(raw, 16, length, seq, status)
        if got is not None:
            assert got == general.decode_at(raw, 0, length)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(-5, 320), st.integers(-5, 320))
def test_the_compiled_deliver_sm_agrees_with_the_python_one_on_any_bytes(raw, pos, end):
    """Hostile bytes and bounds: never a crash, always what the reference gives."""
    from engine.smpp import fastpath

    if fastpath.COMPILED is None:
        pytest.skip("the compiled fast path was not built here")
    pos, end = max(0, pos), min(max(0, end), len(raw))
    if pos > end:
        assert fastpath.COMPILED(raw, pos, end, 1, 0) is None
        return
    assert fastpath.COMPILED(raw, pos, end, 1, 0) == fastpath.deliver_sm(raw, pos, end, 1, 0)


def test_the_compiled_fast_path_is_built_here():
    """CI builds it from pyproject/setup.py like a fresh machine: it must be there (the
    pure-Python path is tested all the same)."""
    from engine.smpp import fastpath

    assert fastpath.COMPILED is not None

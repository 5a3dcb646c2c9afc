"""Hostile input: one typed error naming the PDU, field and offset; never a crash."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.errors import RemoteProtocolError

from .test_codec import EVERY_PDU, RECEIPT, SUBMIT


def _raw(cid: int, body: bytes, seq: int = 9, status: int = 0) -> bytes:
    return codec.HEADER.pack(16 + len(body), cid, status, seq) + body


def _one_error(data: bytes) -> RemoteProtocolError:
    out = codec.Decoder().feed(data)
    assert len(out) == 1
    assert isinstance(out[0], RemoteProtocolError)
    with pytest.raises(RemoteProtocolError):
        codec.decode(data)
    return out[0]


@pytest.mark.parametrize("length", [0, 15, 70000])
def test_insane_command_length_is_fatal_and_sticks(length):
    data = struct.pack(">IIII", length, c.SUBMIT_SM, 0, 1)
    dec = codec.Decoder()
    (err,) = dec.feed(data)
    assert err.fatal and err.field == "command_length"
    assert err.command_status == c.ESME_RINVCMDLEN
    with pytest.raises(RemoteProtocolError):
        dec.feed(codec.encode(SUBMIT))


def test_unknown_command_id_names_it_and_stream_continues():
    data = _raw(0x00000077, b"abc") + codec.encode(SUBMIT)
    err, pdu = codec.Decoder().feed(data)
    assert err.command_status == c.ESME_RINVCMDID and err.sequence == 9
    assert err.command_id == 0x77
    assert pdu == SUBMIT


def test_missing_nul_names_the_field_and_offset():
    err = _one_error(_raw(c.SUBMIT_SM, b"\0\x01\x01" + b"7916"))
    assert err.field == "source_addr" and err.offset == 19
    assert "SubmitSm seq 9" in str(err)


def test_string_over_its_max_length():
    err = _one_error(_raw(c.BIND_TRANSCEIVER, b"x" * 20 + b"\0" + b"pw\0\0\x34\0\0\0"))
    assert err.field == "system_id"
    assert "longer than 15" in str(err)


def test_truncated_short_message():
    good = codec.encode(SUBMIT)
    body = good[16:-3]
    err = _one_error(_raw(c.SUBMIT_SM, body))
    assert err.field == "short_message"


def test_tlv_length_past_the_end():
    good = codec.encode(RECEIPT)
    bad = good + struct.pack(">HH", 0x1402, 50) + b"xy"
    bad = struct.pack(">I", len(bad)) + bad[4:]
    err = _one_error(bad)
    assert err.command_status == c.ESME_RINVTLVLEN
    assert err.field == "tlv 0x1402"


def test_known_tlv_with_wrong_size():
    good = codec.encode(p.DeliverSm(sequence=1, short_message=b"x"))
    bad = good + struct.pack(">HHH", c.TLV_MESSAGE_STATE, 2, 2)
    bad = struct.pack(">I", len(bad)) + bad[4:]
    assert "message_state" in _one_error(bad).field


def test_trailing_garbage_after_a_fixed_body():
    good = codec.encode(p.QuerySm(sequence=1, message_id="a"))
    bad = good + b"zz"
    bad = struct.pack(">I", len(bad)) + bad[4:]
    assert _one_error(bad).field == "body"


VALID = b"".join(codec.encode(x) for x in EVERY_PDU)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=20))
def test_random_bytes_never_raise_anything_else(data, splits):
    dec = codec.Decoder(max_length=4096)
    pos = 0
    try:
        for size in [*splits, len(data)]:
            for item in dec.feed(data[pos : pos + size]):
                assert isinstance(item, (p.Pdu, RemoteProtocolError))
            pos += size
    except RemoteProtocolError as exc:
        assert exc.fatal


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_streams_never_crash(data):
    buf = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    dec = codec.Decoder()
    try:
        for item in dec.feed(bytes(buf)):
            assert isinstance(item, (p.Pdu, RemoteProtocolError))
    except RemoteProtocolError as exc:
        assert exc.fatal

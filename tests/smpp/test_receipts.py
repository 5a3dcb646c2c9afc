"""Receipt parsing: TLVs first, the Appendix B text in its wild variations, never a raise."""

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.smpp import codec, receipts
from engine.smpp import pdu as p
from engine.smpp.receipts import (
    Receipt,
    ReceiptError,
    canonical_id,
    format_receipt_text,
    is_receipt,
    normalise_id,
    parse_receipt,
    parse_receipt_pdu,
)

STD = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2611221530 done date:2611221531 "
    b"stat:DELIVRD err:000 text:Hello there"
)


@pytest.mark.parametrize(
    ("esm", "yes"),
    [
        (0x04, True),
        (0x44, True),
        (0x08, True),
        (0x20, True),
        (0x00, False),
        (0x40, False),
        (0x03, False),
    ],
)
def test_is_receipt_tests_the_bits(esm, yes):
    assert is_receipt(esm) is yes


def test_standard_text():
    r = parse_receipt(STD)
    assert r.message_id == "0123456789"
    assert (r.stat, r.state, r.final, r.err) == ("DELIVRD", "delivered", True, 0)
    assert r.submitted == datetime(2026, 11, 22, 15, 30)
    assert r.done == datetime(2026, 11, 22, 15, 31)
    assert (r.sub, r.dlvrd, r.text) == (1, 1, "Hello there")


CASES = [
    (
        b"id:1 sub:1 dlvrd:1 submit date:261122153012 done date:261122153145 stat:DELIVRD err:0",
        "1",
        "DELIVRD",
        0,
    ),
    (b"id:abc Text:Hi stat:DELIVRD", "abc", None, None),
    (
        b"id:7 sub:001 dlvrd:000 submit date:2611221530 done date:2611221531 stat:UNDELIV err:001",
        "7",
        "UNDELIV",
        1,
    ),
    (b"id:7 stat:undeliv err:027", "7", "UNDELIV", 27),
    (b"id:7 stat:DELIVERED err:000", "7", "DELIVRD", 0),
    (b"id:7 stat:UNDELIVERABLE err:001", "7", "UNDELIV", 1),
    (b"id:7 stat:REJECTED err:011", "7", "REJECTD", 11),
    (b"id:7 stat:ACCEPTED", "7", "ACCEPTD", None),
    (b"id:7 stat:EXPIRED err:000", "7", "EXPIRED", 0),
    (b"id:7 stat:DELETED err:000", "7", "DELETED", 0),
    (b"id:7 stat:ENROUTE", "7", "ENROUTE", None),
    (b"id:7 stat:BUFFRED", "7", "BUFFRED", None),
    (b"id:7 stat:ACKED", "7", "ACKED", None),
    (b"id:7 stat:UNKNOWN err:255", "7", "UNKNOWN", 255),
    (b"ID:00A1B2 STAT:DELIVRD ERR:000", "00A1B2", "DELIVRD", 0),
    (
        b"id:6f1c8e2a-9b3d-4e5f-8a7b-1c2d3e4f5a6b sub:001 stat:DELIVRD err:000",
        "6f1c8e2a-9b3d-4e5f-8a7b-1c2d3e4f5a6b",
        "DELIVRD",
        0,
    ),
    (b"id:42   sub:001    stat:DELIVRD     err:000 text:", "42", "DELIVRD", 0),
    (b"id:42 stat:DELIVRD err:000 vendor:xyz text:stat:UNDELIV id:99", "42", "DELIVRD", 0),
    (b"id:42 stat:DELIVRD err:E12", "42", "DELIVRD", None),
    (b"id:42 stat:DELIVRD", "42", "DELIVRD", None),
    (b"id: 42 stat: DELIVRD err: 001", "42", "DELIVRD", 1),
    (b"id:42 submit_date:2611221530 stat:DELIVRD err:000", "42", "DELIVRD", 0),
]


@pytest.mark.parametrize(("raw", "mid", "stat", "err"), CASES)
def test_wild_variations(raw, mid, stat, err):
    r = parse_receipt(raw)
    if stat is None:
        assert isinstance(r, ReceiptError)
        return
    assert isinstance(r, Receipt), r
    assert (r.message_id, r.stat, r.err) == (mid, stat, err)


def test_text_field_with_keywords_is_text():
    r = parse_receipt(b"id:42 stat:DELIVRD err:000 text:stat:UNDELIV id:99")
    assert r.text == "stat:UNDELIV id:99"


def test_seconds_in_dates():
    r = parse_receipt(CASES[0][0])
    assert r.submitted == datetime(2026, 11, 22, 15, 30, 12)


def test_tlvs_win_over_text():
    r = parse_receipt(
        STD, receipted_message_id="ABC", message_state=5, network_error_code=b"\x03\x00\x01"
    )
    assert (r.message_id, r.stat, r.state, r.network_error) == (
        "ABC",
        "UNDELIV",
        "undelivered",
        (3, 1),
    )
    assert r.err == 0  # err: still comes from the text


def test_tlv_only_receipt():
    r = parse_receipt(b"", receipted_message_id="99", message_state=2)
    assert (r.message_id, r.state, r.final) == ("99", "delivered", True)


@pytest.mark.parametrize(
    ("raw", "parsed"), [(b"027", (3, 27)), (b"3027", (3, 27)), (b"\x03\x00\x2c", (3, 44))]
)
def test_network_error_code_forms(raw, parsed):
    r = parse_receipt(b"", receipted_message_id="1", message_state=5, network_error_code=raw)
    assert r.network_error == parsed


def test_text_from_message_payload():
    r = parse_receipt(b"", message_payload=STD)
    assert r.message_id == "0123456789"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"hello",
        b"stat:DELIVRD",
        b"id:1",
        b"id:1 stat:WHATEVER",
        "id:я stat:DELIVRD".encode("utf-16-be"),
    ],
)
def test_unparseable_gives_a_reason(raw):
    r = parse_receipt(raw)
    assert isinstance(r, ReceiptError)
    assert r.reason


def test_latin1_and_ucs2_bytes_in_text_do_not_break_it():
    r = parse_receipt(b"id:5 stat:DELIVRD err:000 text:" + "Привет".encode("utf-16-be"))
    assert r.stat == "DELIVRD"


@settings(max_examples=300)
@given(st.binary(max_size=300), st.none() | st.integers(0, 255), st.none() | st.binary(max_size=5))
def test_never_raises(raw, state, nec):
    assert isinstance(
        parse_receipt(raw, message_state=state, network_error_code=nec), Receipt | ReceiptError
    )


@settings(max_examples=300)
@given(st.integers(0, 2**64 - 1), st.integers(0, 4), st.booleans())
def test_hex_and_decimal_forms_meet(number, zeros, upper):
    hexed = "0" * zeros + format(number, "X" if upper else "x")
    dec = "0" * zeros + str(number)
    assert canonical_id(hexed) in normalise_id(dec, "auto")
    assert canonical_id(dec) in normalise_id(hexed, "auto")
    assert canonical_id(hexed) in normalise_id(dec, "decimal")
    assert canonical_id(dec) in normalise_id(hexed, "hex")


def test_uuid_ids_are_just_lowercased():
    assert normalise_id("6F1C8E2A-9B3D") == ("6f1c8e2a-9b3d",)


def test_round_trip_with_the_writer_and_the_pdu():
    text = format_receipt_text(
        "1A2B",
        stat="UNDELIV",
        err=1,
        submitted=datetime(2026, 11, 22, 10, 0),
        done=datetime(2026, 11, 22, 10, 1),
        text="Hello",
    )
    pdu = codec.decode(codec.encode(p.DeliverSm(sequence=1, esm_class=4, short_message=text)))
    r = parse_receipt_pdu(pdu)
    assert (r.message_id, r.stat, r.err, r.text) == ("1A2B", "UNDELIV", 1, "Hello")


_STATE_NUMBERS = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}


@settings(max_examples=400, deadline=None)
@given(
    stat=st.sampled_from(sorted(_STATE_NUMBERS)),
    err=st.integers(0, 999),
    tlv_id=st.text(alphabet="0123456789abcdefABCDEF -", min_size=0, max_size=70),
    text_id=st.text(alphabet="0123456789abcdef", min_size=1, max_size=20),
    tail=st.sampled_from(["", " text:hello", " Text:err:5", " text:", "err:1 stat:X"]),
    shape=st.sampled_from(["standard", "no err", "err first", "upper", "payload", "empty"]),
)
def test_the_tlv_fast_path_reads_what_the_full_parser_reads(
    stat, err, tlv_id, text_id, tail, shape
):
    text = {
        "standard": f"id:{text_id} sub:001 dlvrd:001 submit date:2611221530 done date:2611221531 "
        f"stat:{stat} err:{err:03d}{tail}",
        "no err": f"id:{text_id} stat:{stat}{tail}",
        "err first": f"err:{err} id:{text_id} stat:{stat}{tail}",
        "upper": f"ID:{text_id} STAT:{stat} ERR:{err}{tail}",
        "payload": f"id:{text_id} stat:{stat} err:{err}{tail}",
        "empty": "",
    }[shape].encode()
    pdu = p.DeliverSm(
        esm_class=4,
        short_message=b"" if shape == "payload" else text,
        message_payload=text if shape == "payload" else None,
        receipted_message_id=tlv_id,
        message_state=_STATE_NUMBERS[stat],
        network_error_code=b"\x03\x00\x1b",
    )
    fast = receipts.parse_receipt_pdu(pdu)
    full = receipts.parse_receipt(
        pdu.short_message,
        receipted_message_id=pdu.receipted_message_id,
        message_state=pdu.message_state,
        network_error_code=pdu.network_error_code,
        message_payload=pdu.message_payload,
    )
    if isinstance(full, receipts.ReceiptError):
        assert isinstance(fast, receipts.ReceiptError)
        return
    keep = ("message_id", "stat", "state", "final", "err", "err_raw", "network_error")
    assert {k: getattr(fast, k) for k in keep} == {k: getattr(full, k) for k in keep}

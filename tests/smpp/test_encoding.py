"""Encodings and splitting: every case in smpp.md §5, and smpplib 2.2.4's bugs fixed."""

import pytest
import smpplib.gsm
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.smpp import encoding as e


def reassemble(parts: list[e.Part]) -> str:
    out = b""
    for part in parts:
        out += part.message_payload or e.strip_udh(part.short_message, part.esm_class)
    return e.decode_text(out, parts[0].data_coding)


@pytest.mark.parametrize(
    ("text", "enc", "n"),
    [
        ("a" * 160, e.Encoding.GSM, 1),
        ("a" * 161, e.Encoding.GSM, 2),
        ("a" * 306, e.Encoding.GSM, 2),
        ("a" * 307, e.Encoding.GSM, 3),
        ("€" * 80, e.Encoding.GSM, 1),  # two septets each
        ("€" * 81, e.Encoding.GSM, 2),
        ("я" * 70, e.Encoding.UCS2, 1),
        ("я" * 71, e.Encoding.UCS2, 2),
        ("я" * 134, e.Encoding.UCS2, 2),
        ("я" * 135, e.Encoding.UCS2, 3),
        ("Hello `quoted`", e.Encoding.UCS2, 1),  # backtick is not GSM
    ],
)
def test_part_counts(text, enc, n):
    assert e.count_parts(text) == (enc, n)
    assert len(e.split(text)) == n


def test_sixteen_bit_references_leave_152_and_66():
    assert e.count_parts("a" * 305, method="udh16")[1] == 3
    parts = e.split("a" * 305, method="udh16", ref=0x1234)
    assert parts[0].short_message[:6] == b"\x06\x08\x04\x12\x34\x03"
    assert len(e.split("я" * 133, method="udh16")) == 3


def test_udh8_header_and_sizes():
    parts = e.split("b" * 200, ref=7)
    assert [p.short_message[:6] for p in parts] == [
        b"\x05\x00\x03\x07\x02\x01",
        b"\x05\x00\x03\x07\x02\x02",
    ]
    assert len(parts[0].short_message) == 6 + 153
    assert all(p.esm_class == 0x40 for p in parts)


def test_escape_pair_is_never_split_where_smpplib_splits_it():
    text = "a" * 152 + "€" + "b" * 10
    theirs = smpplib.gsm.make_parts(text)[0]
    assert theirs[0].endswith(b"\x1b")  # smpplib 2.2.4 cuts the pair in half
    ours = e.split(text)
    assert not ours[0].short_message.endswith(b"\x1b")
    assert reassemble(ours) == text


def test_surrogate_pair_is_never_split_where_smpplib_splits_it():
    text = "я" * 66 + "😀" + "я" * 10
    theirs = smpplib.gsm.make_parts(text)[0]
    assert 0xD8 <= theirs[0][-2] <= 0xDB  # a lone high surrogate
    ours = e.split(text)
    assert not 0xD8 <= ours[0].short_message[-2] <= 0xDB
    assert reassemble(ours) == text


@pytest.mark.parametrize(
    ("char", "raw"),
    [("§", b"\x5f"), ("\f", b"\x1b\x0a"), ("@", b"\x00"), ("$", b"\x02"), ("€", b"\x1b\x65")],
)
def test_full_gsm_table(char, raw):
    assert e.encode_text(char, e.Encoding.GSM) == raw
    assert e.decode_gsm(raw) == char


def test_smpplib_table_gaps_are_fixed():
    assert e.choose("§ and \f") is e.Encoding.GSM
    assert e.choose("`") is e.Encoding.UCS2


def test_references_increment_per_destination():
    refs = e.References()
    assert [refs.next("79161234567") for _ in range(3)] == [1, 2, 3]
    assert refs.next("40721234567") == 1
    for _ in range(300):
        ref = refs.next("x")
    assert 1 <= ref <= 255


def test_sar_sets_the_three_tlvs_on_every_part():
    parts = e.split("c" * 400, method="sar", ref=300)
    assert [p.sar for p in parts] == [(300, 3, 1), (300, 3, 2), (300, 3, 3)]
    assert all(p.esm_class == 0 for p in parts)
    assert len(parts[0].short_message) == 153


def test_payload_method_is_one_part_with_empty_short_message():
    (part,) = e.split("d" * 400, method="payload")
    assert part.short_message == b""
    assert len(part.message_payload) == 400


def test_too_long_is_a_clear_error():
    with pytest.raises(e.TextTooLong, match="text needs 7 parts, the limit is 6"):
        e.split("x" * 153 * 7)


def test_overrides():
    assert e.split("hé", override="latin1")[0].data_coding == 3
    assert e.split("hi", gsm_data_coding=1)[0].data_coding == 1
    with pytest.raises(e.EncodingError, match="cannot be sent as latin1"):
        e.split("я", override="latin1")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(blacklist_categories=("Cs",)),
            st.sampled_from(list("€{}[]~|^\\\fабвгд😀🎉§@")),
        ),
        min_size=1,
        max_size=500,
    ),
    st.sampled_from(["udh8", "udh16", "sar", "payload"]),
)
def test_any_text_splits_within_limits_and_reassembles(text, method):
    enc, n = e.count_parts(text, method=method)
    try:
        parts = e.split(text, method=method, max_parts=255)
    except e.TextTooLong:
        assert n > 255
        return
    assert reassemble(parts) == text
    if method != "payload":
        assert len(parts) == n
        for part in parts:
            assert len(part.short_message) <= 140
    if e.fits_gsm(text):
        assert enc is e.Encoding.GSM


@given(st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("€£éΔ§я")))
def test_the_ascii_fast_paths_agree_with_the_gsm_table(text):
    """fits_gsm and encode_text shortcut plain ASCII; the table decides everything else."""
    fits = not text.translate(e._FITS)
    assert e.fits_gsm(text) is fits
    if fits:
        assert e.encode_text(text, e.Encoding.GSM) == text.translate(e._ENCODE).encode("latin-1")
        assert e.decode_gsm(e.encode_text(text, e.Encoding.GSM)) == text
    else:
        with pytest.raises(e.EncodingError):
            e.encode_text(text, e.Encoding.GSM)

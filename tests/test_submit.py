"""From a message to the submit_sm parts an operator wants."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import config
from engine.config import OperatorConfig, SourceRule
from engine.smpp import codec, encoding
from engine.smpp.encode import encode_body
from engine.smpp.encoding import TextTooLong
from engine.submit import SubmitBuilder, sender_kind


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("Shop", "alphanumeric"),
        ("7755", "shortcode"),
        ("+79161234567", "international"),
        ("79161234567", "international"),
        ("123456789", "national"),
    ],
)
def test_sender_kinds(sender, kind):
    assert sender_kind(sender) == kind


def test_alphanumeric_sender_and_international_destination():
    (part,) = SubmitBuilder(OperatorConfig(name="a")).build("+79161234567", "Hi", "Shop")
    assert (part.source_addr_ton, part.source_addr_npi, part.source_addr) == (5, 0, "Shop")
    assert (part.dest_addr_ton, part.dest_addr_npi, part.destination_addr) == (1, 1, "79161234567")
    assert part.registered_delivery == 1
    codec.encode(part)


def test_source_rules_override_the_defaults():
    op = OperatorConfig(name="a", source_rules=[SourceRule(kind="alphanumeric", ton=1, npi=0)])
    (part,) = SubmitBuilder(op).build("+1415", "Hi", "Shop")
    assert part.source_addr_ton == 1


def test_long_text_gets_incrementing_references_per_destination():
    b = SubmitBuilder(OperatorConfig(name="a"))
    first = b.build("+79161234567", "я" * 100, "Shop")
    second = b.build("+79161234567", "я" * 100, "Shop")
    assert [p.short_message[3] for p in first] == [1, 1]
    assert second[0].short_message[3] == 2
    assert all(p.esm_class == 0x40 and p.data_coding == 8 for p in first)


def test_sar_and_payload_methods():
    sar = SubmitBuilder(OperatorConfig(name="a", concatenation="sar")).build("+1", "x" * 200, "S")
    assert [(p.sar_total_segments, p.sar_segment_seqnum) for p in sar] == [(2, 1), (2, 2)]
    (pl,) = SubmitBuilder(OperatorConfig(name="a", concatenation="payload")).build(
        "+1", "x" * 200, "S"
    )
    assert pl.short_message == b""
    assert len(pl.message_payload) == 200


def test_part_limit():
    with pytest.raises(TextTooLong):
        SubmitBuilder(OperatorConfig(name="a"), max_parts=2).build("+1", "x" * 400, "S")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=400) | st.text(alphabet=string.printable, max_size=400),
    sender=st.sampled_from(["Shop", "+79161234567", "12345", "InfoBrand12"]),
    validity=st.sampled_from(["", "000001000000000R"]),
    concatenation=st.sampled_from(["udh8", "udh16", "sar", "payload"]),
    data_coding=st.sampled_from(["auto", "ucs2"]),
)
def test_bodies_are_the_encoded_parts_byte_for_byte(
    text, sender, validity, concatenation, data_coding
):
    """The fast body encoder against build() + the general encoder, on twin builders (each
    keeps its own concatenation references)."""
    op = config.parse(
        f'[[operators]]\nname="a"\nconcatenation="{concatenation}"\n'
        f'data_coding="{data_coding}"\n'.encode()
    ).operators[0]
    try:
        expected = [
            encode_body(pdu)
            for pdu in SubmitBuilder(op, max_parts=255).build(
                "+79161234567", text, sender, validity_period=validity
            )
        ]
    except (encoding.TextTooLong, encoding.EncodingError) as exc:
        with pytest.raises(type(exc)):
            SubmitBuilder(op, max_parts=255).bodies(
                "+79161234567", text, sender, validity_period=validity
            )
        return
    got = SubmitBuilder(op, max_parts=255).bodies(
        "+79161234567", text, sender, validity_period=validity
    )
    assert list(got) == expected

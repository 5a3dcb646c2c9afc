"""From a message to the submit_sm parts an operator wants."""

import pytest

from engine.config import OperatorConfig, SourceRule
from engine.smpp import codec
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

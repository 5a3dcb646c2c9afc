"""From a queued message to the submit_sm PDUs an operator wants.

Pure: addresses and TON/NPI by the operator's source rules, text split into
parts by its data_coding and concatenation settings, reference numbers
incrementing per destination.
"""

from __future__ import annotations

from engine.config import OperatorConfig, SourceRule
from engine.smpp import encoding
from engine.smpp.pdu import SubmitSm

DEFAULT_SOURCE_RULES = {
    "alphanumeric": (5, 0),
    "shortcode": (3, 0),
    "international": (1, 1),
    "national": (0, 1),
}


def sender_kind(sender: str) -> str:
    """alphanumeric (any letter), shortcode (<= 8 digits), international (+ or >= 10 digits)."""
    digits = sender.removeprefix("+")
    if not digits.isdigit():
        return "alphanumeric"
    if sender.startswith("+") or len(digits) >= 10:
        return "international"
    return "shortcode" if len(digits) <= 8 else "national"


class SubmitBuilder:
    """Builds submit_sm parts for one operator; holds its per-destination references."""

    def __init__(self, op: OperatorConfig, *, max_parts: int = 6) -> None:
        self._op = op
        self._max_parts = max_parts
        self._refs = encoding.References()
        self._rules = dict(DEFAULT_SOURCE_RULES)
        rule: SourceRule
        for rule in op.source_rules:
            self._rules[rule.kind] = (rule.ton, rule.npi)
        self._bits = 16 if op.concatenation == "udh16" else 8
        self._registered = 1 if op.registered_delivery else 0

    def source(self, sender: str) -> tuple[int, int, str]:
        ton, npi = self._rules[sender_kind(sender)]
        return ton, npi, sender.removeprefix("+") if ton == 1 else sender

    def build(
        self, to: str, text: str, sender: str, *, validity_period: str = ""
    ) -> list[SubmitSm]:
        """The parts of one message, in order; raises encoding.TextTooLong."""
        dest = to.removeprefix("+")
        op = self._op
        bits = self._bits
        parts = encoding.split(
            text,
            override=op.data_coding,
            method=op.concatenation,
            max_parts=self._max_parts,
            ref=lambda: self._refs.next(dest, bits=bits),
            gsm_data_coding=op.gsm_data_coding,
        )
        src_ton, src_npi, src = self.source(sender)
        return [
            SubmitSm(
                source_addr_ton=src_ton,
                source_addr_npi=src_npi,
                source_addr=src,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=dest,
                esm_class=part.esm_class,
                validity_period=validity_period,
                registered_delivery=self._registered,
                data_coding=part.data_coding,
                short_message=part.short_message,
                message_payload=part.message_payload,
                sar_msg_ref_num=part.sar[0] if part.sar else None,
                sar_total_segments=part.sar[1] if part.sar else None,
                sar_segment_seqnum=part.sar[2] if part.sar else None,
            )
            for part in parts
        ]

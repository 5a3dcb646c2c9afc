"""From a queued message to the submit_sm PDUs an operator wants.

Pure: addresses and TON/NPI by the operator's source rules, text split into
parts by its data_coding and concatenation settings, reference numbers
incrementing per destination.
"""

from __future__ import annotations

from engine.config import OperatorConfig, SourceRule
from engine.smpp import encoding
from engine.smpp.encode import encode_body
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
        self._prefixes: dict[str, bytes] = {}  # sender -> service_type .. source_addr, encoded

    def source(self, sender: str) -> tuple[int, int, str]:
        ton, npi = self._rules[sender_kind(sender)]
        return ton, npi, sender.removeprefix("+") if ton == 1 else sender

    def build(
        self, to: str, text: str, sender: str, *, validity_period: str = ""
    ) -> list[SubmitSm]:
        """The parts of one message, in order; raises encoding.TextTooLong."""
        dest = to.removeprefix("+")
        return self._pdus(dest, self._split(dest, text), sender, validity_period)

    def _pdus(
        self, dest: str, parts: list[encoding.Part], sender: str, validity_period: str
    ) -> list[SubmitSm]:
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

    def _split(self, dest: str, text: str) -> list[encoding.Part]:
        op, bits = self._op, self._bits
        return encoding.split(
            text,
            override=op.data_coding,
            method=op.concatenation,
            max_parts=self._max_parts,
            ref=lambda: self._refs.next(dest, bits=bits),
            gsm_data_coding=op.gsm_data_coding,
        )

    def bodies(
        self, to: str, text: str, sender: str, *, validity_period: str = ""
    ) -> tuple[bytes, ...]:
        """The parts of one message as encoded submit_sm bodies (``Session.send_body``):
        byte for byte what encoding :meth:`build`'s PDUs gives, without building them."""
        dest = to.removeprefix("+")
        parts: list[encoding.Part] | None = None
        if self._op.data_coding == "auto" and encoding.plain_gsm(text, single=True):
            sms = [(text.encode("ascii"), 0, self._op.gsm_data_coding)]
        else:
            parts = self._split(dest, text)
            if any(part.sar or part.message_payload is not None for part in parts):
                return self._encoded(dest, parts, sender, validity_period)
            sms = [(part.short_message, part.esm_class, part.data_coding) for part in parts]
        prefix = self._prefixes.get(sender) or self._prefix(sender)
        if len(dest) > 20 or len(validity_period) not in (0, 16) or not dest.isascii():
            parts = self._split(dest, text) if parts is None else parts
            return self._encoded(dest, parts, sender, validity_period)
        middle = b"\x01\x01" + dest.encode("ascii") + b"\0"
        validity = validity_period.encode("ascii") + b"\0" if validity_period else b"\0"
        reg = self._registered
        return tuple(
            b"".join(
                (
                    prefix,
                    middle,
                    bytes((esm, 0, 0, 0)),
                    validity,
                    bytes((reg, 0, dcs, 0, len(sm))),
                    sm,
                )
            )
            for sm, esm, dcs in sms
        )

    def _encoded(
        self, dest: str, parts: list[encoding.Part], sender: str, validity_period: str
    ) -> tuple[bytes, ...]:
        """The long way, on parts already split (their concatenation references kept)."""
        return tuple(encode_body(pdu) for pdu in self._pdus(dest, parts, sender, validity_period))

    def _prefix(self, sender: str) -> bytes:
        """service_type (empty), the source's TON, NPI and address, encoded: one per sender."""
        ton, npi, src = self.source(sender)
        raw = src.encode("latin-1")
        if len(raw) > 20 or b"\0" in raw:
            raise encoding.EncodingError(f"sender {sender!r}: longer than 20 octets")
        prefix = b"\0" + bytes((ton, npi)) + raw + b"\0"
        if len(self._prefixes) < 10_000:
            self._prefixes[sender] = prefix
        return prefix

"""Delivery receipts: TLVs first, then the Appendix B text with its real-world variations.

``parse_receipt`` never raises: it returns a :class:`Receipt` or a
:class:`ReceiptError` with the reason. Ids are matched through
:func:`canonical_id` (what the engine stores from submit_sm_resp) and
:func:`normalise_id` (the candidates a receipt's id may stand for): lowercase,
leading zeros stripped, and hex <-> decimal per the operator's setting. The
invariant, checked by a property test: for the same number written in hex by
one side and in decimal by the other, ``canonical_id(resp_id) in
normalise_id(receipt_id, "auto")``.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime

import msgspec

from engine.smpp import constants as c
from engine.smpp.pdu import DataSm, DeliverSm

_FIELDS = re.compile(
    rb"(?i)(?:^|\s)(id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err)\s*:\s*(\S*)"
)
_TEXT = re.compile(rb"(?i)(?:^|\s)text\s*:")
_HEX = frozenset("0123456789abcdef")

# canonical stat -> (Volley state, final)
STATS = {
    "DELIVRD": ("delivered", True),
    "EXPIRED": ("expired", True),
    "DELETED": ("deleted", True),
    "UNDELIV": ("undelivered", True),
    "REJECTD": ("rejected", True),
    "UNKNOWN": ("unknown", True),
    "ACCEPTD": ("accepted", False),
    "ENROUTE": ("enroute", False),
    "ACKED": ("buffered", False),
    "BUFFRED": ("buffered", False),
}
_LONG_STATS = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "REJECTED": "REJECTD",
    "ACCEPTED": "ACCEPTD",
    "BUFFERED": "BUFFRED",
}
_STATE_TLV = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


class Receipt(msgspec.Struct, frozen=True, gc=False):
    message_id: str
    stat: str
    state: str
    final: bool
    err: int | None = None
    err_raw: str = ""
    network_error: tuple[int, int] | None = None
    submitted: datetime | None = None
    done: datetime | None = None
    sub: int | None = None
    dlvrd: int | None = None
    text: str = ""


class ReceiptError(msgspec.Struct, frozen=True):
    reason: str
    raw: bytes


MAX_ID = 64  # octets of an SMSC message id (submit_sm_resp's message_id is a C-Octet 65)


def checked_id(raw: str) -> str | None:
    """An SMSC message id fit to enter the engine: trimmed, 1..64 printable ASCII characters.

    Ids are store keys and receipt-matching candidates: an empty, oversized or
    binary one is refused where it enters (None), never passed on.
    """
    s = raw.strip()
    if not s or len(s) > MAX_ID or not (s.isascii() and s.isprintable()):
        return None
    return s


def is_receipt(esm_class: int) -> bool:
    """Test the bits: SMSCs send 0x44 (receipt + UDHI)."""
    return (esm_class & c.ESM_RECEIPT_MASK) in c.ESM_RECEIPT_TYPES


def canonical_id(message_id: str) -> str:
    """How the engine indexes an SMSC message id: stripped, lowercase, no leading zeros."""
    s = message_id.strip().lower()
    return s.lstrip("0") or ("0" if s else "")


def normalise_id(message_id: str, form: str = "auto") -> tuple[str, ...]:
    """The canonical ids a receipt's id may stand for, as-is first."""
    s = canonical_id(message_id)
    forms = [s]
    if form in ("hex", "auto") and s and len(s) <= 16 and _HEX.issuperset(s):
        forms.append(str(int(s, 16)))
    if form in ("decimal", "auto") and s.isdigit() and len(s) <= 20:
        forms.append(format(int(s), "x"))
    return tuple(dict.fromkeys(forms))


def canonical_stat(stat: str) -> str:
    s = stat.strip().upper()
    return _LONG_STATS.get(s, s)


@functools.lru_cache(maxsize=4096)
def _date(raw: bytes) -> datetime | None:
    if not raw.isdigit() or len(raw) not in (10, 12):
        return None
    try:
        return datetime(
            2000 + int(raw[0:2]),
            int(raw[2:4]),
            int(raw[4:6]),
            int(raw[6:8]),
            int(raw[8:10]),
            int(raw[10:12]) if len(raw) == 12 else 0,
        )
    except ValueError:
        return None


def _int(raw: bytes) -> int | None:
    return int(raw) if raw.isdigit() else None


def network_error(value: bytes | None) -> tuple[int, int] | None:
    """(type, code): 3 octets type + big-endian code; ASCII digits as sent by some SMSCs.

    ASCII of 3 digits ("027") is read as a GSM (type 3) code; 4 or more digits
    as type digit + code ("3027" -> (3, 27)).
    """
    if not value:
        return None
    if value.isdigit():
        if len(value) >= 4:
            return int(value[:1]), int(value[1:])
        return 3, int(value)
    if len(value) == 3:
        return value[0], int.from_bytes(value[1:3], "big")
    return None


def parse_receipt(
    short_message: bytes,
    *,
    receipted_message_id: str | None = None,
    message_state: int | None = None,
    network_error_code: bytes | None = None,
    message_payload: bytes | None = None,
) -> Receipt | ReceiptError:
    try:
        return _parse(
            short_message or message_payload or b"",
            receipted_message_id,
            message_state,
            network_error_code,
        )
    except Exception as exc:  # the contract: never raise into the caller's loop
        return ReceiptError(f"unparseable receipt: {exc}", short_message or b"")


def _split_text(raw: bytes) -> tuple[bytes, bytes]:
    """(fields, text): text: is the last field and may hold anything."""
    lowered = raw.lower()
    pos = lowered.find(b"text:")
    while pos > 0 and lowered[pos - 1] not in b" \t\r\n":
        pos = lowered.find(b"text:", pos + 1)
    if pos < 0:
        return raw, b""
    return raw[:pos], raw[pos + 5 :]


def _scan(head: bytes) -> dict[bytes, bytes]:
    """The usual shape, key:value separated by spaces, without a regex."""
    fields: dict[bytes, bytes] = {}
    prev = b""
    for token in head.split():
        key, sep, value = token.partition(b":")
        if sep:
            key = key.lower()
            if key == b"date":
                key = prev + b" date"
            elif key.endswith(b"_date"):
                key = key[:-5] + b" date"
            fields.setdefault(key, value)
        prev = token.lower()
    return fields


def _parse(
    raw: bytes, tlv_id: str | None, tlv_state: int | None, nec: bytes | None
) -> Receipt | ReceiptError:
    head, text = _split_text(raw)
    fields = _scan(head)
    if (not fields.get(b"id") and not tlv_id) or (not fields.get(b"stat") and tlv_state is None):
        fields = {}
        for key, value in _FIELDS.findall(head):
            fields.setdefault(key.lower().replace(b"_", b" "), value)
    text_id = fields.get(b"id", b"").decode("latin-1")
    if not tlv_id and not text_id:
        return ReceiptError("no id: field and no receipted_message_id TLV", raw)
    message_id = checked_id(tlv_id or "") or checked_id(text_id)
    if message_id is None:
        shown = (tlv_id or text_id)[:80]
        return ReceiptError(f"receipt id {shown!r}: expected 1-{MAX_ID} printable characters", raw)
    if tlv_state is not None and tlv_state in _STATE_TLV:
        stat = _STATE_TLV[tlv_state]
    elif b"stat" in fields:
        stat = canonical_stat(fields[b"stat"].decode("latin-1"))
    else:
        return ReceiptError("no stat: field and no message_state TLV", raw)
    if stat not in STATS:
        return ReceiptError(f"unknown stat {stat!r}", raw)
    state, final = STATS[stat]
    err_raw = fields.get(b"err", b"").decode("latin-1")
    return Receipt(
        message_id=message_id,
        stat=stat,
        state=state,
        final=final,
        err=int(err_raw) if err_raw.isdigit() else None,
        err_raw=err_raw,
        network_error=network_error(nec),
        submitted=_date(fields.get(b"submit date", b"")),
        done=_date(fields.get(b"done date", b"")),
        sub=_int(fields.get(b"sub", b"")),
        dlvrd=_int(fields.get(b"dlvrd", b"")),
        text=text.decode("latin-1"),
    )


def parse_receipt_pdu(pdu: DeliverSm | DataSm) -> Receipt | ReceiptError:
    """A DeliverSm's or DataSm's receipt: from its TLVs alone when they say it all (the
    common case: the receipted_message_id and message_state TLVs, and for a failure the
    text's ``err:``), else from the Appendix B text as well."""
    tlv_id, tlv_state = pdu.receipted_message_id, pdu.message_state
    if tlv_id is not None and tlv_state is not None:
        fast = _from_tlvs(pdu, tlv_id, tlv_state)
        if fast is not None:
            return fast
    return parse_receipt(
        getattr(pdu, "short_message", b""),
        receipted_message_id=pdu.receipted_message_id,
        message_state=pdu.message_state,
        network_error_code=pdu.network_error_code,
        message_payload=pdu.message_payload,
    )


def _from_tlvs(pdu: DeliverSm | DataSm, tlv_id: str, tlv_state: int) -> Receipt | None:
    """The receipt from its TLVs and the text's ``err:`` alone, or None to parse it all."""
    stat = _STATE_TLV.get(tlv_state)
    message_id = checked_id(tlv_id)
    if stat is None or message_id is None:
        return None
    raw = getattr(pdu, "short_message", b"") or pdu.message_payload or b""
    if not raw:
        return _bare(message_id, stat, pdu)
    at = raw.find(b"err:")
    if at <= 0 or raw[at - 1] != 32 or 0 <= raw.find(b"text:", 0, at) < at:
        return None  # no err: field, or one the scanner must judge
    token = raw[at + 4 : at + 16].split(None, 1)
    if not token or not token[0].isdigit() or b"err:" in raw[at + 4 :]:
        return None
    state, final = STATS[stat]
    err_raw = token[0].decode("latin-1")
    return Receipt(
        message_id=message_id,
        stat=stat,
        state=state,
        final=final,
        err=int(err_raw),
        err_raw=err_raw,
        network_error=network_error(pdu.network_error_code),
    )


def _bare(message_id: str, stat: str, pdu: DeliverSm | DataSm) -> Receipt:
    state, final = STATS[stat]
    return Receipt(
        message_id=message_id,
        stat=stat,
        state=state,
        final=final,
        network_error=network_error(pdu.network_error_code),
    )


def format_receipt_text(
    message_id: str,
    *,
    stat: str,
    err: int,
    submitted: datetime,
    done: datetime,
    sub: int = 1,
    dlvrd: int = 1,
    text: str = "",
) -> bytes:
    """The Appendix B text, as an SMSC writes it (text: is its first 20 characters)."""
    return (
        f"id:{message_id} sub:{sub:03d} dlvrd:{dlvrd:03d} "
        f"submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} "
        f"stat:{stat} err:{err:03d} text:{text[:20]}"
    ).encode("latin-1", errors="replace")

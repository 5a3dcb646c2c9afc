"""Text encodings and concatenated messages (GSM 03.38, Latin-1, IA5, UCS2).

GSM 03.38 goes unpacked, one septet per octet, extension characters as
0x1B + code (two septets). The automatic choice is GSM when every character
fits the default and extension tables, UCS2 (UTF-16BE) otherwise. Long text is
split by 8-bit or 16-bit-reference UDH, SAR TLVs, or carried whole in
message_payload; a split never separates an escape pair or a surrogate pair.
Everything here is table-driven and runs in C where it can (str.translate).
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict
from collections.abc import Callable

import msgspec

# GSM 03.38 default alphabet, by code point 0x00..0x7F (0x1B is the escape).
GSM_DEFAULT = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESCAPE = 0x1B

_ENCODE = {ord(ch): chr(i) for i, ch in enumerate(GSM_DEFAULT) if i != ESCAPE}
_ENCODE.update({ord(ch): "\x1b" + chr(code) for ch, code in GSM_EXTENSION.items()})
_FITS = dict.fromkeys(_ENCODE)  # translate() deletes every GSM character
# ASCII characters whose GSM code differs (or that GSM lacks): anything else encodes as itself
_ASCII_NOT_SAME = re.compile(
    "[" + re.escape("".join(chr(c) for c in range(128) if _ENCODE.get(c) != chr(c))) + "]"
)
_DECODE = {i: ch for i, ch in enumerate(GSM_DEFAULT) if i != ESCAPE}
_DECODE_EXT = {code: ch for ch, code in GSM_EXTENSION.items()}


class Encoding(enum.Enum):
    GSM = "gsm"
    LATIN1 = "latin1"
    UCS2 = "ucs2"
    IA5 = "ia5"


DATA_CODING = {Encoding.GSM: 0, Encoding.IA5: 1, Encoding.LATIN1: 3, Encoding.UCS2: 8}

# (single, per part with 8-bit ref UDH or SAR, per part with 16-bit ref UDH), in octets
_SIZES = {
    Encoding.GSM: (160, 153, 152),
    Encoding.IA5: (160, 153, 152),
    Encoding.LATIN1: (140, 134, 133),
    Encoding.UCS2: (140, 134, 132),
}
MAX_PARTS = 255


class Part(msgspec.Struct, frozen=True, gc=False):
    short_message: bytes
    esm_class: int
    data_coding: int
    sar: tuple[int, int, int] | None = None
    message_payload: bytes | None = None


class TextTooLong(ValueError):
    def __init__(self, parts_needed: int, max_parts: int) -> None:
        super().__init__(f"text needs {parts_needed} parts, the limit is {max_parts}")
        self.parts_needed = parts_needed
        self.max_parts = max_parts


class EncodingError(ValueError):
    pass


def fits_gsm(text: str) -> bool:
    if text.isascii() and text.isprintable():  # all of printable ASCII but the backtick
        return "`" not in text
    return not text.translate(_FITS)


def plain_gsm(text: str, single: bool = False) -> bool:
    """Printable ASCII whose GSM 03.38 codes are its ASCII codes (one septet each, no
    escapes): encoded by ``text.encode("ascii")``; ``single``: and one part long."""
    return (
        (not single or len(text) <= _SIZES[Encoding.GSM][0])
        and text.isascii()
        and text.isprintable()
        and "`" not in text
        and not _ASCII_NOT_SAME.search(text)
    )


def choose(text: str, override: str = "auto") -> Encoding:
    """GSM when every character fits, else UCS2; or the operator's override."""
    if override == "auto":
        return Encoding.GSM if fits_gsm(text) else Encoding.UCS2
    try:
        enc = Encoding(override)
    except ValueError:
        raise EncodingError(f"unknown data_coding override {override!r}") from None
    encode_text(text, enc)
    return enc


def encode_text(text: str, enc: Encoding) -> bytes:
    try:
        if enc is Encoding.GSM:
            if text.isascii() and not _ASCII_NOT_SAME.search(text):
                return text.encode("ascii")  # these characters have their ASCII codes in GSM
            if not fits_gsm(text):
                bad = text.translate(_FITS)[0]
                raise EncodingError(f"{bad!r} is not in the GSM 03.38 alphabet")
            return text.translate(_ENCODE).encode("latin-1")
        if enc is Encoding.UCS2:
            return text.encode("utf-16-be")
        if enc is Encoding.LATIN1:
            return text.encode("latin-1")
        return text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise EncodingError(f"{text[exc.start]!r} cannot be sent as {enc.value}") from None


def decode_gsm(data: bytes) -> str:
    out = []
    escaped = False
    for b in data:
        if escaped:
            out.append(_DECODE_EXT.get(b, _DECODE.get(b, " ")))
            escaped = False
        elif b == ESCAPE:
            escaped = True
        else:
            out.append(_DECODE.get(b & 0x7F, "?"))
    return "".join(out)


def decode_text(data: bytes, data_coding: int) -> str:
    """Inverse of encode_text by data_coding: 0 GSM, 1 IA5, 3 Latin-1, 8 UCS2."""
    if data_coding == 8:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == 0:
        return decode_gsm(data)
    if data_coding == 1:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")


def _boundaries(payload: bytes, enc: Encoding, size: int) -> list[tuple[int, int]]:
    """Cut points of at most ``size`` octets, never inside an escape or surrogate pair."""
    cuts = []
    start, n = 0, len(payload)
    while start < n:
        end = min(start + size, n)
        if end < n:
            if enc in (Encoding.GSM, Encoding.IA5) and payload[end - 1] == ESCAPE:
                end -= 1
            elif enc is Encoding.UCS2 and 0xD8 <= payload[end - 2] <= 0xDB:
                end -= 2
        cuts.append((start, end))
        start = end
    return cuts


def _parts_needed(payload: bytes, enc: Encoding, method: str) -> int:
    single, part8, part16 = _SIZES[enc]
    if len(payload) <= single:
        return 1
    return len(_boundaries(payload, enc, part16 if method == "udh16" else part8))


def count_parts(text: str, *, override: str = "auto", method: str = "udh8") -> tuple[Encoding, int]:
    """The encoding and how many SMS parts the text costs."""
    if override == "auto" and plain_gsm(text, single=True):
        return Encoding.GSM, 1  # the usual case: one part of plain ASCII
    enc = choose(text, override)
    return enc, _parts_needed(encode_text(text, enc), enc, method)


def split(
    text: str,
    *,
    override: str = "auto",
    method: str = "udh8",
    max_parts: int = 6,
    ref: int | Callable[[], int] = 0,
    gsm_data_coding: int = 0,
) -> list[Part]:
    """The parts of one message, ready for submit_sm; raises TextTooLong or EncodingError.

    ``ref`` (the concatenation reference) may be a function: called only when
    the text needs more than one part.
    """
    enc = choose(text, override)
    payload = encode_text(text, enc)
    dcs = gsm_data_coding if enc is Encoding.GSM else DATA_CODING[enc]
    single, part8, part16 = _SIZES[enc]
    if len(payload) <= single:
        return [Part(payload, 0, dcs)]
    cuts = _boundaries(payload, enc, part16 if method == "udh16" else part8)
    total = len(cuts)
    limit = min(max_parts, MAX_PARTS)
    if total > limit:
        raise TextTooLong(total, limit)
    if method == "payload":
        return [Part(b"", 0, dcs, message_payload=payload)]
    if callable(ref):
        ref = ref()
    if method == "sar":
        return [
            Part(payload[a:b], 0, dcs, sar=(ref & 0xFFFF, total, i))
            for i, (a, b) in enumerate(cuts, 1)
        ]
    if method == "udh16":
        head = b"\x06\x08\x04" + (ref & 0xFFFF).to_bytes(2, "big")
    elif method == "udh8":
        head = b"\x05\x00\x03" + bytes([ref & 0xFF])
    else:
        raise EncodingError(f"unknown concatenation method {method!r}")
    return [
        Part(head + bytes([total, i]) + payload[a:b], 0x40, dcs) for i, (a, b) in enumerate(cuts, 1)
    ]


def strip_udh(short_message: bytes, esm_class: int) -> bytes:
    if esm_class & 0x40 and short_message:
        return short_message[1 + short_message[0] :]
    return short_message


class References:
    """Concatenation reference numbers, incrementing per destination (bounded memory)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._last: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def next(self, destination: str, *, bits: int = 8) -> int:
        mask = (1 << bits) - 1
        ref = (self._last.pop(destination, 0) + 1) & mask or 1
        self._last[destination] = ref
        if len(self._last) > self._capacity:
            self._last.popitem(last=False)
        return ref

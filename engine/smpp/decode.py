"""Decoding SMPP 3.4 PDUs: bytes to Structs, one at a time or streamed.

Here the header and the framing; each body by a fast path (fastpath.py) or
field by field (bodies.py). Decoding errors are :class:`RemoteProtocolError`
naming the PDU, the field, the offset in the PDU and the command_status a
generic_nack (or response) should carry. The streaming :class:`Decoder` yields
every complete PDU of a chunk in one pass.
"""

from __future__ import annotations

from engine.smpp import constants as c
from engine.smpp import layout as L
from engine.smpp import pdu as p
from engine.smpp.bodies import decode_at
from engine.smpp.encode import command_name
from engine.smpp.errors import RemoteProtocolError
from engine.smpp.fastpath import FAST

_name = command_name


def _check_length(length: int, max_length: int, cid: int = 0, seq: int = 0) -> None:
    if length < 16 or length > max_length:
        raise RemoteProtocolError(
            f"command_length {length} outside 16..{max_length}",
            command_status=c.ESME_RINVCMDLEN,
            command_id=cid,
            sequence=seq,
            field="command_length",
            offset=0,
            fatal=True,
        )


def decode(data: bytes | memoryview, *, max_length: int = L.DEFAULT_MAX_LENGTH) -> p.Pdu:
    """Exactly one complete PDU, header included; RemoteProtocolError otherwise."""
    buf = data if type(data) is bytes else bytes(data)
    if len(buf) < 16:
        raise RemoteProtocolError(
            f"{len(buf)} octets: shorter than a PDU header",
            command_status=c.ESME_RINVCMDLEN,
            field="command_length",
            fatal=True,
        )
    length, cid, status, seq = L.HEADER.unpack_from(buf)
    _check_length(length, max_length, cid, seq)
    if length != len(buf):
        raise RemoteProtocolError(
            f"{_name(cid)} seq {seq}: command_length {length} but {len(buf)} octets given",
            command_status=c.ESME_RINVCMDLEN,
            command_id=cid,
            sequence=seq,
            field="command_length",
        )
    fast = FAST.get(cid)
    pdu = fast(buf, 16, length, seq, status) if fast is not None else None
    return pdu if pdu is not None else decode_at(buf, 0, length)


class Decoder:
    """Streaming: feed arbitrary chunks, get complete PDUs (or errors) in order.

    A malformed PDU with a sane command_length comes out as a RemoteProtocolError
    in its place and the stream goes on. A command_length outside 16..max_length
    cannot be resynchronised: a fatal error comes out and every later feed
    raises it again.
    """

    def __init__(self, *, max_length: int = L.DEFAULT_MAX_LENGTH) -> None:
        self._buf = b""
        self._max = max_length
        self._fatal: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[p.Pdu | RemoteProtocolError]:
        """Every complete PDU in the bytes so far, in one pass (the common ones on a fast path)."""
        if self._fatal is not None:
            raise self._fatal
        buf = self._buf + data if self._buf else bytes(data)
        out: list[p.Pdu | RemoteProtocolError] = []
        pos, size, limit = 0, len(buf), self._max
        unpack, fast_paths = L.HEADER.unpack_from, FAST
        while size - pos >= 16:
            length, cid, status, seq = unpack(buf, pos)
            if length < 16 or length > limit:
                return self._fail(out, length, cid, seq)
            end = pos + length
            if end > size:
                break
            fast = fast_paths.get(cid)
            pdu = fast(buf, pos + 16, end, seq, status) if fast is not None else None
            if pdu is None:
                try:
                    pdu = decode_at(buf, pos, length)
                except RemoteProtocolError as exc:
                    out.append(exc)
                    pos = end
                    continue
            out.append(pdu)
            pos = end
        if size - pos >= 4:
            length = int.from_bytes(buf[pos : pos + 4], "big")
            if length < 16 or length > limit:
                return self._fail(out, length, 0, 0)
        self._buf = buf[pos:]
        return out

    def _fail(
        self, out: list[p.Pdu | RemoteProtocolError], length: int, cid: int, seq: int
    ) -> list[p.Pdu | RemoteProtocolError]:
        """A command_length that cannot be right: the stream cannot be resynchronised."""
        try:
            _check_length(length, self._max, cid, seq)
        except RemoteProtocolError as exc:
            self._fatal = exc
            out.append(exc)
        self._buf = b""
        return out

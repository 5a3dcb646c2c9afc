"""The sans-IO SMPP session: bytes in, events out; PDUs in, bytes out.

Shaped like h2: ``receive_data(data) -> list[Event]``, ``send(pdu)``,
``data_to_send()``. The session owns sequence numbers, the bind state, the
table of outstanding requests and its window. It answers enquire_link itself
(even with a full window) and unbind, nacks what it cannot parse, and refuses
PDUs that are illegal in the current state. It never reads a clock: a caller's
timeout calls :meth:`Session.expire`.

Which PDU may go which way in which state is a lookup table, as in h11's
``_state.py``; a missing entry is a LocalProtocolError for our own sends and an
ESME_RINVBNDSTS answer for the peer's.
"""

from __future__ import annotations

import enum

import msgspec

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.errors import LocalProtocolError, RemoteProtocolError
from engine.smpp.layout import HEADER


class Role(enum.Enum):
    ESME = "esme"
    SMSC = "smsc"


class State(enum.Enum):
    OPEN = "open"
    BINDING = "binding"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"
    CLOSED = "closed"


# -- events ------------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, gc=False):
    pass


class RequestReceived(Event, frozen=True, gc=False):
    """A request the caller must handle and answer (``Session.respond``)."""

    pdu: p.Pdu


class BodySent(msgspec.Struct, frozen=True, gc=False):
    """What the session keeps of a windowed request sent with ``send_body``: its sequence
    number and command id stand for it when its response comes."""

    sequence: int
    command_id: int


class ResponseReceived(Event, frozen=True, gc=False):
    """A response (or a generic_nack) matched to our pending request."""

    request: p.Pdu | BodySent
    response: p.Pdu


class Bound(Event, frozen=True):
    system_id: str
    state: State


class BindFailed(Event, frozen=True):
    status: int


class UnbindRequested(Event, frozen=True):
    pass


class Closed(Event, frozen=True):
    pass


class ProtocolViolation(Event, frozen=True):
    """The peer sent something malformed or illegal; the answer is already queued."""

    error: RemoteProtocolError


class UnmatchedResponse(Event, frozen=True):
    """A response nobody waits for (late, duplicated, or after expire())."""

    pdu: p.Pdu


# -- the tables --------------------------------------------------------------

_BOUND = (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)
_BIND_STATE: dict[type[p.Pdu], State] = {
    p.BindTransmitter: State.BOUND_TX,
    p.BindReceiver: State.BOUND_RX,
    p.BindTransceiver: State.BOUND_TRX,
}
_BIND_RESPS = (p.BindTransmitterResp, p.BindReceiverResp, p.BindTransceiverResp)
_KEEP = None  # the state does not change

# What each side of the session may originate (requests), per state.
_TX_ORIGINATED = (p.SubmitSm, p.DataSm, p.QuerySm)
_RX_ORIGINATED = (p.DeliverSm, p.DataSm, p.AlertNotification)
# What an ESME takes from its SMSC: alert_notification answers a set_dpf that Volley never sets.
_ESME_TAKES = (p.DeliverSm, p.DataSm)
_ANY_TIME = (p.EnquireLink,)


def _requests(
    tx: tuple[type[p.Pdu], ...], rx: tuple[type[p.Pdu], ...]
) -> dict[State, dict[type[p.Pdu], State | None]]:
    """Legal requests per state: tx for transmitter, rx for receiver, both for transceiver."""
    table: dict[State, dict[type[p.Pdu], State | None]] = {
        State.OPEN: dict.fromkeys(_ANY_TIME, _KEEP),
        State.BINDING: dict.fromkeys(_ANY_TIME, _KEEP),
        State.UNBINDING: {p.EnquireLink: _KEEP},
        State.CLOSED: {},
    }
    for state, allowed in ((State.BOUND_TX, tx), (State.BOUND_RX, rx), (State.BOUND_TRX, tx + rx)):
        table[state] = dict.fromkeys((*allowed, *_ANY_TIME), _KEEP)
        table[state][p.Unbind] = State.UNBINDING
    return table


# SEND[role][state][request class] -> new state; RECEIVE likewise for the peer's requests.
SEND: dict[Role, dict[State, dict[type[p.Pdu], State | None]]] = {
    Role.ESME: _requests(_TX_ORIGINATED, ()),
    Role.SMSC: _requests((), _RX_ORIGINATED),
}
RECEIVE: dict[Role, dict[State, dict[type[p.Pdu], State | None]]] = {
    Role.ESME: _requests((), _ESME_TAKES),
    Role.SMSC: _requests(_TX_ORIGINATED, ()),
}
for _bind in _BIND_STATE:
    SEND[Role.ESME][State.OPEN][_bind] = State.BINDING
    RECEIVE[Role.SMSC][State.OPEN][_bind] = State.BINDING
del _bind

WINDOWED = frozenset({p.SubmitSm, p.DataSm, p.QuerySm, p.DeliverSm})


def _windowed(request: p.Pdu | BodySent) -> bool:
    return type(request) is BodySent or type(request) in WINDOWED


def _name(request: p.Pdu | BodySent) -> str:
    return codec.command_name(request.command_id)


def answers(response: p.Pdu, request: p.Pdu | BodySent) -> bool:
    """Whether ``response`` is of the type that answers ``request`` (a generic_nack answers any)."""
    return type(response) is p.GenericNack or response.command_id == request.command_id | 0x80000000


class Session:
    def __init__(
        self,
        role: Role,
        *,
        window: int = 10,
        max_length: int = codec.DEFAULT_MAX_LENGTH,
        auto_answer: bool = True,
    ) -> None:
        self.role = role
        self.state = State.OPEN
        self.window = window
        self.auto_answer = auto_answer
        self.system_id = ""
        self._decoder = codec.Decoder(max_length=max_length)
        self._out: list[bytes] = []
        self._pending: dict[int, p.Pdu | BodySent] = {}
        self._windowed = 0
        self._seq = 0
        self._send_table = SEND[role]
        self._receive_table = RECEIVE[role]
        self._takes = frozenset(cls for table in self._receive_table.values() for cls in table)
        self.received = 0  # complete PDUs decoded, well-formed or not: proof the peer is alive

    # -- outgoing ----------------------------------------------------------

    @property
    def window_free(self) -> int:
        return self.window - self._windowed

    @property
    def outstanding(self) -> dict[int, p.Pdu | BodySent]:
        return self._pending

    def _next_sequence(self) -> int:
        seq = self._seq
        while True:
            seq = seq + 1 if seq < c.SEQUENCE_MAX else 1
            if seq not in self._pending:
                self._seq = seq
                return seq

    def send(self, pdu: p.Pdu) -> p.Pdu:
        """Queue a request; returns it with its sequence number set."""
        cls = type(pdu)
        if pdu.command_id & 0x80000000:
            raise LocalProtocolError(f"use respond() for {cls.__name__}")
        allowed = self._send_table[self.state]
        if cls not in allowed:
            raise LocalProtocolError(f"can't send {cls.__name__} in state {self.state.name}")
        windowed = cls in WINDOWED
        if windowed and self._windowed >= self.window:
            raise LocalProtocolError(f"window full ({self.window} outstanding)")
        pdu = msgspec.structs.replace(pdu, sequence=self._next_sequence())
        self._out.append(codec.encode(pdu))
        if cls is not p.AlertNotification:
            self._pending[pdu.sequence] = pdu
            self._windowed += windowed
        new = allowed[cls]
        if new is not None:
            self.state = new
        return pdu

    def send_body(self, command_id: int, body: bytes) -> int:
        """Queue a windowed request encoded beforehand (engine/smpp/encode.py ``encode_body``);
        returns its sequence number. Its response comes as ``ResponseReceived`` with a
        ``BodySent`` standing for the request."""
        cls = p.BY_COMMAND_ID[command_id]
        if cls not in self._send_table[self.state] or cls not in WINDOWED:
            raise LocalProtocolError(f"can't send {cls.__name__} in state {self.state.name}")
        if self._windowed >= self.window:
            raise LocalProtocolError(f"window full ({self.window} outstanding)")
        seq = self._next_sequence()
        self._out.append(HEADER.pack(16 + len(body), command_id, 0, seq) + body)
        self._pending[seq] = BodySent(seq, command_id)
        self._windowed += 1
        return seq

    def respond(self, request: p.Pdu, status: int = 0, **fields: object) -> p.Pdu:
        """Queue the response to a peer's request, with the request's sequence number."""
        resp_cls = p.RESPONSE_FOR.get(type(request))
        if resp_cls is None:
            raise LocalProtocolError(f"{type(request).__name__} takes no response")
        resp = resp_cls(sequence=request.sequence, status=status, **fields)
        self._out.append(codec.encode(resp))
        if resp_cls in _BIND_RESPS and self.state is State.BINDING:
            self.state = _BIND_STATE[type(request)] if status == 0 else State.OPEN
            if status == 0:
                self.system_id = getattr(request, "system_id", "")
        return resp

    def acknowledge(self, request: p.DeliverSm | p.DataSm, status: int = 0) -> None:
        """``respond`` for the PDU an ESME answers most (deliver_sm, data_sm): an empty
        message_id, packed directly."""
        cid = request.command_id | 0x80000000
        self._out.append(HEADER.pack(17, cid, status, request.sequence) + b"\0")

    def nack(self, sequence: int, status: int) -> None:
        self._out.append(codec.encode(p.GenericNack(sequence=sequence, status=status)))

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out = []
        return out

    def expire(self, sequence: int) -> p.Pdu | BodySent | None:
        """The caller gave up waiting: forget the request so its window slot frees."""
        pdu = self._pending.pop(sequence, None)
        if pdu is not None and _windowed(pdu):
            self._windowed -= 1
        return pdu

    def close(self) -> None:
        self.state = State.CLOSED

    # -- incoming ----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        events: list[Event] = []
        try:
            items = self._decoder.feed(data)
        except RemoteProtocolError:
            return []
        self.received += len(items)
        for item in items:
            if isinstance(item, RemoteProtocolError):
                self._malformed(item, events)
                if self.state is State.CLOSED:
                    break
            elif item.command_id & 0x80000000:
                self._response(item, events)
            else:
                self._request(item, events)
        return events

    def _malformed(self, err: RemoteProtocolError, events: list[Event]) -> None:
        is_response = bool(err.command_id & 0x80000000)
        if not is_response or err.fatal:
            self.nack(err.sequence, err.command_status)
        events.append(ProtocolViolation(err))
        if err.fatal:
            self._fail(events)
            return
        request = self._pending.get(err.sequence) if is_response else None
        if request is None:
            return
        stand_in = p.BY_COMMAND_ID.get(err.command_id, p.GenericNack)
        if stand_in is p.GenericNack and err.command_id != c.GENERIC_NACK:
            self._mismatch(codec.command_name(err.command_id), err, request, events)
        else:  # its body is unreadable; its header still says whether the peer accepted
            self._response(stand_in(sequence=err.sequence, status=err.pdu_status), events)

    def _mismatch(
        self,
        name: str,
        resp: p.Pdu | RemoteProtocolError,
        request: p.Pdu | BodySent,
        events: list[Event],
    ) -> None:
        """A response of another type than its request's: the stream cannot be trusted."""
        self.expire(request.sequence)
        error = RemoteProtocolError(
            f"{name} seq {request.sequence} does not answer {_name(request)} "
            f"seq {request.sequence}",
            command_status=c.ESME_RINVCMDID,
            command_id=resp.command_id,
            sequence=request.sequence,
            field="command_id",
            offset=4,
            fatal=True,
        )
        events.append(ProtocolViolation(error))
        self._fail(events)

    def _fail(self, events: list[Event]) -> None:
        self.state = State.CLOSED
        events.append(Closed())

    def _response(self, resp: p.Pdu, events: list[Event]) -> None:
        request = self._pending.pop(resp.sequence, None)
        if request is None:
            events.append(UnmatchedResponse(resp))
            return
        if _windowed(request):
            self._windowed -= 1
        cls = type(request)
        if not answers(resp, request):
            self._mismatch(type(resp).__name__, resp, request, events)
            return
        if cls in _BIND_STATE:
            self._bind_response(cls, resp, events)
        elif cls is p.Unbind:
            self.state = State.CLOSED
            events.append(Closed())
        else:
            events.append(ResponseReceived(request, resp))

    def _bind_response(self, request: type, resp: p.Pdu, events: list[Event]) -> None:
        if resp.status in (c.ESME_ROK, c.ESME_RALYBND):
            self.state = _BIND_STATE[request]
            self.system_id = getattr(resp, "system_id", "")
            events.append(Bound(self.system_id, self.state))
        else:
            self.state = State.OPEN
            events.append(BindFailed(resp.status))

    def _request(self, req: p.Pdu, events: list[Event]) -> None:
        cls = type(req)
        allowed = self._receive_table[self.state]
        if cls not in allowed:
            self._refuse(req, events)
            return
        if cls is p.EnquireLink and self.auto_answer:
            self.respond(req)
            return
        if cls is p.Unbind:
            self.respond(req)
            self.state = State.CLOSED
            events.append(UnbindRequested())
            events.append(Closed())
            return
        new = allowed[cls]
        if new is not None:
            self.state = new
        events.append(RequestReceived(req))

    def _refuse(self, req: p.Pdu, events: list[Event]) -> None:
        """A request this side never takes gets generic_nack(invalid command id); one it
        takes, but not in this state, its response (or a generic_nack) with invalid bind status."""
        cls = type(req)
        if cls not in self._takes:
            status, what = c.ESME_RINVCMDID, f"a {self.role.value} does not take it"
            self.nack(req.sequence, status)
        else:
            status, what = c.ESME_RINVBNDSTS, f"illegal in state {self.state.name}"
            if cls in p.RESPONSE_FOR:
                self.respond(req, status)
            else:
                self.nack(req.sequence, status)
        error = RemoteProtocolError(
            f"{cls.__name__} seq {req.sequence}: {what}",
            command_status=status,
            command_id=req.command_id,
            sequence=req.sequence,
        )
        events.append(ProtocolViolation(error))

"""The control channel's messages: length-prefixed msgpack of tagged msgspec Structs.

Defined once here; the engine serves them and the TUI imports them. Every frame
is a 4-byte big-endian length followed by one msgpack-encoded Request or Reply.
``VERSION`` travels in Hello; a peer with another version gets an Error.
"""

from __future__ import annotations

import struct

import msgspec

VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
LENGTH = struct.Struct(">I")


class Base(msgspec.Struct, tag=True, frozen=True, kw_only=True, omit_defaults=True):
    pass


# -- requests ----------------------------------------------------------------


class Hello(Base):
    version: int = VERSION
    client: str = ""


class Subscribe(Base):
    interval: float = 1.0


class Unsubscribe(Base):
    pass


class Pause(Base):
    operator: str = ""
    bind: str = ""
    batch: str = ""


class Resume(Base):
    operator: str = ""
    bind: str = ""
    batch: str = ""


class Reconnect(Base):
    bind: str


class SetTps(Base):
    operator: str
    tps: float


class StopNumber(Base):
    number: str
    reason: str = "operator"


class Drain(Base):
    """Stop taking new work, finish what is in flight, then stop the engine."""


class Reload(Base):
    """Read engine.toml again and apply it (engine/reload.py); a bad file is refused."""


Request = (
    Hello
    | Subscribe
    | Unsubscribe
    | Pause
    | Resume
    | Reconnect
    | SetTps
    | StopNumber
    | Drain
    | Reload
)


# -- replies -----------------------------------------------------------------


class BindView(Base):
    name: str
    operator: str
    state: str
    tps_now: float = 0.0
    tps_limit: float = 0.0
    window_used: int = 0
    window: int = 0
    submitted: int = 0
    errors: int = 0
    throttled: int = 0
    last_error: str = ""
    reconnects: int = 0
    paused: bool = False


class Histogram(Base):
    """Observations counted in fixed buckets (seconds); ``counts`` has one more than
    ``bounds``: the last counts those beyond every bound. Not cumulative."""

    bounds: list[float] = []
    counts: list[int] = []
    total: float = 0.0  # the sum of the observations


class OperatorView(Base):
    name: str
    up: bool = False
    paused: bool = False
    tps_now: float = 0.0
    tps_limit: float = 0.0
    tps_configured: float = 0.0
    throttles: int = 0
    # submit_sm responses (parts) by command_status "0x00".."0xFF", "none": no response came
    submits: dict[str, int] = {}
    receipts: dict[str, int] = {}  # receipts by stat (DELIVRD, UNDELIV, ...)
    submit_latency: Histogram | None = None  # submit_sm to its response
    receipt_latency: Histogram | None = None  # submit_sm_resp to the final receipt


class WindowView(Base):
    kind: str
    open: bool
    next_open: str = ""
    zone: str = ""


class Snapshot(Base):
    """What the engine (or, with ``live`` false, the store alone) looks like now."""

    at: float
    live: bool = True
    pid: int = 0
    operators: list[OperatorView] = []
    binds: list[BindView] = []
    states: dict[str, int] = {}
    kinds: dict[str, dict[str, int]] = {}
    batches: dict[str, dict[str, int]] = {}
    paused_batches: list[str] = []
    receipts: dict[str, int] = {}
    top_errors: list[tuple[str, int]] = []
    windows: list[WindowView] = []
    scheduled_by_hour: dict[str, int] = {}
    rates: dict[str, float] = {}
    history: list[float] = []  # submits per second, oldest first, one per second
    totals: dict[str, int] = {}
    events: list[str] = []
    dead: int = 0
    stopped: int = 0
    prunes: list[str] = []
    unmatched: int = 0
    default_zone: int = 0  # messages not yet sent timed in [defaults] timezone
    unroutable: int = 0  # messages waiting that no operator of the running config routes
    # batch -> {"clicks", "clickers", "replies", "optouts"}: what came back (from the store)
    engagement: dict[str, dict[str, int]] = {}
    webhook_backlog: int = 0  # webhook events waiting in the store's outbox
    webhook_dead: int = 0  # webhook events given up after [webhooks] retry_for


class Ok(Base):
    detail: str = ""


BAD_REQUEST = "bad_request"  # Error.code: the request named nothing the engine has


class Error(Base):
    message: str
    code: str = ""


Reply = Ok | Error | Snapshot | Hello

_request_decoder = msgspec.msgpack.Decoder(Request)
_reply_decoder = msgspec.msgpack.Decoder(Reply)
_encoder = msgspec.msgpack.Encoder()


def frame(msg: Base) -> bytes:
    body = _encoder.encode(msg)
    return LENGTH.pack(len(body)) + body


def decode_request(body: bytes) -> Request:
    """Raises msgspec.DecodeError / ValidationError with a readable message."""
    return _request_decoder.decode(body)


def decode_reply(body: bytes) -> Reply:
    return _reply_decoder.decode(body)


class FrameError(Exception):
    pass


class FrameReader:
    """Splits a byte stream into frame bodies (sans-IO)."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= 4:
            (n,) = LENGTH.unpack_from(self._buf)
            if n > self._max:
                raise FrameError(f"frame of {n} bytes exceeds the {self._max}-byte limit")
            if len(self._buf) < 4 + n:
                break
            out.append(bytes(self._buf[4 : 4 + n]))
            del self._buf[: 4 + n]
        return out

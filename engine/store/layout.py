"""The store's layout: its databases, their keys, and the bytes of a status record.

One LMDB environment, one named database per purpose; keys are built for single
cursor seeks (8-byte big-endian ids and times, so cursors walk in order):

- ``body``      id                  -> Body (msgpack): written once at enqueue, never again
- ``status``    id                  -> the status record (below): a move rewrites it whole
- ``ready``     route NUL id        -> the status record: claims walk a route in id order
- ``parked``    batch NUL id        -> the status record: queued in a paused batch
- ``sched``     due_ms id           -> the status record: promote walks from the start
- ``inflight``  claim seq           -> owner, claim time, ids: one set per claim transaction
- ``sent``      sent_ms seq         -> ids awaiting a receipt: one set per commit and ms
- ``final``     done_ms seq         -> ids that became final: one set per commit and ms
- ``smsc``      operator NUL SMSC id -> id part(1): receipts are matched within an operator
- ``batchidx``  batch NUL ext_id    -> id: idempotent enqueue
- ``batches``   batch               -> BatchInfo (counts by state)
- ``counters``  s NUL state, k NUL kind NUL state, store-wide counts -> count(8)
- ``numbers``   number              -> NumberRecord: stop, dead, failures, cap sends
- ``stop`` / ``dead``  number       -> '': which numbers are stop-listed / pruned (listing)
- ``names``     batches, kinds, routes and operators <-> small ints (see :class:`Names`)
- ``history``   id seq              -> a rare transition (requeue, retry, schedule, unknown,
                                       an intermediate receipt): [at_ms, from, to, reason,
                                       due_ms, attempts]; the common path writes none
- ``mo``, ``unmatched``, ``meta``

A message waiting (queued, scheduled) or in flight has the stored state
WAITING: where it waits says which (ready or parked: queued; sched:
scheduled; neither: in flight, in the claim's set), so a claim writes no
status. The value of a ready, parked or sched entry is the message's status
record, byte for byte, so a claim reads no status either.
"""

from __future__ import annotations

import functools
import struct

import msgspec

from engine.store import campaign, outbox
from engine.store import records as r

SCHEMA = 2

NAMES: tuple[str, ...] = (
    "meta",
    "names",
    "body",
    "status",
    "ready",
    "parked",
    "sched",
    "inflight",
    "sent",
    "final",
    "smsc",
    "batchidx",
    "batches",
    "counters",
    "numbers",
    "stop",
    "dead",
    "mo",
    "unmatched",
    "history",
    *campaign.DATABASES,  # campaigns: links, clicks, contacts, engagement (campaign.py)
    *outbox.DATABASES,  # webhooks: the outbox, what was delivered, dead letters (outbox.py)
)
SPARE_DBS = 8  # room for databases a later schema adds

U64 = struct.Struct(">Q")
U32 = struct.Struct(">I")
PART = [bytes([i]) for i in range(256)]
MAX_KEY = 511  # LMDB's default maximum key size, in octets

# -- states and flags ---------------------------------------------------------

CODE = {name: i for i, name in enumerate(r.STATES)}  # a state's code: its index
QUEUED, SCHEDULED, INFLIGHT, SENT = (CODE[s] for s in (r.QUEUED, r.SCHEDULED, r.INFLIGHT, r.SENT))
WAITING = QUEUED  # the stored state of a pending message: its place says which
PENDING = frozenset({QUEUED, SCHEDULED, INFLIGHT})
FINAL = frozenset(CODE[s] for s in r.FINAL)
SEVERITY = {CODE[s]: n for s, n in r.SEVERITY.items()}

NO_RECEIPT = 1  # sent without registered_delivery: nothing is awaited
ZONE_DEFAULT = 2  # its zone is [defaults] timezone
HISTORY = 4  # its number had failures on record when it was claimed
RECEIPTED = 8  # its final state came from its receipts
MULTIPART = 16  # sent in more than one part: the tail has each part's state
KEPT_FLAGS = ZONE_DEFAULT  # what a mark-sent keeps (the rest describe one sending)

NONE = -(2**31)  # err / network_error absent

# What the store keeps in memory of a message it has in flight: its claim's seq, its
# status record as claimed, HISTORY if its number had failures then, its number, and
# the claim's token (its seq, 8 bytes: what Claimed.token and Op.token carry).
Live = tuple[int, bytes, int, bytes, bytes]

# -- the status record ------------------------------------------------------------
#
#  0 B state   1 B flags   2 H operator   4 q updated_ms   12 q sent_ms   20 I epoch
# 24 B attempts   25 x   26 H kind   28 I batch   32 H route   34 x x   36 q due_ms
# 44 I submit status   48 i err   52 i network error
# (due_ms while pending; once sent, when the claim that sent it took it: claimed_ms)
# 56 tail: msgpack [part states, SMSC ids, reason], or nothing when all are empty
#
# What a mark-sent changes is the first 24 bytes, what a delivery changes the first 12:
# those rewrite a record by packing a few bytes and keeping the rest as they are.

HEAD = struct.Struct("<BBHqqIBxHIHxxqIii")
FRONT = struct.Struct("<BBHqqI")  # state, flags, operator, updated_ms, sent_ms, epoch
ERRS = struct.Struct("<ii")
KIND_BATCH_ROUTE = struct.Struct("<HIH")  # at 26
SIZE = HEAD.size  # 56
assert SIZE == 56
assert FRONT.size == 24
EPOCH_AT, ATTEMPTS_AT, KIND_AT = 20, 24, 26
KIND_BATCH = slice(26, 32)  # the bytes moves are counted by in the hot path


class Tail(msgspec.Struct, array_like=True, gc=False):
    """What follows the fixed head. ``parts`` comes first so that a part's state is one
    byte at a fixed place (PARTS_AT + part) while there are fewer than 256 parts."""

    parts: bytes = b""  # multi-part only: each part's state code + 1 (0: no receipt yet)
    ids: list[str] = []
    reason: str = ""


PARTS_AT = SIZE + 3  # 0x93 (an array of 3), 0xc4 n (bin 8): the parts' bytes follow


_tail_enc = msgspec.msgpack.Encoder()
_tail_dec = msgspec.msgpack.Decoder(Tail)
_EMPTY = Tail()


def pack_tail(ids: list[str], parts: bytes, reason: str) -> bytes:
    if not ids and not parts and not reason:
        return b""
    return _tail_enc.encode(Tail(parts, ids, reason))


def unpack_tail(raw: bytes) -> Tail:
    return _tail_dec.decode(memoryview(raw)[SIZE:]) if len(raw) > SIZE else _EMPTY


class Status:
    """A status record, decoded (for the paths that change more than the state)."""

    __slots__ = (
        "attempts",
        "batch",
        "code",
        "due_ms",
        "epoch",
        "err",
        "flags",
        "ids",
        "kind",
        "net",
        "operator",
        "parts",
        "reason",
        "route",
        "sent_ms",
        "state",
        "updated_ms",
    )

    def __init__(
        self,
        *,
        state: int = WAITING,
        flags: int = 0,
        operator: int = 0,
        updated_ms: int = 0,
        sent_ms: int = 0,
        attempts: int = 0,
        kind: int = 0,
        batch: int = 0,
        route: int = 0,
        due_ms: int = 0,
        epoch: int = 0,
        code: int = 0,
        err: int = NONE,
        net: int = NONE,
        ids: list[str] | None = None,
        parts: bytes = b"",
        reason: str = "",
    ) -> None:
        self.state, self.flags, self.operator = state, flags, operator
        self.updated_ms, self.sent_ms, self.attempts = updated_ms, sent_ms, attempts
        self.kind, self.batch, self.route, self.due_ms = kind, batch, route, due_ms
        self.epoch, self.code, self.err, self.net = epoch, code, err, net
        self.ids = [] if ids is None else ids
        self.parts, self.reason = parts, reason

    @classmethod
    def unpack(cls, raw: bytes) -> Status:
        (state, flags, operator, updated, sent, epoch, attempts, kind, batch, route, due,
         code, err, net) = HEAD.unpack_from(raw)  # fmt: skip
        tail = unpack_tail(raw)
        return cls(
            state=state, flags=flags, operator=operator, updated_ms=updated, sent_ms=sent,
            attempts=attempts, kind=kind, batch=batch, route=route, due_ms=due, epoch=epoch,
            code=code, err=err, net=net, ids=list(tail.ids), parts=tail.parts,
            reason=tail.reason,
        )  # fmt: skip

    def pack(self) -> bytes:
        head = HEAD.pack(
            self.state, self.flags, self.operator, self.updated_ms, self.sent_ms,
            self.epoch & 0xFFFFFFFF, min(self.attempts, 255), self.kind, self.batch, self.route,
            self.due_ms, self.code & 0xFFFFFFFF, _i32(self.err), _i32(self.net),
        )  # fmt: skip
        return head + pack_tail(self.ids, self.parts, self.reason)


def _i32(v: int) -> int:
    return v if -(2**31) <= v < 2**31 else NONE


def enqueued(kind: int, batch: int, route: int, due_ms: int, now_ms: int, flags: int) -> bytes:
    """The status record of a message as enqueued (the same bytes at load and publish)."""
    return HEAD.pack(WAITING, flags, 0, now_ms, 0, 0, 0, kind, batch, route, due_ms, 0, NONE, NONE)


def kind_batch_route(raw: bytes) -> tuple[int, int, int]:
    return KIND_BATCH_ROUTE.unpack_from(raw, KIND_AT)


# -- names: batches, kinds, routes and operators as small ints (tx.Names) ---------

BATCH, KIND, ROUTE, OPERATOR = b"b", b"k", b"r", b"o"


# -- keys -----------------------------------------------------------------------


def ms(t: float) -> int:
    return max(0, int(t * 1000))


def smsc_key(operator: str, smsc_id: str) -> bytes:
    """SMSC ids are unique per SMSC only: the index is keyed by operator and id."""
    return (operator + "\0" + smsc_id).encode() if operator else smsc_id.encode()


@functools.lru_cache(maxsize=4096)
def counter_keys(kind: str, state: str) -> tuple[bytes, bytes]:
    return b"s\0" + state.encode(), b"k\0" + kind.encode() + b"\0" + state.encode()


def unpack_ids(raw: bytes | memoryview, start: int = 0) -> list[int]:
    view = memoryview(raw)[start:]
    return [i for (i,) in U64.iter_unpack(view)]


def inflight_value(owner: bytes, claim_ms: int, ids: list[bytes]) -> bytes:
    return bytes([len(owner)]) + owner + U64.pack(claim_ms) + b"".join(ids)


def read_inflight(raw: bytes) -> tuple[bytes, int, list[int]]:
    """(owner, claim_ms, ids) of a claim set."""
    n = raw[0]
    owner = bytes(raw[1 : 1 + n])
    return owner, U64.unpack_from(raw, 1 + n)[0], unpack_ids(raw, 9 + n)


# counters: store-wide counts kept beside the per-state ones
ZONE_DEFAULT_KEY = b"zone_default"
UNROUTABLE_KEY = b"unroutable"
AWAITING_KEY = b"awaiting"
UNMATCHED_KEY = b"unmatched"
EPOCH_KEY = b"troubled"  # numbers that went from no failures to some: ever (monotonic)


class Coders:
    """Encoders and decoders, built once per store."""

    def __init__(self) -> None:
        self.enc = msgspec.msgpack.Encoder()
        self.body = msgspec.msgpack.Decoder(r.Body)
        self.claimed = msgspec.msgpack.Decoder(r.Claimed)
        self.batch = msgspec.msgpack.Decoder(r.BatchInfo)
        self.number = msgspec.msgpack.Decoder(r.NumberRecord)
        self.mo = msgspec.msgpack.Decoder(r.Mo)
        self.unmatched = msgspec.msgpack.Decoder(r.Unmatched)

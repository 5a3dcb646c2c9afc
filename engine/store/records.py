"""What the store keeps and the operations it applies: msgspec Structs.

Stored records are ``array_like`` msgpack: new fields are only ever appended,
with defaults, so an older record still decodes (schema evolution).
"""

from __future__ import annotations

import msgspec

QUEUED = "queued"
SCHEDULED = "scheduled"
INFLIGHT = "inflight"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
EXPIRED = "expired"
REJECTED = "rejected"
DELETED = "deleted"
UNKNOWN = "unknown"
FAILED = "failed"
SKIPPED = "skipped"
CANCELLED = "cancelled"

STATES = (
    QUEUED,
    SCHEDULED,
    INFLIGHT,
    SENT,
    DELIVERED,
    UNDELIVERED,
    EXPIRED,
    REJECTED,
    DELETED,
    UNKNOWN,
    FAILED,
    SKIPPED,
    CANCELLED,
)
PENDING = frozenset({QUEUED, SCHEDULED, INFLIGHT})
FINAL = frozenset(
    {DELIVERED, UNDELIVERED, EXPIRED, REJECTED, DELETED, UNKNOWN, FAILED, SKIPPED, CANCELLED}
)
UNROUTED = ""  # the route of a message no operator routes (engine/routing.py)

# What becomes part of an LMDB key (at most 511 bytes) is bounded at the edge:
MAX_BATCH_BYTES = 128  # a batch id, UTF-8
MAX_ID_CHARS = 64  # a message's own id (ext_id); at most 256 bytes in UTF-8
# A multi-part message takes its worst part's state.
SEVERITY = {DELIVERED: 0, DELETED: 1, EXPIRED: 2, UNKNOWN: 3, UNDELIVERED: 4, REJECTED: 5}


class Record(msgspec.Struct, array_like=True, gc=False, kw_only=True):
    pass


class Link(Record):
    """A tracked short link in a message's text: ``[links] base`` + ``code`` stands for ``url``."""

    code: str
    url: str


class Message(Record):
    id: int
    batch: str
    ext_id: str
    to: str
    text: str
    sender: str
    kind: str
    route: str
    created: float
    not_before: float | None = None
    expires: float | None = None
    parts: int = 1
    state: str = QUEUED
    due: float = 0.0
    attempts: int = 0
    smsc_ids: list[str] = []
    status: int = 0
    err: int | None = None
    reason: str = ""
    updated: float = 0.0
    part_states: list[str] = []
    network_error: int | None = None
    zone: str = ""
    receipt: bool = True  # sent with registered_delivery: awaits a receipt
    window: str = ""  # a [windows.NAME] chosen for the batch instead of the kind's
    zone_default: bool = False  # its zone is [defaults] timezone: the number's was unknown
    line: int = 0  # the line of its producer's file (0: none)
    operator: str = ""  # the operator that accepted it (its SMSC ids are that SMSC's)
    links: list[Link] = []  # its tracked short links (the codes are in ``text``)
    claimed: float = 0.0  # when the claim that sent it (or has it in flight) took it
    sent: float = 0.0  # when its submit_sm_resp came (0: not sent)


class Transition(Record):
    """A rare step in a message's history (``Store.message_history``): requeued, retried,
    scheduled, re-routed, ended unknown, an intermediate receipt. States are names."""

    at: float
    old: str
    new: str
    reason: str = ""
    due: float = 0.0
    attempts: int = 0


class Body(Record):
    """A message as enqueued: written once, never rewritten (``body``, keyed by id)."""

    batch: str
    ext_id: str
    to: str
    text: str
    sender: str
    kind: str
    route: str  # as enqueued; the status record holds the route it waits on now
    created: float
    not_before: float | None = None
    expires: float | None = None
    parts: int = 1
    zone: str = ""
    window: str = ""
    zone_default: bool = False
    line: int = 0
    due: float = 0.0  # as enqueued
    links: list[Link] = []  # its tracked short links (the codes are in ``text``)


class Claimed(Body):
    """A claimed message: its body (decoded straight from the body's bytes), its id, the
    route it was claimed on, its attempts so far, and ``token``: which claim took it (8
    bytes, shared by the claim's messages; give it back on the operation that answers).
    The store keeps what the claim saw of its status in memory, not in the token."""

    id: int = 0
    attempts: int = 0
    token: bytes = b""

    @property
    def state(self) -> str:
        return INFLIGHT


class NewMessage(msgspec.Struct, kw_only=True):
    """A validated message from a producer, before the store gives it an id."""

    to: str
    text: str
    sender: str
    kind: str = "marketing"
    ext_id: str = ""
    route: str = "default"
    parts: int = 1
    not_before: float | None = None
    expires: float | None = None
    due: float | None = None
    zone: str = ""
    window: str = ""
    zone_default: bool = False
    line: int = 0  # its line in the producer's file: named when an id repeats with other content
    links: list[Link] = []  # tracked short links: each code is in ``text`` after [links] base


class BatchInfo(Record):
    counts: dict[str, int] = {}
    total: int = 0
    created: float = 0.0
    loading_pid: int = 0
    paused: bool = False
    cancelled: float = 0.0  # when `volley cancel` ended it (0: never)
    campaign: str = ""  # the campaign this batch is a step of ("": none)
    segment: str = ""  # the step's segment in its campaign


class StopEntry(Record):
    reason: str
    at: float


class Outcome(Record):
    stat: str
    err: int | None
    at: float


class NumberHistory(Record):
    outcomes: list[Outcome] = []
    sent: list[float] = []


class DeadEntry(Record):
    at: float
    expires: float
    evidence: list[Outcome] = []


class NumberRecord(Record):
    """All the store knows of one number (``numbers``): one get per message at a claim.

    ``outcomes``: failures since its last delivery (the last ``history_limit``);
    ``sent``: its sends within the longest frequency cap; ``stop``: on the stop
    list; ``dead``: pruned. A record with none of these is deleted."""

    outcomes: list[Outcome] = []
    sent: list[float] = []
    stop: StopEntry | None = None
    dead: DeadEntry | None = None


class Mo(Record):
    at: float
    source: str
    destination: str
    text: str
    bind: str = ""
    stopped: bool = False
    stop_rule: str = ""  # the opt-out rule that matched, or a note on why it did not
    batch: str = ""  # the campaign step it answers (its latest within [links] reply_window)
    message: int = 0  # the store id of the message it answers (0: none)


class Unmatched(Record):
    """A receipt that matched no message, kept until retention for diagnosis."""

    candidates: list[str]
    stat: str
    at: float


# -- campaigns: links, clicks, replies (engine/store/campaign.py) -----------


class LinkTarget(Record):
    """Where a short link's code leads, and which message carried it."""

    message: int
    url: str


class Click(Record):
    at: float
    agent: str = ""  # the User-Agent, cut to 256 characters
    code: str = ""


class Engagement(Record):
    """What came back from one message: clicks, replies, an opt-out."""

    clicks: int = 0
    first_click: float = 0.0
    last_click: float = 0.0
    replies: int = 0
    last_reply: float = 0.0
    optout: float = 0.0  # when its recipient opted out in answer to it (0: did not)


class StepStats(Record):
    """A batch's engagement counters (a batch is a campaign's step)."""

    clicks: int = 0
    clickers: int = 0  # messages clicked at least once (a message is one recipient)
    replies: int = 0
    repliers: int = 0  # messages answered at least once
    optouts: int = 0


class ClickIn(msgspec.Struct, frozen=True):
    """A click to record: a code the links listener resolved, when, by whom."""

    code: str
    at: float
    agent: str = ""


class Memory(msgspec.Struct):
    """What an earlier step of a campaign did with one number: its segment's memory."""

    sent: bool = False  # enqueued and not skipped, cancelled or failed
    delivered: bool = False
    clicked: bool = False
    replied: bool = False
    sent_at: float | None = None  # when the latest was enqueued (its not_before if later)


# -- operations the engine applies in one transaction ----------------------


class Op(msgspec.Struct, frozen=True, kw_only=True, tag=True, gc=False):
    """An operation on message ``id``. ``token``: the :attr:`Claimed.token` of the claim it
    answers (optional). The store remembers what it has in flight, so it never needs the
    token to skip a read; given, it must name the message's latest claim by this store,
    else the operation is refused as stale (it answers a claim that was given back and
    claimed again since). A token is ignored for a message this store object did not
    claim (it cannot tell)."""

    id: int = 0
    token: bytes = b""


class MarkSent(Op, frozen=True, kw_only=True, tag=True):
    smsc_ids: list[str]
    at: float
    receipt: bool = True  # a receipt was requested; without one, nothing is awaited
    operator: str = ""  # whose SMSC gave the ids: receipts are matched within that operator


class Requeue(Op, frozen=True, kw_only=True, tag=True):
    """Back in the queue at its original place (or scheduled if ``due`` is later)."""

    due: float
    reason: str = ""
    retry: bool = False


class Reroute(Op, frozen=True, kw_only=True, tag=True):
    """A claimed message whose route the running config changed: queued on ``route``."""

    route: str


class Schedule(Op, frozen=True, kw_only=True, tag=True):
    due: float
    reason: str = ""


class Fail(Op, frozen=True, kw_only=True, tag=True):
    status: int
    description: str
    at: float


class Skip(Op, frozen=True, kw_only=True, tag=True):
    reason: str
    at: float


class MarkUnknown(Op, frozen=True, kw_only=True, tag=True):
    reason: str
    at: float


class RecordReceipt(Op, frozen=True, kw_only=True, tag=True):
    """A receipt: matched through the SMSC-id index by any of ``candidates``, and when
    none matches and ``forms`` is set, by the other forms ``Store.id_forms`` gives of the
    first (hex and decimal writings of one number: tried only on a miss)."""

    candidates: tuple[str, ...]
    state: str
    final: bool
    stat: str
    err: int | None
    network_error: int | None
    at: float
    hold: bool = False  # unmatched: the caller will retry, do not count it yet
    operator: str = ""  # the operator whose SMSC sent it
    forms: str = ""  # the operator's receipt_id_form ("auto", "hex", "decimal"), or ""


class RecordMo(Op, frozen=True, kw_only=True, tag=True):
    source: str
    destination: str
    text: str
    at: float
    bind: str = ""
    stop: bool = False
    stop_rule: str = ""


class Result(msgspec.Struct, frozen=True, gc=False):
    ok: bool
    detail: str = ""
    id: int = 0


class Counts(msgspec.Struct):
    states: dict[str, int]
    batches: dict[str, dict[str, int]]
    kinds: dict[str, dict[str, int]]
    unmatched_receipts: int = 0
    zone_default: int = 0  # messages not yet sent whose zone fell back to the default
    unroutable: int = 0  # messages not yet sent that no operator routes


class EnqueueResult(msgspec.Struct):
    batch: str
    queued: int
    duplicates: int
    scheduled: int = 0
    dead: int = 0  # queued to pruned numbers: they will be skipped at dispatch
    stopped: int = 0  # queued to stop-listed numbers: skipped at dispatch
    dropped: int = 0  # to pruned numbers, not queued (drop_dead)

"""Campaigns in the store: short links, clicks, replies, and what each number got.

Databases (their names are in the store's list; keys sort as shown):

- ``links``     code (ASCII)              -> LinkTarget(message id, url)
- ``clicks``    id(8) seq(8)              -> Click(at, agent, code)   every click, in order
- ``contacts``  number NUL id(8)          -> ''   a campaign step's messages per number
- ``engaged``   id(8)                     -> Engagement   clicks, replies, opt-out per message
- ``steps``     batch                     -> StepStats    the same, summed per batch;
                NUL "seq"                 -> the last click's seq(8)

The store calls in here from its own transactions (nothing here opens one):
``on_enqueue`` once per new message of an enqueue chunk, ``forget`` for each
message an aborted load removes, ``on_mo`` for each inbound message. A write
function takes the store's transaction object ``tx`` and uses ``tx.txn`` (the
LMDB write transaction), ``tx.db`` (name -> database) and ``tx.get(id)`` (the
message, or None); a read function takes an LMDB read transaction, the
databases and a ``message(id)`` reader. Batches carry their campaign and
segment (``BatchInfo``); the store's ``batches`` database is read for them.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import msgspec

from engine.store import records as r

DATABASES = ("links", "clicks", "contacts", "engaged", "steps")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# a message that reached its recipient's network (a reply can answer it)
REACHED = frozenset({r.SENT, r.DELIVERED, r.UNKNOWN})
# a message that never went out: the step was not "sent" to its number
NOT_SENT = frozenset({r.SKIPPED, r.CANCELLED, r.FAILED})
CONTACTS_SEEN = 50  # the latest messages to a number looked at for a reply
AGENT_CHARS = 256
MAX_KEY_PART = 400  # a number or a code longer than this is no key of ours (LMDB: 511)
_U64 = struct.Struct(">Q")
_SEQ = b"\0seq"
_enc = msgspec.msgpack.Encoder()
_target = msgspec.msgpack.Decoder(r.LinkTarget)
_click = msgspec.msgpack.Decoder(r.Click)
_engaged = msgspec.msgpack.Decoder(r.Engagement)
_stats = msgspec.msgpack.Decoder(r.StepStats)

Message = Callable[[int], "r.Message | None"]


class Tx(Protocol):
    """What this module needs of the store's write transaction object."""

    @property
    def txn(self) -> Any: ...  # the LMDB write transaction

    @property
    def db(self) -> Mapping[str, Any]: ...  # database name -> handle

    def get(self, msg_id: int) -> r.Message | None: ...


def new_code(length: int) -> str:
    """A random base62 code of ``length`` characters (secrets: unguessable)."""
    return "".join(ALPHABET[secrets.randbelow(62)] for _ in range(length))


def _contact(number: str, msg_id: int) -> bytes:
    return number.encode() + b"\0" + _U64.pack(msg_id)


# -- writes, inside the store's transactions ------------------------------------


def on_enqueue(tx: Tx, msg_id: int, m: r.NewMessage, remember: bool) -> r.NewMessage:
    """A new message of an enqueue chunk: its codes written (a code already taken is
    drawn again, same length, and put in the text instead), and, for a campaign's
    step (``remember``), its number's contact. Returns the message as it is stored."""
    if m.links:
        m = _put_links(tx, msg_id, m)
    if remember:
        tx.txn.put(_contact(m.to, msg_id), b"", db=tx.db["contacts"])
    return m


def _put_links(tx: Tx, msg_id: int, m: r.NewMessage) -> r.NewMessage:
    put, db = tx.txn.put, tx.db["links"]
    text, links, redrawn = m.text, [], False
    for link in m.links:
        code = link.code
        while not put(code.encode(), _enc.encode(r.LinkTarget(msg_id, link.url)), db=db,
                      overwrite=False):  # fmt: skip
            new = new_code(len(code))
            text = text.replace("/" + code, "/" + new)  # the base ends with "/"
            code, redrawn = new, True
        links.append(r.Link(code=code, url=link.url) if code != link.code else link)
    return msgspec.structs.replace(m, text=text, links=links) if redrawn else m


def forget(tx: Tx, msg: r.Message | r.Claimed) -> None:
    """A message an aborted load removes: its codes and its contact go too."""
    for link in msg.links:
        tx.txn.delete(link.code.encode(), db=tx.db["links"])
    tx.txn.delete(_contact(msg.to, msg.id), db=tx.db["contacts"])


def same_text(old: r.Message | r.Body, new: r.NewMessage) -> bool:
    """Whether a repeated id carries the same text: codes aside (each load draws its own)."""
    return _shape(old.text, old.links) == _shape(new.text, new.links) and [
        link.url for link in old.links
    ] == [link.url for link in new.links]


def _shape(text: str, links: list[r.Link]) -> str:
    for link in links:
        text = text.replace("/" + link.code, "/\0")
    return text


def on_mo(tx: Tx, op: r.RecordMo, window: float) -> tuple[str, int] | None:
    """An inbound message: a reply (or, with ``op.stop``, an opt-out) to the latest
    campaign step its sender got within ``window`` seconds. Returns (batch, message
    id) of that step, or None."""
    step = _latest_step(tx, op.source, op.at - window)
    if step is None:
        return None
    msg_id, batch = step
    key = _U64.pack(msg_id)
    raw = tx.txn.get(key, db=tx.db["engaged"])
    eng = _engaged.decode(raw) if raw else r.Engagement()
    stats = _get_stats(tx.txn, tx.db, batch)
    if op.stop:
        if eng.optout:
            return batch, msg_id
        eng.optout = op.at
        stats.optouts += 1
    else:
        stats.repliers += eng.replies == 0
        stats.replies += 1
        eng.replies += 1
        eng.last_reply = op.at
    tx.txn.put(key, _enc.encode(eng), db=tx.db["engaged"])
    tx.txn.put(batch.encode(), _enc.encode(stats), db=tx.db["steps"])
    return batch, msg_id


def _latest_step(tx: Tx, number: str, since: float) -> tuple[int, str] | None:
    for msg_id in _contacts_newest_first(tx.txn, tx.db, number, CONTACTS_SEEN):
        msg = tx.get(msg_id)
        if msg is not None and msg.state in REACHED and msg.updated >= since:
            return msg_id, msg.batch
    return None


def record_clicks(tx: Tx, clicks: Iterable[r.ClickIn]) -> int:
    """Clicks on resolved codes, in one transaction: each kept (in order), counted on
    its message and its batch. A code no longer known is passed over. Returns how many."""
    txn, db = tx.txn, tx.db
    raw = txn.get(_SEQ, db=db["steps"])
    seq = _U64.unpack(raw)[0] if raw else 0
    engaged: dict[int, r.Engagement] = {}
    stats: dict[str, r.StepStats] = {}
    n = 0
    for click in clicks:
        key = click.code.encode()
        raw = txn.get(key, db=db["links"]) if 0 < len(key) <= MAX_KEY_PART else None
        if raw is None:
            continue
        msg_id = _target.decode(raw).message
        seq += 1
        entry = r.Click(at=click.at, agent=click.agent[:AGENT_CHARS], code=click.code)
        txn.put(_U64.pack(msg_id) + _U64.pack(seq), _enc.encode(entry), db=db["clicks"])
        eng = engaged.get(msg_id)
        if eng is None:
            old = txn.get(_U64.pack(msg_id), db=db["engaged"])
            eng = engaged[msg_id] = _engaged.decode(old) if old else r.Engagement()
        msg = tx.get(msg_id)
        if msg is not None:
            s = stats.get(msg.batch) or stats.setdefault(msg.batch, _get_stats(txn, db, msg.batch))
            s.clicks += 1
            s.clickers += eng.clicks == 0
        eng.clicks += 1
        eng.first_click = eng.first_click or click.at
        eng.last_click = max(eng.last_click, click.at)
        n += 1
    for msg_id, eng in engaged.items():
        txn.put(_U64.pack(msg_id), _enc.encode(eng), db=db["engaged"])
    for batch, s in stats.items():
        txn.put(batch.encode(), _enc.encode(s), db=db["steps"])
    txn.put(_SEQ, _U64.pack(seq), db=db["steps"])
    return n


def _get_stats(txn: Any, db: Mapping[str, Any], batch: str) -> r.StepStats:
    raw = txn.get(batch.encode(), db=db["steps"])
    return _stats.decode(raw) if raw else r.StepStats()


# -- reads ------------------------------------------------------------------------


def resolve(txn: Any, db: Mapping[str, Any], code: str) -> r.LinkTarget | None:
    """Where ``code`` leads (one get), or None."""
    key = code.encode()
    if not 0 < len(key) <= MAX_KEY_PART:
        return None
    raw = txn.get(key, db=db["links"])
    return None if raw is None else _target.decode(raw)


def engagement(txn: Any, db: Mapping[str, Any], msg_id: int) -> r.Engagement | None:
    raw = txn.get(_U64.pack(msg_id), db=db["engaged"])
    return None if raw is None else _engaged.decode(raw)


def clicks_of(txn: Any, db: Mapping[str, Any], msg_id: int, limit: int = 100) -> list[r.Click]:
    """A message's clicks, oldest first (at most ``limit``)."""
    prefix = _U64.pack(msg_id)
    cur = txn.cursor(db=db["clicks"])
    out: list[r.Click] = []
    if cur.set_range(prefix):
        for key, raw in cur:
            if not key.startswith(prefix) or len(out) >= limit:
                break
            out.append(_click.decode(raw))
    return out


def step_stats(txn: Any, db: Mapping[str, Any], batch: str) -> r.StepStats:
    return _get_stats(txn, db, batch)


def _contacts_newest_first(
    txn: Any, db: Mapping[str, Any], number: str, limit: int
) -> Iterator[int]:
    prefix = number.encode() + b"\0"
    cur = txn.cursor(db=db["contacts"])
    found = cur.set_range(prefix + b"\xff" * 8)
    found = cur.prev() if found else cur.last()
    seen = 0
    while found and seen < limit:
        key = cur.key()
        if not key.startswith(prefix) or len(key) != len(prefix) + 8:
            return
        yield _U64.unpack_from(key, len(prefix))[0]
        seen += 1
        found = cur.prev()


def contacts(txn: Any, db: Mapping[str, Any], number: str) -> list[int]:
    """The ids of the campaign steps' messages to ``number``, oldest first."""
    prefix = number.encode() + b"\0"
    if len(prefix) > MAX_KEY_PART:
        return []
    cur = txn.cursor(db=db["contacts"])
    out = []
    if cur.set_range(prefix):
        for key in cur.iternext(values=False):
            if not key.startswith(prefix):
                break
            if len(key) == len(prefix) + 8:
                out.append(_U64.unpack_from(key, len(prefix))[0])
    return out


def memory(
    txn: Any,
    db: Mapping[str, Any],
    numbers: Iterable[str],
    segments: Mapping[str, str],
    message: Message,
) -> dict[str, dict[str, r.Memory]]:
    """Per number, per segment: what the campaign's earlier steps did with it.

    ``segments``: batch -> segment of the campaign's steps (others are not looked at).
    """
    out: dict[str, dict[str, r.Memory]] = {}
    for number in numbers:
        per: dict[str, r.Memory] = {}
        for msg_id in contacts(txn, db, number):
            msg = message(msg_id)
            if msg is None or msg.state in NOT_SENT:
                continue
            segment = segments.get(msg.batch)
            if segment is None:
                continue
            mem = per.setdefault(segment, r.Memory())
            mem.sent = True
            mem.delivered = mem.delivered or msg.state == r.DELIVERED
            eng = engagement(txn, db, msg_id)
            if eng is not None:
                mem.clicked = mem.clicked or eng.clicks > 0
                mem.replied = mem.replied or eng.replies > 0
            at = max(msg.created, msg.not_before or 0.0)
            mem.sent_at = at if mem.sent_at is None else max(mem.sent_at, at)
        if per:
            out[number] = per
    return out

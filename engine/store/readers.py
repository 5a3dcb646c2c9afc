"""Read-only views: messages with their effective state, counts, queues, lists.

A message's view joins its body and status record; a waiting one is queued,
scheduled or in flight by where it waits (its claim set says since when it is in
flight). Every reader runs in one read transaction and never blocks the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import lmdb
import msgspec

from engine.store import layout as L
from engine.store import records as r
from engine.store.layout import BATCH, OPERATOR, ROUTE

if TYPE_CHECKING:
    from engine.store.store import Store

Namer = Callable[[bytes, int], str]  # (category, id) -> name: tx.name_of in a write


def _namer(s: Store, txn: lmdb.Transaction) -> Namer:
    """Names as a read transaction sees them (all committed: safe to cache)."""
    names, db = s.names, s.db["names"]
    return lambda cat, i: names.name_of(txn, db, cat, i)


def waiting_state(s: Store, txn: lmdb.Transaction, idkey: bytes, st: L.Status, name: Namer) -> int:
    """Queued (ready or parked), scheduled, or else in flight."""
    route = name(ROUTE, st.route).encode()
    if txn.get(route + b"\0" + idkey, db=s.db["ready"]) is not None:
        return L.QUEUED
    batch = name(BATCH, st.batch).encode()
    if txn.get(batch + b"\0" + idkey, db=s.db["parked"]) is not None:
        return L.QUEUED
    if txn.get(L.U64.pack(st.due_ms) + idkey, db=s.db["sched"]) is not None:
        return L.SCHEDULED
    return L.INFLIGHT


def claims(s: Store, txn: lmdb.Transaction) -> dict[int, int]:
    """id -> when its newest claim took it (ms), for every id in a claim set."""
    out: dict[int, int] = {}
    for raw in txn.cursor(db=s.db["inflight"]).iternext(keys=False):
        _, claim_ms, ids = L.read_inflight(raw)
        for mid in ids:
            out[mid] = claim_ms
    return out


def view(
    s: Store,
    txn: lmdb.Transaction,
    idkey: bytes,
    body: r.Body,
    raw: bytes,
    claimed: dict[int, int] | None = None,
    loading: bool = False,
    name: Namer | None = None,
) -> r.Message:
    """The message as the upstream sees it. ``loading``: its batch is still being loaded."""
    name_of = name or _namer(s, txn)
    st = L.Status.unpack(raw)
    mid = L.U64.unpack(idkey)[0]
    state, updated = st.state, st.updated_ms
    if state == L.WAITING:
        if loading:
            state = L.SCHEDULED if st.due_ms > L.ms(body.created) else L.QUEUED
        else:
            state = waiting_state(s, txn, idkey, st, name_of)
        if state == L.INFLIGHT:
            updated = (claims(s, txn) if claimed is None else claimed).get(mid, updated)
    state_name = r.STATES[state]
    pending = state in L.PENDING
    claimed_ms = updated if state == L.INFLIGHT else st.due_ms if st.sent_ms and not pending else 0
    if not st.ids:
        part_states: list[str] = []
    elif st.parts:
        part_states = [r.STATES[c - 1] if c else "" for c in st.parts]
    else:
        part_states = [state_name if st.flags & L.RECEIPTED else ""] * len(st.ids)
    return r.Message(
        id=mid,
        batch=body.batch,
        ext_id=body.ext_id,
        to=body.to,
        text=body.text,
        sender=body.sender,
        kind=body.kind,
        route=name_of(ROUTE, st.route),
        created=body.created,
        not_before=body.not_before,
        expires=body.expires,
        parts=body.parts,
        state=state_name,
        due=st.due_ms / 1000 if pending else 0.0,
        attempts=st.attempts,
        smsc_ids=st.ids,
        status=st.code,
        err=None if st.err == L.NONE else st.err,
        reason=st.reason,
        updated=updated / 1000,
        part_states=part_states,
        network_error=None if st.net == L.NONE else st.net,
        zone=body.zone,
        receipt=not st.flags & L.NO_RECEIPT,
        window=body.window,
        zone_default=body.zone_default,
        line=body.line,
        operator=name_of(OPERATOR, st.operator),
        links=body.links,
        claimed=claimed_ms / 1000,
        sent=st.sent_ms / 1000,
    )


def _loading(s: Store, txn: lmdb.Transaction, batch: str) -> bool:
    raw = txn.get(batch.encode(), db=s.db["batches"])
    return raw is not None and s.coders.batch.decode(raw).loading_pid != 0


def get(
    s: Store,
    txn: lmdb.Transaction,
    mid: int,
    name: Namer | None = None,
    claimed: dict[int, int] | None = None,
) -> r.Message | None:
    idkey = L.U64.pack(mid)
    body_raw = txn.get(idkey, db=s.db["body"])
    raw = txn.get(idkey, db=s.db["status"])
    if body_raw is None or raw is None:
        return None
    body = s.coders.body.decode(body_raw)
    loading = _loading(s, txn, body.batch)
    return view(s, txn, idkey, body, raw, claimed, loading, name)


def message_history(s: Store, txn: lmdb.Transaction, mid: int) -> list[r.Transition]:
    """The rare transitions noted for one message, oldest first."""
    idkey = L.U64.pack(mid)
    cur = txn.cursor(db=s.db["history"])
    out: list[r.Transition] = []
    if not cur.set_range(idkey):
        return out
    for key, raw in cur:
        if key[:8] != idkey:
            break
        at_ms, old, new, reason, due_ms, attempts = msgspec.msgpack.decode(raw)
        out.append(r.Transition(at=at_ms / 1000, old=r.STATES[old], new=r.STATES[new],
                                reason=reason, due=due_ms / 1000, attempts=attempts))  # fmt: skip
    return out


def find(s: Store, txn: lmdb.Transaction, batch: str, ext_id: str) -> r.Message | None:
    idkey = txn.get(batch.encode() + b"\0" + ext_id.encode(), db=s.db["batchidx"])
    return None if idkey is None else get(s, txn, L.U64.unpack(idkey)[0])


def messages(s: Store, batch: str | None) -> Iterator[r.Message]:
    """Every message (of a batch), in id order, from one read transaction."""
    with s.env.begin() as txn:
        claimed = claims(s, txn)
        name = _namer(s, txn)
        loading: dict[str, bool] = {}
        statuses = txn.cursor(db=s.db["status"])
        for idkey, body_raw in txn.cursor(db=s.db["body"]):
            body = s.coders.body.decode(body_raw)
            if batch is not None and body.batch != batch:
                continue
            raw = statuses.get(idkey)
            if raw is None:
                continue
            if body.batch not in loading:
                loading[body.batch] = _loading(s, txn, body.batch)
            yield view(s, txn, idkey, body, raw, claimed, loading[body.batch], name)


def counts(s: Store, txn: lmdb.Transaction) -> r.Counts:
    states: dict[str, int] = dict.fromkeys(r.STATES, 0)
    kinds: dict[str, dict[str, int]] = {}
    unmatched = zone_default = unroutable = 0
    for key, raw in txn.cursor(db=s.db["counters"]):
        n = L.U64.unpack(raw)[0]
        parts = bytes(key).split(b"\0")
        if parts[0] == b"s":
            states[parts[1].decode()] = n
        elif parts[0] == b"k" and n:
            kinds.setdefault(parts[1].decode(), {})[parts[2].decode()] = n
        elif key == L.UNMATCHED_KEY:
            unmatched = n
        elif key == L.ZONE_DEFAULT_KEY:
            zone_default = n
        elif key == L.UNROUTABLE_KEY:
            unroutable = n
    batches = {}
    for key, raw in txn.cursor(db=s.db["batches"]):
        info = s.coders.batch.decode(raw)
        if not info.loading_pid:
            batches[bytes(key).decode()] = dict(info.counts)
    return r.Counts(states, batches, kinds, unmatched, zone_default, unroutable)


def batch_infos(s: Store, txn: lmdb.Transaction, campaign: str | None) -> dict[str, r.BatchInfo]:
    out = {}
    for key, raw in txn.cursor(db=s.db["batches"]):
        info = s.coders.batch.decode(raw)
        if (campaign is None or info.campaign == campaign) and not info.loading_pid:
            out[bytes(key).decode()] = info
    return out


def counter(s: Store, txn: lmdb.Transaction, key: bytes) -> int:
    raw = txn.get(key, db=s.db["counters"])
    return L.U64.unpack(raw)[0] if raw else 0


def keys_before(txn: lmdb.Transaction, db: Any, end: bytes, limit: int = 1 << 62) -> list[bytes]:
    """Keys of a time-ordered index from its start up to ``end`` (excluded), at most ``limit``."""
    keys: list[bytes] = []
    cur = txn.cursor(db=db)
    if cur.first():
        for key in cur.iternext(values=False):
            if key >= end or len(keys) >= limit:
                break
            keys.append(key)
    return keys


def due_count(s: Store, txn: lmdb.Transaction, now: float) -> int:
    ready = txn.stat(s.db["ready"])["entries"]
    return ready + len(keys_before(txn, s.db["sched"], L.U64.pack(L.ms(now) + 1)))


def scheduled_by_hour(s: Store, txn: lmdb.Transaction, limit: int) -> dict[int, int]:
    hours: dict[int, int] = {}
    for key in keys_before(txn, s.db["sched"], b"\xff" * 8, limit):
        hour = L.U64.unpack_from(key)[0] // 3_600_000 * 3600
        hours[hour] = hours.get(hour, 0) + 1
    return hours


def batch_progress(s: Store, txn: lmdb.Transaction, batch: str) -> dict[str, int]:
    raw = txn.get(batch.encode(), db=s.db["batches"])
    return dict(s.coders.batch.decode(raw).counts) if raw else {}


def paused_batches(s: Store, txn: lmdb.Transaction) -> list[str]:
    raw = txn.get(b"paused", db=s.db["meta"])
    return sorted(msgspec.msgpack.decode(raw)) if raw else []


def routing_table(s: Store, txn: lmdb.Transaction) -> str:
    raw = txn.get(b"routing", db=s.db["meta"])
    return bytes(raw).decode() if raw else ""


def ready_routes(s: Store, txn: lmdb.Transaction) -> list[str]:
    out = []
    cur = txn.cursor(db=s.db["ready"])
    more = cur.first()
    while more:
        route = cur.key()[:-9]  # route NUL id(8)
        out.append(bytes(route).decode())
        more = cur.set_range(route + b"\x01")
    return out


def ready_count(s: Store, txn: lmdb.Transaction, route: str) -> int:
    prefix = route.encode() + b"\0"
    cur = txn.cursor(db=s.db["ready"])
    n = 0
    if cur.set_range(prefix):
        for key in cur.iternext(values=False):
            if not key.startswith(prefix):
                break
            n += 1
    return n


def queue_heads(s: Store, txn: lmdb.Transaction) -> dict[str, float]:
    heads: dict[str, float] = {}
    cur = txn.cursor(db=s.db["ready"])
    found = cur.first()
    while found:
        key = cur.key()
        route = key[: key.index(b"\0")]
        raw = txn.get(key[len(route) + 1 :], db=s.db["body"])
        if raw is not None:
            body = s.coders.body.decode(raw)
            heads[bytes(route).decode()] = max(body.created, _due(cur.value()))
        found = cur.set_range(route + b"\x01")
    return heads


def _due(raw: bytes) -> float:
    return L.Status.unpack(raw).due_ms / 1000


def list_unmatched(s: Store, txn: lmdb.Transaction, last: int) -> list[r.Unmatched]:
    cur = txn.cursor(db=s.db["unmatched"])
    out = []
    if cur.last():
        for _, raw in cur.iterprev():
            out.append(s.coders.unmatched.decode(raw))
            if len(out) >= last:
                break
    return out


def list_mo(s: Store, txn: lmdb.Transaction) -> list[r.Mo]:
    return [s.coders.mo.decode(v) for _, v in txn.cursor(db=s.db["mo"])]

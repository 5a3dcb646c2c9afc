"""What the store knows of a number: stop list, dead (pruned), failures, cap sends.

One ``numbers`` record per number (:class:`NumberRecord`), so a claim asks one
get per message; a record with nothing left in it is deleted. The ``stop`` and
``dead`` databases only list which numbers have such an entry (for listing and
counting them without a scan of every number).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lmdb

from engine.store import layout as L
from engine.store import records as r
from engine.store.tx import Tx

if TYPE_CHECKING:
    from engine.store.store import Store


def read(s: Store, txn: lmdb.Transaction, number: bytes) -> r.NumberRecord | None:
    raw = txn.get(number, db=s.db["numbers"])
    return None if raw is None else s.coders.number.decode(raw)


def _put(s: Store, tx: Tx, number: bytes, rec: r.NumberRecord) -> None:
    if rec.outcomes or rec.sent or rec.stop is not None or rec.dead is not None:
        tx.txn.put(number, s.coders.enc.encode(rec), db=tx.db["numbers"])
    else:
        tx.txn.delete(number, db=tx.db["numbers"])
    tx.numbers_changed()


def barred(s: Store, rec: r.NumberRecord | None, kind: str, now: float) -> str:
    """ "dead" (pruned, not expired), "stopped" (stop list, kind not exempt), or ""."""
    if rec is None:
        return ""
    if rec.dead is not None and rec.dead.expires > now:
        return "dead"
    if rec.stop is not None and kind not in s.stop_exempt_kinds:
        return "stopped"
    return ""


# -- frequency caps ---------------------------------------------------------------------


def within_cap(
    s: Store,
    tx: Tx,
    idkey: bytes,
    snap: bytes,
    msg: r.Claimed,
    rec: r.NumberRecord | None,
    now: float,
) -> bool:
    """Count this send against the number's cap, or reschedule it (skip past expiry)."""
    policy = s.cap_policy
    if policy is None:
        return True
    sent = [t for t in (rec.sent if rec else []) if t > now - policy.longest]
    allowed = policy.next_allowed(msg.kind, sent, now)
    if allowed > now:
        st = L.Status.unpack(snap)
        if msg.expires is not None and allowed >= msg.expires:
            tx.arrive(idkey, st, L.QUEUED, L.CODE[r.SKIPPED], L.ms(now), "frequency cap")
        else:
            st.due_ms = L.ms(allowed)
            tx.arrive(idkey, st, L.QUEUED, L.SCHEDULED, L.ms(now), "frequency cap")
        return False
    rec = rec or r.NumberRecord()
    rec.sent = [*sent, now]
    _put(s, tx, msg.to.encode(), rec)
    return True


def _over_cap(
    s: Store, kind: str, sent: list[float], now: float, cap: tuple[int, float] | None
) -> bool:
    if cap is not None and sum(t > now - cap[1] for t in sent) >= cap[0]:
        return True
    policy = s.cap_policy
    return policy is not None and policy.next_allowed(kind, sent, now) > now


def screen(
    s: Store,
    txn: lmdb.Transaction,
    numbers: Sequence[str],
    kind: str,
    now: float,
    cap: tuple[int, float] | None,
) -> list[str]:
    out = []
    capped = cap is not None or (s.cap_policy is not None and s.cap_policy.capped(kind))
    for number in numbers:
        rec = read(s, txn, number.encode())
        reason = barred(s, rec, kind, now)
        if not reason and capped:
            reason = "capped" if _over_cap(s, kind, rec.sent if rec else [], now, cap) else ""
        out.append(reason)
    return out


# -- outcomes ---------------------------------------------------------------------------


def delivered(s: Store, tx: Tx, number: bytes) -> None:
    """A delivery clears the number's failures."""
    rec = read(s, tx.txn, number)
    if rec is not None and rec.outcomes:
        rec.outcomes = []
        _put(s, tx, number, rec)


def failed(s: Store, tx: Tx, number: bytes, route: str, outcome: r.Outcome) -> None:
    """A failure is kept (the last ``history_limit``); with a prune policy set, a history
    that proves the number dead marks it dead, with that history as evidence, until the
    policy's ttl."""
    rec = read(s, tx.txn, number) or r.NumberRecord()
    if not rec.outcomes:
        tx.troubled()
    keep = s.history_limit - 1
    rec.outcomes = [*rec.outcomes[-keep:], outcome]
    policy = s.prune_policy
    if policy is not None and policy.dead(rec.outcomes, route):
        rec.dead = r.DeadEntry(at=outcome.at, expires=outcome.at + policy.ttl,
                               evidence=rec.outcomes)  # fmt: skip
        tx.txn.put(number, b"", db=tx.db["dead"])
        tx.bump(b"pruned", 1)
    _put(s, tx, number, rec)


# -- the stop list and the dead list ---------------------------------------------------


def stop(s: Store, tx: Tx, number: str, reason: str, at: float) -> None:
    key = number.encode()
    rec = read(s, tx.txn, key) or r.NumberRecord()
    rec.stop = r.StopEntry(reason=reason, at=at)
    tx.txn.put(key, b"", db=tx.db["stop"])
    _put(s, tx, key, rec)


def restore(s: Store, tx: Tx, number: str) -> int:
    """Off the stop list and the dead list: how many of the two entries it had."""
    key = number.encode()
    rec = read(s, tx.txn, key)
    if rec is None:
        return 0
    done = 0
    if rec.stop is not None:
        rec.stop = None
        done += tx.txn.delete(key, db=tx.db["stop"])
    if rec.dead is not None:
        rec.dead = None
        done += tx.txn.delete(key, db=tx.db["dead"])
    _put(s, tx, key, rec)
    return done


def mark_dead(
    s: Store, tx: Tx, number: str, evidence: list[r.Outcome], at: float, ttl: float
) -> None:
    key = number.encode()
    rec = read(s, tx.txn, key) or r.NumberRecord()
    rec.dead = r.DeadEntry(at=at, expires=at + ttl, evidence=evidence)
    tx.txn.put(key, b"", db=tx.db["dead"])
    _put(s, tx, key, rec)


def is_stopped(s: Store, txn: lmdb.Transaction, number: str) -> bool:
    rec = read(s, txn, number.encode())
    return rec is not None and rec.stop is not None


def listed(s: Store, txn: lmdb.Transaction, which: str) -> list[tuple[str, Any]]:
    """(number, entry) of every stop-listed ("stop") or pruned ("dead") number."""
    out = []
    for key in txn.cursor(db=s.db[which]).iternext(values=False):
        rec = read(s, txn, key)
        entry = None if rec is None else getattr(rec, which)
        if entry is not None:
            out.append((bytes(key).decode(), entry))
    return out


def history(s: Store, txn: lmdb.Transaction, number: str) -> r.NumberHistory:
    rec = read(s, txn, number.encode())
    return r.NumberHistory() if rec is None else r.NumberHistory(rec.outcomes, rec.sent)


def counts(s: Store, txn: lmdb.Transaction) -> tuple[int, int]:
    stat = txn.stat
    return stat(s.db["dead"])["entries"], stat(s.db["stop"])["entries"]

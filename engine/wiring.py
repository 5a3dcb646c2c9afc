"""Opening the store as engine.toml says, with its policies (used by every command).

The store knows messages, not scheduling: the frequency caps and the
dead-number policy come from engine/sched/ and are handed to it here.
:func:`open_store` never recovers anything; :func:`take_store` is for the
engine alone: it takes the store's lock (one engine per store), then puts back
what a crash left in flight.
"""

from __future__ import annotations

from engine import routing
from engine.config import Config, seconds
from engine.sched.caps import Caps
from engine.sched.prune import PrunePolicy
from engine.store import Store, StoreError, StoreLock


def open_store(cfg: Config, *, readonly: bool = False) -> Store:
    """The store of ``cfg``, without recovery: safe while an engine runs."""
    store = Store.open(
        cfg.resolve(cfg.store.path),
        readonly=readonly,
        on_crash_inflight=cfg.store.on_crash_inflight,
        map_size=cfg.store.map_size_mb << 20,
        max_map_size=cfg.store.max_map_size_mb << 20,
        sync=cfg.store.sync,
        prune_policy=PrunePolicy(cfg),
        cap_policy=Caps(cfg) if cfg.caps else None,
        history_limit=cfg.prune.history,
        stop_exempt_kinds=frozenset({"transactional"} if cfg.stop.transactional_exempt else ()),
    )
    store.reply_window = seconds(cfg.links.reply_window)
    store.webhooks = frozenset(cfg.webhooks.events) if cfg.webhooks.url else frozenset()
    store.routing_hint = routing.table(cfg.operators) if cfg.operators else ""
    return store


def take_store(cfg: Config, lock: StoreLock | None = None) -> tuple[Store, StoreLock, int]:
    """Lock the store (or adopt ``lock``), open it and, if this process took the lock,
    recover what a crash left in flight: (store, lock, how many were recovered).

    Raises StoreLocked (a StoreError naming the holder's pid) when another engine
    holds the store.
    """
    path = cfg.resolve(cfg.store.path)
    lock = lock or StoreLock.acquire(path)
    try:
        store = open_store(cfg)
    except StoreError:
        lock.release()
        raise
    recovered = 0 if lock.inherited else store.recover_inflight(lock)
    return store, lock, recovered

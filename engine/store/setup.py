"""Opening the store as engine.toml says, with its policies (used by every command)."""

from __future__ import annotations

from engine.config import Config
from engine.sched.caps import Caps
from engine.sched.prune import PrunePolicy
from engine.store.store import Store


def open_store(cfg: Config, *, readonly: bool = False, recover: bool = True) -> Store:
    store = Store.open(
        cfg.resolve(cfg.store.path),
        readonly=readonly,
        on_crash_inflight=cfg.store.on_crash_inflight,
        map_size=cfg.store.map_size_mb << 20,
        max_map_size=cfg.store.max_map_size_mb << 20,
        sync=cfg.store.sync,
        recover=recover,
    )
    store.prune_policy = PrunePolicy(cfg)
    store.history_limit = cfg.prune.history
    if cfg.caps:
        store.cap_policy = Caps(cfg)
    store.stop_exempt_kinds = frozenset({"transactional"} if cfg.stop.transactional_exempt else ())
    return store

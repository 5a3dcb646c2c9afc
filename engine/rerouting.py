"""Routes chosen at send time: the running engine re-routes what waits in the queue.

The queue is indexed per route (``ready``: route NUL id), so a claim is one
seek; the route written at enqueue time is a guess by the producer's config.
The running engine makes it right in three places:

- at start, if the routing table's fingerprint (engine/routing.py ``table``)
  differs from the one the queue was last routed with (kept in the store's
  meta), every queued, scheduled and parked message is routed again
  (``Store.reroute``, in chunks) and the new fingerprint is kept;
- while it runs, a sweep every few seconds re-routes messages queued on a
  route that no operator of the running config has (a producer with another
  config, an operator renamed), and a dispatcher that claims a message whose
  route the running config would not choose gives it back re-routed
  (``Reroute``), so a prefix moved between operators takes effect at once;
- a message that no operator routes waits on the empty route, counted as
  ``unroutable`` (status, snapshots, a WARNING whenever the count changes);
  ``run --until-drained`` ends with exit 1 naming it instead of waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from engine import routing
from engine.config import Config
from engine.store import Store

log = logging.getLogger("volley.engine")

SWEEP_EVERY = 5.0  # seconds


class Rerouter:
    def __init__(
        self, cfg: Config, store: Store, db: Callable[..., Awaitable[Any]], *, first: bool = True
    ) -> None:
        self.operators = cfg.operators
        self.names = frozenset(op.name for op in cfg.operators)
        self.store = store
        self._db = db
        self._first = first  # the engine process that re-routes everything at start
        self._table = routing.table(cfg.operators)
        self._last_sweep = -1e18
        self.unroutable = 0

    def route_of(self, number: str) -> str:
        return routing.route_for(number, self.operators)

    def misrouted(self, route: str, number: str) -> str | None:
        """The route the running config chooses for ``number``, if not ``route``; else None."""
        right = routing.route_for(number, self.operators)
        return right if right != route else None

    async def start(self) -> None:
        """Route everything again if the routing table changed since the queue was routed."""
        if self._first and await self._db(self.store.routing_table) != self._table:
            moved, _ = await self._db(self.store.reroute, self.route_of, self._table)
            if moved:
                log.info("routing changed: %d waiting message(s) re-routed", moved)
        await self.sweep(0.0, force=True)

    async def reconfigure(self, cfg: Config) -> None:
        """A reload's new operators and prefixes: what waits is routed again if the routing
        table changed (by the first engine process), what is claimed as it comes."""
        self.operators = cfg.operators
        self.names = frozenset(op.name for op in cfg.operators)
        table = routing.table(cfg.operators)
        if table != self._table:
            self._table = table
            if self._first:
                moved, _ = await self._db(self.store.reroute, self.route_of, table)
                log.info("reload: routing changed: %d waiting message(s) re-routed", moved)
        await self.sweep(0.0, force=True)

    async def sweep(self, now: float, force: bool = False) -> None:
        """Re-route what is queued on routes this config does not have; warn of the unroutable."""
        if not force and now - self._last_sweep < SWEEP_EVERY:
            return
        self._last_sweep = now
        routes = await self._db(self.store.ready_routes)
        unknown = [r for r in routes if r not in self.names and r != routing.UNROUTED]
        if unknown:
            moved, _ = await self._db(self.store.reroute, self.route_of, "", unknown)
            log.info("%d message(s) queued on unknown route(s) %s re-routed", moved, unknown)
        counts = await self._db(self.store.counts)
        if counts.unroutable != self.unroutable:
            self.unroutable = counts.unroutable
            if self.unroutable:
                log.warning(
                    "%d message(s) wait that no operator routes (no matching prefix, no "
                    "default route): add a route to [[operators]] or cancel their batch",
                    self.unroutable,
                )

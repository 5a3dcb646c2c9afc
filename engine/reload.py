"""Reload: the running engine takes a new engine.toml (SIGHUP, or `volley reload`).

The new file is read and checked whole first (keys, types, operators'
passwords and TLS files): a bad one is refused with an ERROR naming the key,
and the running config stays as it was. A good one takes effect at once:

- an operator added starts its binds and its dispatcher; one removed stops
  taking work, gives its queued jobs back, drains and unbinds (its messages
  are re-routed by the running config);
- an operator whose connection settings changed (``CONNECTION`` below) is
  restarted: its binds drain and unbind, then binds with the new settings
  connect. Every other operator keeps its binds: TPS, window, prefixes,
  failover, pause flag, send windows, encodings, retries and error codes
  change under them (a new window applies to the connections at once);
- a TPS set live (`volley tps`, the TUI's ``t``) survives a reload unless the
  file's ``tps`` of that operator changed; the same for ``paused`` and a live
  pause or resume;
- windows, caps, defaults, pruning, opt-out words and webhooks' events apply
  to what is claimed and written from then on; prefixes and operators moved:
  queued messages are routed again (engine/rerouting.py);
- ``[store]``, ``[control]``, ``[engine]``, ``[http]``, ``[links]`` and
  ``[log]`` need a restart: a change there is logged (WARNING) and left for
  the next start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
import trio

from engine import config
from engine.config import Config, ConfigError, OperatorConfig, resolve_password
from engine.operators import Operator, tls_context
from engine.optout import OptOutRules
from engine.sched.caps import Caps
from engine.sched.prune import PrunePolicy
from engine.sched.schedule import Scheduler

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger("volley.engine")

# what a bind's connection is made with: a change restarts the operator's binds
CONNECTION = (
    "host", "port", "system_id", "password", "password_env", "system_type", "tls", "tls_ca",
    "bind", "binds", "address_range", "connect_timeout", "response_timeout",
    "enquire_link_interval",
)  # fmt: skip
RESTART_SECTIONS = ("store", "control", "engine", "http", "links", "log")
DRAIN_GRACE = 30.0  # seconds an operator being replaced gets to drain before its new binds


class ReloadError(ValueError):
    """The new file is refused; the running config stays. The message names the key."""


def load(path: str, running: Config) -> Config:
    """The new config, checked as far as it can be without applying it; sections that need
    a restart keep their running values (a change there is a WARNING)."""
    import os

    try:
        new = config.load(path)
        for op in new.operators:
            resolve_password(op, os.environ)
            if op.tls:
                tls_context(op, new)
    except ConfigError as exc:
        raise ReloadError(str(exc)) from None
    kept = {}
    for section in RESTART_SECTIONS:
        if getattr(new, section) != getattr(running, section):
            log.warning("reload: [%s] changed: it takes effect at the next start", section)
        kept[section] = getattr(running, section)
    return msgspec.structs.replace(new, **kept)


async def reload(engine: Engine, path: str) -> str:
    """Apply the file at ``path`` to ``engine``; returns what changed, in one line. Raises
    ReloadError (nothing changed) when the file is refused."""
    try:
        new = load(path, engine.cfg)
    except ReloadError as exc:
        log.error("reload refused, the running config stays: %s", exc)
        raise
    old = engine.cfg
    changes = _apply_policies(engine, old, new)
    before = {op.name: op for op in old.operators}
    after = {op.name: op for op in new.operators}
    for name in before.keys() - after.keys():
        _remove(engine, name)
        changes.append(f"operator {name} removed")
    for name, op_cfg in after.items():
        if name not in before:
            _add(engine, op_cfg)
            changes.append(f"operator {name} added")
        elif _connection(before[name]) != _connection(op_cfg):
            engine.start_soon(lambda n=name, c=op_cfg: _replace(engine, n, c))
            changes.append(f"operator {name} reconnecting with new settings")
        elif before[name] != op_cfg:
            changes += _update(engine, before[name], op_cfg)
    engine.cfg = new
    await engine.rerouter.reconfigure(new)
    detail = "; ".join(changes) if changes else "no change"
    log.info("reload: %s", detail)
    return f"reloaded {path}: {detail}"


def _connection(op: OperatorConfig) -> tuple[object, ...]:
    return tuple(getattr(op, key) for key in CONNECTION)


def _apply_policies(engine: Engine, old: Config, new: Config) -> list[str]:
    """Windows, caps, defaults, pruning, opt-outs, webhooks: for what comes next."""
    changes = []
    scheduler = Scheduler(new)
    engine.scheduler = scheduler
    for dispatcher in engine.dispatchers:
        dispatcher.scheduler = scheduler
    store = engine.store
    store.prune_policy = PrunePolicy(new)
    store.cap_policy = Caps(new) if new.caps else None
    store.history_limit = new.prune.history
    store.webhooks = frozenset(new.webhooks.events) if new.webhooks.url else frozenset()
    engine.apply_stop_rules(
        OptOutRules(new.stop.keywords, new.stop.phrases, new.stop.polite),
        {"transactional"} if new.stop.transactional_exempt else set(),
    )
    engine.receipt_timeout = config.seconds(new.defaults.receipt_timeout)
    for section in ("windows", "caps", "defaults", "prune", "stop", "webhooks"):
        if getattr(old, section) != getattr(new, section):
            changes.append(f"[{section}] applied")
    return changes


def _update(engine: Engine, old: OperatorConfig, new: OperatorConfig) -> list[str]:
    """An operator whose binds stay: its settings change under them."""
    operator = engine.operators[new.name]
    operator.reconfigure(new, engine.cfg)
    changed = [k for k in OperatorConfig.__struct_fields__ if getattr(old, k) != getattr(new, k)]
    if new.tps != old.tps:  # else a TPS set live stays
        operator.pacer.set_tps(new.tps * operator.share)
    if new.paused != old.paused:
        operator.paused = new.paused
        if new.paused:
            engine.give_back(operator)
    if new.window != old.window:
        for bind in operator.binds:
            if bind.connection is not None:
                bind.connection.session.window = new.window
    return [f"operator {new.name}: {', '.join(changed)}"]


def _add(engine: Engine, op_cfg: OperatorConfig) -> Operator:
    operator = engine.new_operator(op_cfg)
    log.info("reload: operator %s added (%d bind(s))", op_cfg.name, len(operator.binds))
    return operator


def _remove(engine: Engine, name: str) -> None:
    """Stop taking work, give its queue back, drain and unbind; forgotten once ended."""
    operator = engine.operators.pop(name)
    for dispatcher in [d for d in engine.dispatchers if d.operator is operator]:
        dispatcher.stop()
        engine.dispatchers.remove(dispatcher)
    operator.stop()
    engine.give_back(operator, "operator removed")
    engine.start_soon(lambda: _forget(engine, operator))
    log.info("reload: operator %s removed: draining its binds", name)


async def _forget(engine: Engine, operator: Operator) -> None:
    await operator.stopped()
    await _settled(engine)
    for bind in operator.binds:
        if engine.binds.get(bind.name, (None, None))[1] is bind:
            del engine.binds[bind.name]


async def _settled(engine: Engine) -> None:
    """Until what ended binds reported is handled and committed (the commit settles their
    window slots by bind name): only then may their names go or be taken by new binds."""
    await engine.outcomes_handled()
    await engine.writer.idle()


async def _replace(engine: Engine, name: str, op_cfg: OperatorConfig) -> None:
    """New connection settings: the old binds drain and unbind, then the new ones bind."""
    operator = engine.operators.get(name)
    if operator is None:
        return
    for dispatcher in [d for d in engine.dispatchers if d.operator is operator]:
        dispatcher.stop()
        engine.dispatchers.remove(dispatcher)
    operator.stop()
    engine.give_back(operator, "operator reconnecting")
    with trio.move_on_after(DRAIN_GRACE):
        await operator.stopped()
    if engine.stopping or engine.operators.get(name) is not operator:
        return  # stopped meanwhile, or removed or replaced again by a later reload
    await _settled(engine)
    for bind in operator.binds:
        if engine.binds.get(bind.name, (None, None))[1] is bind:
            del engine.binds[bind.name]
    new = engine.new_operator(op_cfg)
    if op_cfg.tps == operator.cfg.tps:  # a TPS set live stays (in this process's share)
        new.pacer.set_tps(operator.pacer.target / operator.share * new.share)
    log.info("reload: operator %s reconnected with new settings", name)

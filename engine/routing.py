"""Which operator a destination goes to: the longest matching prefix, else the default route.

Routes are chosen when a message is sent, from the running config: the engine
re-routes what is queued when the routing table changed (see
:meth:`engine.service.Engine` and ``Store.reroute``); enqueueing routes with
its own config only so that the queue is indexed per operator.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from engine.config import OperatorConfig

UNROUTED = ""  # no operator routes the number: the message waits, counted as unroutable


def route_for(number: str, operators: Sequence[OperatorConfig]) -> str:
    """The operator name for an E.164 number (with or without +)."""
    digits = number.removeprefix("+")
    best, best_len, default = None, -1, None
    for op in operators:
        if not op.prefixes and default is None:
            default = op.name
        for prefix in op.prefixes:
            p = prefix.removeprefix("+")
            if len(p) > best_len and digits.startswith(p):
                best, best_len = op.name, len(p)
    return best or default or UNROUTED


def table(operators: Sequence[OperatorConfig]) -> str:
    """The routing table's fingerprint: what :func:`route_for` depends on."""
    rows = [[op.name, [p.removeprefix("+") for p in op.prefixes]] for op in operators]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def accepts(op: OperatorConfig, number: str) -> bool:
    """Whether an operator may carry this destination (failover never goes elsewhere)."""
    digits = number.removeprefix("+")
    return not op.prefixes or any(digits.startswith(p.removeprefix("+")) for p in op.prefixes)

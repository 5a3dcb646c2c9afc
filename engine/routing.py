"""Which operator a destination goes to: the longest matching prefix, else the default route."""

from __future__ import annotations

from collections.abc import Sequence

from engine.config import OperatorConfig

DEFAULT_ROUTE = "default"


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
    return best or default or DEFAULT_ROUTE


def accepts(op: OperatorConfig, number: str) -> bool:
    """Whether an operator may carry this destination (failover never goes elsewhere)."""
    digits = number.removeprefix("+")
    return not op.prefixes or any(digits.startswith(p.removeprefix("+")) for p in op.prefixes)

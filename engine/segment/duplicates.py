"""Duplicate phones in a customer base: which row is kept.

A phone on several rows is one customer registered more than once (often again,
with consent, after an old record without it). The row kept is the one that can
be messaged: consent first, then the most recent activity (purchase or
response), then the latest signup, then the first line. The first pass of the
job offers every row's standing; the second asks, for each row, whether another
row of its phone won.

Memory: one int per distinct phone, the packed standing of its best row.
"""

from __future__ import annotations

_LINE_BITS = 40
_DAY_BITS = 20
_DAYS = (1 << _DAY_BITS) - 1
_LINES = (1 << _LINE_BITS) - 1


def _recency(days: int | None) -> int:
    """Larger for more recent; 0 for never."""
    if days is None:
        return 0
    return _DAYS - min(max(days, 0), _DAYS - 1)


def standing(line: int, consent: bool, activity: int | None, signup: int | None) -> int:
    """One int that orders rows: the larger wins."""
    packed = int(consent)
    packed = (packed << _DAY_BITS) | _recency(activity)
    packed = (packed << _DAY_BITS) | _recency(signup)
    return (packed << _LINE_BITS) | (_LINES - line)


def _parts(packed: int) -> tuple[int, int, int, int]:
    line = _LINES - (packed & _LINES)
    packed >>= _LINE_BITS
    signup = packed & _DAYS
    packed >>= _DAY_BITS
    return packed >> _DAY_BITS, packed & _DAYS, signup, line


class Duplicates:
    def __init__(self) -> None:
        self._best: dict[int, int] = {}

    def offer(self, phone: int, rank: int) -> None:
        if rank > self._best.get(phone, -1):
            self._best[phone] = rank

    def winner(self, phone: int, line: int) -> int:
        """0 if this line is the one kept for its phone, else the kept row's line."""
        best = self._best.get(phone)
        if best is None:
            return 0
        kept = _parts(best)[3]
        return 0 if kept == line else kept

    def why(self, phone: int, loser: int) -> str:
        """Why the kept row of ``phone`` beat the row ranked ``loser``."""
        kept = _parts(self._best[phone])
        lost = _parts(loser)
        if kept[0] != lost[0]:
            return "it has consent"
        if kept[1] != lost[1]:
            return "its activity is more recent"
        if kept[2] != lost[2]:
            return "it signed up later"
        return "the first of alike rows"

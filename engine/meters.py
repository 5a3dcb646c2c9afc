"""What the engine counts for /metrics, cheaply, on its own thread: submit_sm responses
by status, receipts by stat, and latency histograms with fixed buckets.

Submit latency comes from the binds (each Bind appends its response times to
``Bind.latencies``; a ``LatencyMeter`` takes them into buckets instead of
keeping them). Receipt latency is from the submit's commit to the final
receipt's, for messages this engine process sent among its latest
``SentTimes.limit``: older ones, or sent before a restart, are not measured.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, OrderedDict

from engine.control import protocol as p

SUBMIT_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECEIPT_BOUNDS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
NO_RESPONSE = "none"


class LatencyMeter:
    """A histogram with fixed bounds; ``append`` and ``len`` let a Bind feed it as its
    ``latencies`` list (it never fills)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    append = observe

    def __len__(self) -> int:
        return 0

    def view(self) -> p.Histogram:
        return p.Histogram(bounds=list(self.bounds), counts=list(self.counts), total=self.total)


class OperatorMeters:
    def __init__(self) -> None:
        self.submits: Counter[str] = Counter()
        self.receipts: Counter[str] = Counter()
        self.submit_latency = LatencyMeter(SUBMIT_BOUNDS)
        self.receipt_latency = LatencyMeter(RECEIPT_BOUNDS)

    def responses(self, parts: int, accepted: int, answered: int, status: int) -> None:
        """A job's parts by the response they got: accepted, its (worst) status, or none."""
        if accepted:
            self.submits["0x00"] += accepted
        if answered > accepted:
            self.submits[f"0x{status:02X}"] += answered - accepted
        if parts > answered:
            self.submits[NO_RESPONSE] += parts - answered


class SentTimes:
    """When this process's latest sent messages were committed sent, by message id."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._at: OrderedDict[int, float] = OrderedDict()

    def add(self, msg_id: int, at: float) -> None:
        self._at[msg_id] = at
        if len(self._at) > self.limit:
            self._at.popitem(last=False)

    def pop(self, msg_id: int) -> float | None:
        return self._at.pop(msg_id, None)

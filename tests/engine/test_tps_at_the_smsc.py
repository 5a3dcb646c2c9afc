"""TPS as operators count it: every sliding one-second window of arrivals at the SMSC.

The real engine sends to the simulator, which records each submit_sm's arrival
time (``Options(record=...)``); no window of one second may hold more than the
operator's ``tps``, whatever the number of binds.
"""

import bisect
import json

import pytest

from .helpers import enqueue, make_config, operator, run_until_drained, simulator

pytestmark = [pytest.mark.trio, pytest.mark.slow]


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.parametrize(
    ("tps", "binds", "seconds"),
    [(7, 1, 3), (200, 1, 2.5), (300, 4, 2.5), (1000, 8, 2.5), (2500, 3, 2)],
)
async def test_no_second_at_the_smsc_sees_more_than_tps(nursery, tmp_path, tps, binds, seconds):
    record = tmp_path / "wire.jsonl"
    smsc = await simulator(nursery, record=str(record), receipts=False)
    op = operator("local", smsc.port, tps=tps, binds=binds, window=64, registered_delivery=False)
    cfg = make_config(tmp_path, op)
    n = int(tps * seconds)
    store = enqueue(cfg, [f"+7916{i:07d}" for i in range(n)])
    await run_until_drained(cfg, store, timeout=seconds * 3 + 10)
    store.close()
    arrivals = [json.loads(line)["time"] for line in record.read_text().splitlines()]
    assert len(arrivals) == n
    assert most_in_one_second(arrivals) <= tps
    if n > 2 * tps:  # and the rate stays close to the contract
        span = max(arrivals) - min(arrivals)
        assert (n - 1) / span > 0.85 * tps

"""Simulator behaviour in simulated time."""

import trio
import trio.testing

from .esme import Esme
from .test_smsc import is_resp, start, submit


def test_response_delay_under_a_mock_clock():
    async def main():
        async with trio.open_nursery() as nursery:
            smsc = await start(nursery, response_delay=3.0)
            esme = await Esme.connect(smsc.port)
            await esme.bind()
            t0 = trio.current_time()
            await esme.send(submit(reg=0))
            await esme.wait_for(is_resp, timeout=10)
            assert trio.current_time() - t0 >= 3.0
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.01))

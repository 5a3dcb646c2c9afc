"""Random interleavings of responses, receipts, resets and stops: every job taken is reported
exactly once, and nothing is left in flight after a stop."""

import random

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.net.jobs import Inbound, Lost, Submitted, Unsent, Vetoed
from engine.smpp import constants as c
from engine.smpp import pdu as p

from .peer import Harness, operator, raw

FINAL = (Submitted, Lost, Unsent, Vetoed)
ACTIONS = ["answer", "answer", "answer", "error", "wrong", "receipt", "cut", "wait", "reset"]


async def scenario(seed: int, jobs: int) -> None:
    rng = random.Random(seed)
    vetoed = {rng.randrange(jobs)} if rng.random() < 0.3 else set()
    h = Harness(
        operator(window=rng.choice([1, 3, 8]), tps=rng.choice([5.0, 50.0, 1000.0])),
        veto=lambda job: "stopped" if job.msg_id in vetoed else "",
    )
    sent = {h.send_job(i, parts=rng.randint(1, 3)).msg_id for i in range(jobs)}
    async with trio.open_nursery() as nursery:
        await h.start(nursery)
        for _ in range(rng.randint(1, 4)):  # connections
            peer = await h.peer()
            for _ in range(rng.randint(0, 25)):
                if not await step(rng, h, peer):
                    break
        h.bind.stop()
        with trio.move_on_after(0.01):
            peer = await h.peer()  # a connection that was opening when the stop came
        await h.settle(5)
        # whatever is still open: the peer answers nothing more
        assert h.bind.stats.state == "stopped"
        nursery.cancel_scope.cancel()
    outs = h.outcomes(FINAL)
    reported = [o.job.msg_id for o in outs]
    assert len(reported) == len(set(reported)), "a job reported twice"
    assert set(reported) <= sent
    left = {job.msg_id for job in h.queue.drain()}
    assert set(reported) | left == sent, "a job taken and never reported"
    assert not set(reported) & left
    assert h.bind.stats.window_used == 0
    for o in outs:
        if isinstance(o, Submitted):
            assert len(o.smsc_ids) + (1 if o.bad_id else 0) <= len(o.job.parts)


async def step(rng: random.Random, h: Harness, peer) -> bool:
    """One thing the SMSC (or the operator) does; False when this connection is over."""
    action = rng.choice(ACTIONS)
    with trio.move_on_after(0.05):
        await peer.read()
    if action in ("answer", "error", "wrong") and peer.submits:
        req = peer.submits[rng.randrange(len(peer.submits))]
        if action == "answer":
            peer.answer(req)
        elif action == "error":
            peer.answer(req, status=rng.choice([c.ESME_RTHROTTLED, c.ESME_RINVDSTADR]))
        else:
            peer.submits.remove(req)
            await peer.send(raw(p.EnquireLinkResp(sequence=req.sequence)))
            return False
        await peer.flush()
    elif action == "receipt":
        await peer.send(raw(p.DeliverSm(sequence=rng.randint(1, 999), esm_class=4)))
    elif action == "cut":
        await peer.cut()
        return False
    elif action == "reset":
        h.bind.reset()
        return False
    else:
        await trio.sleep(rng.choice([0.01, 0.3, 1.2]))
    for inbound in h.outcomes((Inbound,)):
        if inbound.connection.ack(inbound):
            await inbound.connection.flush()
    return True


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 12))
def test_every_job_taken_is_reported_exactly_once(seed, jobs):
    trio.run(scenario, seed, jobs, clock=trio.testing.MockClock(autojump_threshold=0))

"""The bind and its connections, against scripted SMSCs over in-memory streams, under MockClock."""

import pytest
import trio

from engine.net.jobs import Inbound, Lost, StateChanged, Submitted, Unsent, Vetoed
from engine.sched.pacing import Pacer
from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p

from .peer import Harness, operator, raw

pytestmark = pytest.mark.trio


async def started(nursery, **kw):
    h = Harness(**kw)
    await h.start(nursery)
    return h


async def test_a_job_is_sent_answered_and_reported_with_its_ids(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1, parts=2)
    a, b = await peer.wait_submits(2)
    peer.answer(a, message_id=" 0A1 ")
    peer.answer(b, message_id="0a2")
    await peer.flush()
    await h.settle()
    (out,) = h.outcomes((Submitted,))
    assert out == Submitted(job, 0, "op#0", ("0A1", "0a2"), "", accepted=2)
    assert h.bind.stats.submitted == 2 and h.bind.stats.window_used == 0


@pytest.mark.parametrize("answered", [0, 1, 2, 3])
async def test_a_multipart_cut_after_some_parts_is_lost_and_reported_once(
    nursery, autojump_clock, answered
):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1, parts=4)
    parts = await peer.wait_submits(4)
    for part in parts[:answered]:
        peer.answer(part)
    await peer.flush()
    await h.settle()
    await peer.cut()
    await h.settle()
    lost = h.outcomes((Lost, Submitted, Unsent))
    assert [(o.job, o.reason, o.answered) for o in lost] == [
        (job, "connection closed by the SMSC", answered)
    ]
    assert h.bind.stats.window_used == 0
    await h.peer()  # and it reconnects


async def test_a_job_cut_before_any_byte_was_written_is_unsent(nursery, autojump_clock):
    h = await started(nursery, pacer=Pacer(1))
    peer = await h.peer()
    first, second = h.send_job(1), h.send_job(2)
    await peer.wait_submits(1)
    await h.settle(0.1)  # the second waits for the pacer: taken, nothing written
    await peer.cut()
    await h.settle()
    assert h.outcomes((Lost, Unsent)) == [
        Lost(first, "connection closed by the SMSC", "op#0"),
        Unsent(second, "op#0"),
    ]


async def test_a_stop_in_the_middle_of_a_multipart_finishes_its_parts_then_unbinds(
    nursery, autojump_clock
):
    h = await started(nursery, pacer=Pacer(2))
    peer = await h.peer()
    job = h.send_job(1, parts=3)
    other = h.send_job(2)
    (first,) = await peer.wait_submits(1)
    h.bind.stop()  # part 1 is out; parts 2 and 3 wait for the pacer
    peer.answer(first)
    await peer.flush()
    await peer.read_until(lambda: len(peer.submits) >= 2)
    for part in list(peer.submits):
        peer.answer(part)
    await peer.flush()
    await peer.read_to_end()
    assert isinstance(peer.pdus[-1], p.Unbind)
    await h.settle(1)
    outs = h.outcomes((Submitted, Lost, Unsent))
    assert [(type(o), o.job) for o in outs] == [(Submitted, job), (Unsent, other)]
    assert h.bind.stats.state == "stopped"
    sent_to = {x.destination_addr for x in peer.pdus if isinstance(x, p.SubmitSm)}
    assert sent_to == {"79160000001"}  # job 2 was taken, never sent, and given back


@pytest.mark.parametrize(
    "wrong", [p.EnquireLinkResp, p.BindTransceiverResp, p.UnbindResp, p.DeliverSmResp]
)
async def test_a_response_of_the_wrong_type_resets_that_connection_only(
    nursery, autojump_clock, wrong
):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1)
    (req,) = await peer.wait_submits(1)
    await peer.send(raw(wrong(sequence=req.sequence)))
    await h.settle()
    (lost,) = h.outcomes((Lost,))
    assert lost.job == job
    assert "does not answer SubmitSm" in lost.reason and wrong.__name__ in lost.reason
    assert wrong.__name__ in h.bind.stats.last_error
    await h.peer()  # a new connection


@pytest.mark.parametrize(
    "bad", ["", "   ", "bad\x01id", b"x" * 65, b"x" * 64 + b" \0", "ид".encode()]
)
async def test_an_accepted_part_with_an_unusable_id_is_reported_not_stored(
    nursery, autojump_clock, bad
):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1, parts=2)
    a, b = await peer.wait_submits(2)
    peer.answer(a, message_id="good")
    peer.answer(b, message_id=bad)
    await peer.flush()
    await h.settle()
    (out,) = h.outcomes((Submitted,))
    assert out.job == job and out.status == 0
    assert out.smsc_ids == ("good",)
    assert out.bad_id.startswith("part 2 accepted with an unusable message_id")
    assert h.bind.stats.state == "bound"  # the connection lives on


async def test_pdus_in_the_same_read_as_bind_resp_are_handled(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer(bound=False)
    mo = p.DeliverSm(sequence=9, source_addr="79161234567", short_message=b"STOP")
    link = p.EnquireLink(sequence=10)
    await peer.accept_bind(then=raw(mo) + raw(link))
    await peer.read_until(lambda: len(peer.raw) > 0 and b"\x80\x00\x00\x15" in peer.raw)
    await h.settle()
    (inbound,) = h.outcomes((Inbound,))
    assert inbound.pdu == mo
    assert inbound.connection.ack(inbound)
    await inbound.connection.flush()
    await peer.read_until(lambda: p.DeliverSmResp(sequence=9) in peer.responses_seen())


async def test_a_peer_that_trickles_bytes_is_reset_after_idle_and_timeout(nursery, autojump_clock):
    op = operator(enquire_link_interval="2s", response_timeout="1s")
    h = await started(nursery, op=op)
    peer = await h.peer()
    start = trio.current_time()
    header = raw(p.EnquireLinkResp(sequence=1))[:-1]
    with trio.move_on_after(30):
        for byte in header:  # never a whole PDU
            await peer.send(bytes([byte]))
            await trio.sleep(1.5)
            if h.bind.stats.state != "bound":
                break
    backoff = [o for o in h.outcomes((StateChanged,)) if o.state == "backoff"]
    assert "no PDU within 1s of an enquire_link" in backoff[0].detail
    assert trio.current_time() - start < 5
    with trio.move_on_after(0.01):
        await peer.read_to_end()
    assert any(isinstance(x, p.EnquireLink) for x in peer.pdus)


async def test_an_idle_link_is_kept_by_enquire_link(nursery, autojump_clock):
    op = operator(enquire_link_interval="2s", response_timeout="1s")
    h = await started(nursery, op=op)
    peer = await h.peer()
    with trio.move_on_after(20):
        while True:
            await peer.read()  # the peer's session answers enquire_link by itself
    links = [x for x in peer.pdus if isinstance(x, p.EnquireLink)]
    assert 8 <= len(links) <= 11
    assert h.bind.stats.state == "bound" and h.connects == 1


async def test_no_spurious_reset_with_a_full_window_and_a_slow_pacer(nursery, autojump_clock):
    """Window 1, 1 TPS, answers after 0.6 s, timeout 1 s: waiting for the window or the pacer
    does not count against the response timeout."""
    h = await started(nursery, op=operator(window=1, tps=1.0, response_timeout="1s"))
    peer = await h.peer()
    jobs = [h.send_job(i) for i in range(6)]
    done = 0
    while done < 6:
        (req,) = await peer.wait_submits(1)
        await trio.sleep(0.6)
        peer.answer(req)
        await peer.flush()
        done += 1
    await h.settle()
    outs = h.outcomes((Submitted, Lost, Unsent))
    assert [o.job for o in outs] == jobs
    assert h.connects == 1 and h.bind.stats.reconnects == 0
    assert len([x for x in peer.seen if isinstance(x, p.SubmitSm)]) == 6


async def test_latency_is_measured_from_the_write(nursery, autojump_clock):
    h = await started(nursery, op=operator(tps=2.0))
    h.bind.latencies = []
    peer = await h.peer()
    for i in range(4):
        h.send_job(i)
    for _ in range(4):
        (req,) = await peer.wait_submits(1)
        await trio.sleep(0.25)
        peer.answer(req)
        await peer.flush()
    await h.settle()
    assert h.bind.latencies == pytest.approx([0.25] * 4, abs=0.01)


async def test_no_response_within_the_timeout_resets_and_loses_the_job(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1)
    await peer.wait_submits(1)
    await h.settle(1.5)
    (lost,) = h.outcomes((Lost,))
    assert lost.job == job and "no response to submit_sm" in lost.reason
    await h.peer()


async def test_credentials_refused_fail_the_bind_until_reconnect_revives_it(
    nursery, autojump_clock
):
    h = await started(nursery)
    peer = await h.peer(bound=False)
    await peer.accept_bind(status=c.ESME_RINVPASWD)
    await h.settle(60)
    assert h.bind.stats.state == "failed"
    assert "0x0E" in h.bind.stats.last_error
    assert h.connects == 1  # it does not hammer the SMSC with a bad password
    h.bind.reset()
    peer = await h.peer()
    await h.settle()
    assert h.bind.stats.state == "bound" and h.connects == 2


async def test_a_stop_while_failed_ends_the_bind(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer(bound=False)
    await peer.accept_bind(status=c.ESME_RINVSYSID)
    await h.settle()
    h.bind.stop()
    await h.settle()
    assert h.bind.stats.state == "stopped"


@pytest.mark.parametrize(
    "request_pdu",
    [
        raw(p.AlertNotification(sequence=33, source_addr="1", esme_addr="2")),
        codec.HEADER.pack(16, 0x00000099, 0, 33),
        raw(p.SubmitSm(sequence=33)),
    ],
)
async def test_what_an_esme_does_not_take_gets_a_generic_nack(nursery, autojump_clock, request_pdu):
    h = await started(nursery)
    peer = await h.peer()
    await peer.send(request_pdu)
    nack = p.GenericNack(sequence=33, status=c.ESME_RINVCMDID)
    await peer.read_until(lambda: nack in peer.responses_seen())
    assert h.bind.stats.state == "bound"


async def test_a_fatal_framing_error_is_the_last_error_even_if_the_peer_leaves(
    nursery, autojump_clock
):
    h = await started(nursery)
    peer = await h.peer()
    job = h.send_job(1)
    await peer.wait_submits(1)
    await peer.send(b"\x00\x00\x00\x05garbage")
    await peer.cut()
    await h.settle()
    (lost,) = h.outcomes((Lost,))
    assert lost.job == job
    assert "command_length 5" in lost.reason
    states = [o for o in h.outcomes() if isinstance(o, StateChanged) and o.state == "backoff"]
    assert not states or "command_length 5" in states[0].detail
    assert "command_length 5" in h.bind.stats.last_error


async def test_unbind_from_the_smsc_is_answered_and_reconnected(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer()
    await peer.send(raw(p.Unbind(sequence=50)))
    await peer.read_until(lambda: p.UnbindResp(sequence=50) in peer.responses_seen())
    await h.settle()
    assert "unbound by the SMSC" in h.bind.stats.last_error
    await h.peer()


async def test_a_vetoed_job_is_reported_and_never_sent(nursery, autojump_clock):
    h = await started(nursery, veto=lambda job: "stopped" if job.msg_id == 2 else "")
    peer = await h.peer()
    h.send_job(1)
    vetoed = h.send_job(2)
    h.send_job(3)
    await peer.wait_submits(2)
    await h.settle()
    assert h.outcomes((Vetoed,)) == [Vetoed(vetoed, "stopped", "op#0")]
    assert [s.destination_addr for s in peer.submits] == ["79160000001", "79160000003"]


async def test_a_paused_bind_takes_nothing_until_resumed(nursery, autojump_clock):
    h = await started(nursery)
    peer = await h.peer()
    h.bind.paused = True
    await h.settle()
    h.send_job(1)
    await h.settle(5)
    assert peer.submits == []
    h.bind.paused = False
    await peer.wait_submits(1)


async def test_the_window_is_never_exceeded(nursery, autojump_clock):
    h = await started(nursery, op=operator(window=3))
    peer = await h.peer()
    for i in range(10):
        h.send_job(i)
    await h.settle()
    await peer.read_until(lambda: len(peer.submits) >= 3)
    await h.settle()
    assert len(peer.submits) == 3 and h.bind.stats.window_used == 3
    for req in list(peer.submits):
        peer.answer(req)
    await peer.flush()
    await peer.read_until(lambda: len(peer.submits) >= 3)
    assert len(peer.submits) == 3


async def test_an_answered_message_keeps_its_slots_until_the_engine_commits_it(
    nursery, autojump_clock
):
    """What a crash can resend stays within the window: a slot freed by a response is
    taken again only once the engine has made the message's outcome durable."""
    h = Harness(operator(window=2), commit=False)
    await h.start(nursery)
    peer = await h.peer()
    for i in range(4):
        h.send_job(i)
    first = await peer.wait_submits(2)
    for req in first:
        peer.answer(req)
    await peer.flush()
    await h.settle(2)
    with trio.move_on_after(1):
        await peer.read()
    assert len([x for x in peer.seen if isinstance(x, p.SubmitSm)]) == 2  # nothing more yet
    assert h.bind.unsettled == 2
    h.bind.settle(2)  # the engine committed both
    await peer.read_until(lambda: len([x for x in peer.seen if isinstance(x, p.SubmitSm)]) == 4)

"""The session state machine, without sockets: an ESME and an SMSC back to back."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.errors import LocalProtocolError
from engine.smpp.session import (
    BindFailed,
    Bound,
    Closed,
    ProtocolViolation,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    State,
    UnbindRequested,
    UnmatchedResponse,
)


class Pair:
    """h11's ConnectionPair: shuttles bytes between two sessions."""

    def __init__(self, window: int = 10) -> None:
        self.esme = Session(Role.ESME, window=window)
        self.smsc = Session(Role.SMSC, window=window)

    def to_smsc(self):
        return self.smsc.receive_data(self.esme.data_to_send())

    def to_esme(self):
        return self.esme.receive_data(self.smsc.data_to_send())

    def bind(self, cls=p.BindTransceiver, status=0):
        self.esme.send(cls(system_id="volley", password="secret"))
        (req,) = self.to_smsc()
        self.smsc.respond(req.pdu, status, system_id="SMSC")
        return self.to_esme()


def test_bind_transceiver_both_sides():
    pair = Pair()
    assert pair.esme.state is State.OPEN
    events = pair.bind()
    assert events == [Bound("SMSC", State.BOUND_TRX)]
    assert pair.esme.state is State.BOUND_TRX
    assert pair.smsc.state is State.BOUND_TRX


@pytest.mark.parametrize(
    ("cls", "state"),
    [(p.BindTransmitter, State.BOUND_TX), (p.BindReceiver, State.BOUND_RX)],
)
def test_bind_types(cls, state):
    pair = Pair()
    pair.bind(cls)
    assert pair.esme.state is state


def test_bad_credentials_leave_the_session_open():
    pair = Pair()
    assert pair.bind(status=c.ESME_RINVPASWD) == [BindFailed(c.ESME_RINVPASWD)]
    assert pair.esme.state is State.OPEN
    assert pair.smsc.state is State.OPEN


def test_already_bound_counts_as_bound():
    pair = Pair()
    assert isinstance(pair.bind(status=c.ESME_RALYBND)[0], Bound)


def test_submit_and_response_are_matched():
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm(destination_addr="1", short_message=b"hi"))
    (req,) = pair.to_smsc()
    assert isinstance(req, RequestReceived)
    assert req.pdu == sent
    pair.smsc.respond(req.pdu, message_id="abc")
    (ev,) = pair.to_esme()
    assert ev == ResponseReceived(sent, p.SubmitSmResp(sequence=sent.sequence, message_id="abc"))
    assert pair.esme.window_free == 10


def test_illegal_sends_are_local_errors_and_leave_the_state():
    s = Session(Role.ESME)
    with pytest.raises(LocalProtocolError, match="can't send SubmitSm in state OPEN"):
        s.send(p.SubmitSm())
    assert s.state is State.OPEN
    with pytest.raises(LocalProtocolError):
        s.send(p.SubmitSmResp())


def test_receiver_may_not_submit():
    pair = Pair()
    pair.bind(p.BindReceiver)
    with pytest.raises(LocalProtocolError):
        pair.esme.send(p.SubmitSm())


def test_peer_request_in_the_wrong_state_gets_invbndsts():
    smsc = Session(Role.SMSC)
    events = smsc.receive_data(codec.encode(p.SubmitSm(sequence=5)))
    assert isinstance(events[0], ProtocolViolation)
    assert codec.decode(smsc.data_to_send()) == p.SubmitSmResp(sequence=5, status=c.ESME_RINVBNDSTS)


def test_window_limit_and_enquire_link_with_a_full_window():
    pair = Pair(window=2)
    pair.bind()
    pair.esme.send(p.SubmitSm())
    pair.esme.send(p.SubmitSm())
    with pytest.raises(LocalProtocolError, match="window full"):
        pair.esme.send(p.SubmitSm())
    pair.esme.send(p.EnquireLink())  # never blocked by the window
    pair.to_smsc()
    pair.smsc.send(p.EnquireLink())
    events = pair.to_esme()  # the SMSC's answer to ours; its own is answered by the session
    assert [type(e.response) for e in events] == [p.EnquireLinkResp]
    assert isinstance(codec.decode(pair.esme.data_to_send()), p.EnquireLinkResp)


def test_sequence_numbers_wrap_and_skip_outstanding():
    pair = Pair()
    pair.bind()
    pair.esme._seq = c.SEQUENCE_MAX - 1
    assert pair.esme.send(p.SubmitSm()).sequence == c.SEQUENCE_MAX
    assert pair.esme.send(p.SubmitSm()).sequence == 1
    pair.esme._seq = 0
    assert pair.esme.send(p.SubmitSm()).sequence == 2  # 1 is still outstanding


def test_generic_nack_is_matched_to_its_request_and_never_answered():
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    pair.esme.data_to_send()
    nack = p.GenericNack(sequence=sent.sequence, status=c.ESME_RTHROTTLED)
    (ev,) = pair.esme.receive_data(codec.encode(nack))
    assert ev == ResponseReceived(sent, nack)
    assert pair.esme.data_to_send() == b""


def test_unmatched_response():
    pair = Pair()
    pair.bind()
    resp = p.SubmitSmResp(sequence=77, message_id="x")
    assert pair.esme.receive_data(codec.encode(resp)) == [UnmatchedResponse(resp)]


def test_expire_frees_the_slot_and_late_response_is_unmatched():
    pair = Pair(window=1)
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    assert pair.esme.expire(sent.sequence) == sent
    assert pair.esme.window_free == 1
    late = p.SubmitSmResp(sequence=sent.sequence)
    assert pair.esme.receive_data(codec.encode(late)) == [UnmatchedResponse(late)]


def test_unbind_from_us():
    pair = Pair()
    pair.bind()
    pair.esme.send(p.Unbind())
    assert pair.esme.state is State.UNBINDING
    with pytest.raises(LocalProtocolError):
        pair.esme.send(p.SubmitSm())
    assert pair.to_smsc() == [UnbindRequested(), Closed()]
    assert pair.to_esme() == [Closed()]
    assert pair.esme.state is State.CLOSED


def test_unbind_from_the_smsc():
    pair = Pair()
    pair.bind()
    pair.smsc.send(p.Unbind())
    assert pair.to_esme() == [UnbindRequested(), Closed()]
    assert pair.to_smsc() == [Closed()]


def test_deliver_sm_is_left_to_the_caller_to_answer():
    pair = Pair()
    pair.bind()
    sent = pair.smsc.send(p.DeliverSm(esm_class=4, short_message=b"id:1 stat:DELIVRD"))
    (ev,) = pair.to_esme()
    assert ev == RequestReceived(sent)
    assert pair.esme.data_to_send() == b""
    pair.esme.respond(ev.pdu)
    (resp,) = pair.to_smsc()
    assert resp.response == p.DeliverSmResp(sequence=sent.sequence)


def test_unknown_command_gets_generic_nack_same_sequence():
    pair = Pair()
    pair.bind()
    raw = codec.HEADER.pack(16, 0x77, 0, 42)
    (ev,) = pair.esme.receive_data(raw)
    assert isinstance(ev, ProtocolViolation)
    assert codec.decode(pair.esme.data_to_send()) == p.GenericNack(
        sequence=42, status=c.ESME_RINVCMDID
    )


@pytest.mark.parametrize(("status", "expect_id"), [(0, ""), (c.ESME_RTHROTTLED, "")])
def test_malformed_response_stands_for_its_header_without_a_nack(status, expect_id):
    """Its body is unreadable; its header says whether the SMSC accepted: status 0 comes out as
    an acceptance with no usable id (the bind makes it unknown), an error as that error."""
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    pair.esme.data_to_send()
    raw = codec.HEADER.pack(20, c.SUBMIT_SM_RESP, status, sent.sequence) + b"abcd"
    events = pair.esme.receive_data(raw)
    assert isinstance(events[0], ProtocolViolation)
    assert events[1] == ResponseReceived(
        sent, p.SubmitSmResp(sequence=sent.sequence, status=status, message_id=expect_id)
    )
    assert pair.esme.data_to_send() == b""
    assert pair.esme.window_free == pair.esme.window


@pytest.mark.parametrize(
    "wrong",
    [
        p.EnquireLinkResp,
        p.BindTransceiverResp,
        p.UnbindResp,
        p.DeliverSmResp,
        p.DataSmResp,
    ],
)
def test_a_response_of_the_wrong_type_is_fatal_and_names_both(wrong):
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    pair.esme.data_to_send()
    events = pair.esme.receive_data(codec.encode(wrong(sequence=sent.sequence)))
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].error.fatal
    assert "SubmitSm" in str(events[0].error) and wrong.__name__ in str(events[0].error)
    assert events[-1] == Closed()
    assert pair.esme.state is State.CLOSED
    assert pair.esme.data_to_send() == b""  # a response is never answered


def test_a_malformed_response_of_the_wrong_type_is_fatal_too():
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    pair.esme.data_to_send()
    raw = codec.HEADER.pack(20, c.ENQUIRE_LINK_RESP, 0, sent.sequence) + b"abcd"
    events = pair.esme.receive_data(raw)
    assert any(isinstance(e, ProtocolViolation) and e.error.fatal for e in events)
    assert events[-1] == Closed()


def test_an_unknown_response_id_to_a_pending_request_is_fatal():
    pair = Pair()
    pair.bind()
    sent = pair.esme.send(p.SubmitSm())
    pair.esme.data_to_send()
    events = pair.esme.receive_data(codec.HEADER.pack(16, 0x80000077, 0, sent.sequence))
    assert events[-1] == Closed()


@pytest.mark.parametrize(
    "pdu",
    [
        p.AlertNotification(source_addr="79161234567", esme_addr="volley"),
        p.SubmitSm(short_message=b"x"),
        p.BindTransceiver(system_id="x"),
        p.QuerySm(message_id="1"),
    ],
)
def test_requests_an_esme_does_not_take_get_a_generic_nack(pdu):
    pair = Pair()
    pair.bind()
    raw = codec.encode(msgspec.structs.replace(pdu, sequence=77))
    (ev,) = pair.esme.receive_data(raw)
    assert isinstance(ev, ProtocolViolation)
    assert codec.decode(pair.esme.data_to_send()) == p.GenericNack(
        sequence=77, status=c.ESME_RINVCMDID
    )
    assert pair.esme.state is State.BOUND_TRX


def test_every_complete_pdu_counts_as_received_and_a_partial_one_does_not():
    pair = Pair()
    pair.bind()
    before = pair.esme.received
    raw = codec.encode(p.EnquireLink(sequence=5))
    pair.esme.receive_data(raw[:7])
    assert pair.esme.received == before
    pair.esme.receive_data(raw[7:] + codec.HEADER.pack(16, 0x77, 0, 6))
    assert pair.esme.received == before + 2


def test_fatal_garbage_closes_after_the_nack():
    pair = Pair()
    pair.bind()
    events = pair.esme.receive_data(b"\x00\x00\x00\x05garbage........")
    assert isinstance(events[0], ProtocolViolation)
    assert events[-1] == Closed()
    assert pair.esme.state is State.CLOSED
    assert isinstance(codec.decode(pair.esme.data_to_send()), p.GenericNack)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["submit", "answer", "deliver", "ack", "link"]), max_size=60))
def test_random_interleavings_keep_the_outstanding_table_consistent(steps):
    pair = Pair(window=5)
    pair.bind()
    smsc_inbox: list = []
    esme_inbox: list = []
    for step in steps:
        if step == "submit" and pair.esme.window_free:
            pair.esme.send(p.SubmitSm(short_message=b"x"))
        elif step == "deliver" and pair.smsc.window_free:
            pair.smsc.send(p.DeliverSm(short_message=b"y"))
        elif step == "link":
            pair.esme.send(p.EnquireLink())
        smsc_inbox += [e.pdu for e in pair.to_smsc() if isinstance(e, RequestReceived)]
        esme_inbox += [e.pdu for e in pair.to_esme() if isinstance(e, RequestReceived)]
        if step == "answer" and smsc_inbox:
            pair.smsc.respond(smsc_inbox.pop(0))
        elif step == "ack" and esme_inbox:
            pair.esme.respond(esme_inbox.pop(0))
        submits = [x for x in pair.esme.outstanding.values() if isinstance(x, p.SubmitSm)]
        assert pair.esme.window_free == 5 - len(submits)
        assert len(submits) >= len(smsc_inbox)
    for req in smsc_inbox:
        pair.smsc.respond(req)
    pair.to_esme()
    pair.to_smsc()
    assert not [x for x in pair.esme.outstanding.values() if isinstance(x, p.SubmitSm)]


@pytest.mark.parametrize("cls", [p.DeliverSm, p.DataSm])
@pytest.mark.parametrize("status", [0, c.ESME_RX_T_APPN])
def test_acknowledge_writes_what_respond_writes(cls, status):
    a, b = Pair(), Pair()
    a.bind()
    b.bind()
    request = cls(sequence=4242)
    a.esme.respond(request, status)
    b.esme.acknowledge(request, status)
    assert a.esme.data_to_send() == b.esme.data_to_send()

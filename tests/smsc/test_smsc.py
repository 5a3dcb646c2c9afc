"""The simulator over real TCP on 127.0.0.1."""

import contextlib
import json
import threading

import pytest
import trio
import trio.testing

from engine.smpp import codec
from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.receipts import parse_receipt_pdu
from engine.smpp.session import BindFailed, Bound, RequestReceived, ResponseReceived
from engine.smsc.options import Options
from engine.smsc.server import Smsc

from .esme import Esme

pytestmark = pytest.mark.trio


async def start(nursery, **kw) -> Smsc:
    smsc = Smsc(Options(port=0, seed=1, **kw))
    await nursery.start(smsc.serve)
    return smsc


def submit(to="79161234567", reg=1, text=b"Hello"):
    return p.SubmitSm(
        source_addr_ton=5,
        source_addr="Shop",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=to,
        registered_delivery=reg,
        short_message=text,
    )


def is_resp(ev):
    return isinstance(ev, ResponseReceived)


def is_receipt(ev):
    return isinstance(ev, RequestReceived) and isinstance(ev.pdu, p.DeliverSm)


async def test_credentials_and_bind_limit(nursery):
    smsc = await start(nursery, accounts={"volley": "secret"}, max_binds=1)
    e1, e2, e3 = [await Esme.connect(smsc.port) for _ in range(3)]
    assert await e1.bind(system_id="nobody") == BindFailed(c.ESME_RINVSYSID)
    assert await e2.bind(password="wrong") == BindFailed(c.ESME_RINVPASWD)
    assert isinstance(await e3.bind(), Bound)
    assert await e1.bind() == BindFailed(c.ESME_RBINDFAIL)
    assert smsc.counters["bind_refused"] == 3


@pytest.mark.parametrize(
    ("form", "receipt_form"), [("hex", "same"), ("decimal", "same"), ("hex", "other")]
)
async def test_ids_and_receipts(nursery, form, receipt_form):
    smsc = await start(nursery, message_id_form=form, receipt_id_form=receipt_form)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    await esme.send(submit())
    resp = (await esme.wait_for(is_resp)).response
    assert resp.status == 0
    if form == "decimal":
        assert resp.message_id.isdigit()
    ev = await esme.wait_for(is_receipt)
    receipt = parse_receipt_pdu(ev.pdu)
    assert ev.pdu.esm_class == 0x04
    assert (receipt.stat, receipt.err) == ("DELIVRD", 0)
    assert ev.pdu.message_state == 2
    assert ev.pdu.network_error_code == b"\x03\x00\x00"
    assert ev.pdu.source_addr == "79161234567"
    if receipt_form == "same":
        assert receipt.message_id == resp.message_id
    else:
        assert receipt.message_id == str(int(resp.message_id, 16))
    esme.session.respond(ev.pdu)
    await esme.flush()
    with trio.fail_after(2):
        while smsc.counters["receipts_acked"] < 1:
            await trio.sleep(0.01)


async def test_fractions_and_dead_numbers(nursery):
    smsc = await start(
        nursery,
        undeliv_fraction=0.2,
        expired_fraction=0.1,
        rejected_fraction=0.1,
        dead_numbers=frozenset({"79990000000"}),
    )
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    for i in range(200):
        await esme.send(submit(to=f"7916000{i:04d}"))
    for _ in range(5):
        await esme.send(submit(to="79990000000"))
    stats: dict[str, int] = {}
    dead = []
    for _ in range(205):
        ev = await esme.wait_for(is_receipt)
        r = parse_receipt_pdu(ev.pdu)
        stats[r.stat] = stats.get(r.stat, 0) + 1
        if ev.pdu.source_addr == "79990000000":
            dead.append((r.stat, r.err))
        esme.session.respond(ev.pdu)
    await esme.flush()
    assert dead == [("UNDELIV", 1)] * 5
    assert 20 <= stats["UNDELIV"] - 5 <= 65
    assert 5 <= stats["EXPIRED"] <= 40
    assert 5 <= stats["REJECTD"] <= 40


async def test_transmitter_receipts_go_to_the_receiver_of_the_same_system_id(nursery):
    smsc = await start(nursery)
    tx = await Esme.connect(smsc.port)
    await tx.bind(p.BindTransmitter)
    await tx.send(submit())
    await tx.wait_for(is_resp)
    rx = await Esme.connect(smsc.port)
    await rx.bind(p.BindReceiver)
    ev = await rx.wait_for(is_receipt)  # held until a receiver bound
    assert parse_receipt_pdu(ev.pdu).stat == "DELIVRD"


async def test_unacknowledged_receipts_are_resent(nursery):
    smsc = await start(nursery, receipt_resend_after=0.2, receipt_resend_max=2)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    await esme.send(submit())
    first = await esme.wait_for(is_receipt)
    second = await esme.wait_for(is_receipt)
    assert second.pdu.receipted_message_id == first.pdu.receipted_message_id
    assert second.pdu.sequence != first.pdu.sequence
    assert smsc.counters["receipts_resent"] >= 1


async def test_receipts_resent_to_the_next_connection_when_one_dies(nursery):
    smsc = await start(nursery)
    first = await Esme.connect(smsc.port)
    await first.bind()
    await first.send(submit())
    ev = await first.wait_for(is_receipt)
    await first.aclose()  # never acknowledged
    second = await Esme.connect(smsc.port)
    await second.bind()
    again = await second.wait_for(is_receipt)
    assert again.pdu.receipted_message_id == ev.pdu.receipted_message_id


async def test_throttle_per_session(nursery):
    smsc = await start(nursery, throttle_tps=5, receipts=False)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    for _ in range(12):
        await esme.send(submit())
    statuses = [(await esme.wait_for(is_resp)).response.status for _ in range(12)]
    assert statuses.count(c.ESME_RTHROTTLED) >= 6
    assert smsc.counters["throttled"] == statuses.count(c.ESME_RTHROTTLED)


async def test_error_rate_with_chosen_status(nursery):
    smsc = await start(nursery, error_rate=1.0, error_status=0x14)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    await esme.send(submit())
    assert (await esme.wait_for(is_resp)).response.status == 0x14


async def test_enquire_link_from_the_smsc(nursery):
    smsc = await start(nursery, enquire_link_interval=0.1)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    with trio.fail_after(3):
        while smsc.counters["enquire_link"] < 2:
            await esme.read()
    resp = await esme.wait_for(lambda e: True, timeout=0.01) if esme.events else None
    assert resp is None or not isinstance(resp, RequestReceived)


async def test_mo_sender(nursery):
    smsc = await start(nursery)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    assert await smsc.send_mo("+79161234567", "STOP") == 1
    ev = await esme.wait_for(is_receipt)
    assert ev.pdu.esm_class == 0
    assert ev.pdu.source_addr == "79161234567"
    assert ev.pdu.short_message == b"STOP"


async def test_record_every_submit_as_json_lines(nursery, tmp_path):
    path = tmp_path / "wire.jsonl"
    smsc = await start(nursery, record=str(path), receipts=False)
    esme = await Esme.connect(smsc.port)
    await esme.bind()
    await esme.send(
        p.SubmitSm(
            destination_addr="40721234567",
            data_coding=8,
            short_message="Привет".encode("utf-16-be"),
            sar_msg_ref_num=7,
        )
    )
    await esme.wait_for(is_resp)
    (entry,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert entry["destination_addr"] == "40721234567"
    assert entry["data_coding"] == 8
    assert entry["text"] == "Привет"
    assert entry["tlvs"] == {"sar_msg_ref_num": 7}


async def test_malformed_pdus_get_generic_nack_and_the_server_survives(nursery):
    smsc = await start(nursery)
    raw = await Esme.connect(smsc.port)
    stream = raw.stream
    await stream.send_all(codec.HEADER.pack(16, 0x77, 0, 5))
    nack = codec.decode(await stream.receive_some(16))
    assert nack == p.GenericNack(sequence=5, status=c.ESME_RINVCMDID)
    await stream.send_all(b"\x00\x00\x00\x03garbage-garbage")
    assert isinstance(codec.decode(await stream.receive_some(16)), p.GenericNack)
    assert await stream.receive_some(16) == b""  # closed after a fatal error
    esme = await Esme.connect(smsc.port)
    assert isinstance(await esme.bind(), Bound)
    assert smsc.counters["malformed"] == 2


async def test_a_slow_client_does_not_stall_the_others(nursery):
    smsc = await start(nursery, receipt_window=100000, send_timeout=1.0)
    slow = await Esme.connect(smsc.port, window=20000)
    await slow.bind()
    for _ in range(20000):  # answers and receipts pile up: the slow client never reads
        slow.session.send(submit(text=b"x" * 150))

    async def push() -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # dropped: that is the point
            await slow.flush()

    nursery.start_soon(push)
    fast = await Esme.connect(smsc.port)
    await fast.bind()
    with trio.fail_after(3):
        for _ in range(50):
            await fast.send(submit(reg=0))
            await fast.wait_for(is_resp)
    with trio.fail_after(5):
        while not smsc.counters["dropped_slow"]:
            await trio.sleep(0.05)


async def test_smpplib_client_bind_submit_receipt_unbind(nursery):
    smsc = await start(nursery)
    port = smsc.port

    def client_session() -> tuple[list, str]:
        import smpplib.client

        got: list = []
        done = threading.Event()
        client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)

        def on_deliver(pdu):
            got.append(pdu)
            done.set()

        client.set_message_received_handler(on_deliver)
        client.connect()
        client.bind_transceiver(system_id="volley", password="secret")
        resp = client.send_message(
            source_addr_ton=5,
            source_addr="Shop",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="79161234567",
            short_message=b"Hi",
            registered_delivery=1,
        )
        while not done.is_set():
            client.read_once()
        client.unbind()
        client.disconnect()
        return got, resp.sequence

    got, _ = await trio.to_thread.run_sync(client_session)
    (receipt,) = got
    assert receipt.receipted_message_id
    assert receipt.message_state == 2
    assert b"stat:DELIVRD" in receipt.short_message

"""One client of the SMSC simulator: its session, its tasks, its faults.

A Connection owns its nursery: a reader that drives the sans-IO session and a
timer task for what is due later (receipts, delayed responses, re-sent
receipts, enquire_link, MO). Writes are coalesced: everything a read produced
goes out in one send. Misbehaviour on purpose (engine/smsc/faults.py) is
injected here.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

import trio

from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.session import (
    ProtocolViolation,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    State,
    UnmatchedResponse,
)
from engine.smsc import faults as f

if TYPE_CHECKING:
    from engine.smsc.server import Smsc

READ_SIZE = 256 * 1024
_STAT_STATE = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}


class Throttle:
    """Submits per whole second of trio's clock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.second = -1
        self.count = 0

    def allow(self, now: float) -> bool:
        second = int(now)
        if second != self.second:
            self.second, self.count = second, 0
        self.count += 1
        return self.count <= self.limit


class Connection:
    def __init__(self, smsc: Smsc, stream: trio.abc.Stream) -> None:
        self.smsc = smsc
        self.stream = stream
        self.session = Session(
            Role.SMSC, window=smsc.options.receipt_window, max_length=smsc.options.max_pdu_length
        )
        self.system_id = ""
        self.throttle = Throttle(smsc.options.throttle_tps)
        self._timers: list[tuple[float, int, str, Any]] = []
        self._tick = itertools.count()
        self._wake = trio.Event()
        self._waiting: list[p.DeliverSm] = []
        self._sent_at: dict[int, tuple[float, p.DeliverSm, int]] = {}
        self._write_lock = trio.Lock()
        self._last_rx = 0.0
        self._delayed = 0
        self._extra = b""  # bytes no session would write (faults), sent after the session's
        self._submits = 0
        self._cut = False
        self._trickling = False
        self._trickle = trio.Event()

    @property
    def bound(self) -> bool:
        return self.session.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)

    @property
    def can_receive(self) -> bool:
        return self.session.state in (State.BOUND_RX, State.BOUND_TRX)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer_task)
                nursery.start_soon(self._trickle_bytes)
                await self._reader()
                nursery.cancel_scope.cancel()
        except* trio.TooSlowError:
            self.smsc.counters.add("dropped_slow")
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    # -- reading -------------------------------------------------------------

    async def _reader(self) -> None:
        session = self.session
        while True:
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                return
            self._last_rx = trio.current_time()
            if self._trickling:
                continue  # it hears nothing more
            for ev in session.receive_data(data):
                if isinstance(ev, RequestReceived):
                    self._request(ev.pdu)
                elif isinstance(ev, ResponseReceived):
                    self._response(ev.request, ev.response)
                elif isinstance(ev, ProtocolViolation):
                    self.smsc.counters.add("malformed")
                elif isinstance(ev, UnmatchedResponse) and isinstance(ev.pdu, p.GenericNack):
                    self.smsc.counters.add("nacks_received")
            self._pump()
            await self._flush()
            if session.state is State.CLOSED or self._cut:
                return

    def _request(self, req: p.Pdu) -> None:
        if isinstance(req, p.SubmitSm | p.DataSm):
            self._submit(req)
        elif isinstance(req, p.BindTransmitter | p.BindReceiver | p.BindTransceiver):
            self._bind(req)
        elif isinstance(req, p.QuerySm):
            self.session.respond(req, message_id=req.message_id, message_state=2)
        else:
            resp_cls = p.RESPONSE_FOR.get(type(req))
            if resp_cls is not None:
                self.session.respond(req)

    def _bind(self, req: p.Pdu) -> None:
        status = self.smsc.check_bind(req)
        if status:
            self.smsc.counters.add("bind_refused")
            self.session.respond(req, status)
            return
        self.system_id = req.system_id
        self.session.respond(req, 0, system_id="VolleySMSC", sc_interface_version=0x34)
        self.smsc.counters.add("binds")
        self.smsc.bound(self)
        faults = self.smsc.faults
        if faults.on("mo-on-bind") and self.can_receive:
            faults.struck["mo-on-bind"] += 1
            self.queue_deliver(self.smsc.mo_pdu(self.smsc.options.mo_from or "79160000000"))
        self._extra += f.bind_extras(faults)
        if faults.on("trickle"):
            faults.struck["trickle"] += 1
            self._trickling = True
            self._trickle.set()

    def _submit(self, req: p.SubmitSm | p.DataSm) -> None:
        smsc, counters = self.smsc, self.smsc.counters
        counters.add("submit_sm" if isinstance(req, p.SubmitSm) else "data_sm")
        self._submits += 1
        if self._misbehave(req):
            return
        now = trio.current_time()
        status = 0
        if not smsc.throttle_allows(self, now):
            status = c.ESME_RTHROTTLED
            counters.add("throttled")
        elif smsc.options.error_rate and smsc.rng.random() < smsc.options.error_rate:
            status = smsc.options.error_status
        if status:
            counters.add("submit_error")
            self._answer(req, status, "")
            return
        resp_id, receipt_id = smsc.next_message_id()
        counters.add("submit_ok")
        smsc.record(req, self)
        bad_id = smsc.faults.accept_fault()
        if bad_id:
            self._extra += f.accepted_with(req, bad_id)
        else:
            self._answer(req, 0, resp_id)
        if req.registered_delivery & 0x03 and smsc.options.receipts:
            self._schedule_receipt(req, receipt_id, now)

    async def _trickle_bytes(self) -> None:
        """The ``trickle`` fault: a PDU's bytes one at a time, 1.5 s apart, never the last."""
        await self._trickle.wait()
        for byte in f.trickle_bytes():
            await trio.sleep(1.5)
            async with self._write_lock:
                await self.stream.send_all(bytes([byte]))

    def _misbehave(self, req: p.SubmitSm | p.DataSm) -> bool:
        """A fault that takes this submit instead of an answer (it is recorded all the same)."""
        faults = self.smsc.faults
        if faults.on("cut") and self._submits % faults.every == 0:
            faults.struck["cut"] += 1
            self.smsc.record(req, self)
            self._cut = True  # once what this read answered is out
            return True
        if faults.strikes("wrong-response"):
            self.smsc.record(req, self)
            self._extra += f.wrong_response(req, faults.struck["wrong-response"])
            return True
        return False

    def _answer(self, req: p.Pdu, status: int, message_id: str) -> None:
        delay = self.smsc.options.response_delay
        if delay:
            self._delayed += 1
            counters = self.smsc.counters.values
            counters["max_delayed_responses"] = max(
                counters["max_delayed_responses"], self._delayed
            )
            self._at(trio.current_time() + delay, "respond", (req, status, message_id))
        else:
            self.session.respond(req, status, message_id=message_id)

    def _schedule_receipt(self, req: p.SubmitSm | p.DataSm, message_id: str, now: float) -> None:
        smsc = self.smsc
        stat, err = smsc.outcome(req.destination_addr)
        if req.registered_delivery & 0x03 == 2 and stat == "DELIVRD":
            return  # receipt on failure only
        stamp = smsc.stamp()
        receipt = p.DeliverSm(
            source_addr_ton=req.dest_addr_ton,
            source_addr_npi=req.dest_addr_npi,
            source_addr=req.destination_addr,
            dest_addr_ton=req.source_addr_ton,
            dest_addr_npi=req.source_addr_npi,
            destination_addr=req.source_addr,
            esm_class=0x04,
            short_message=(
                f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:{stamp} done date:{stamp} stat:{stat} err:{err:03d} text:"
            ).encode(),
            receipted_message_id=message_id,
            message_state=_STAT_STATE[stat],
            network_error_code=b"\x03" + err.to_bytes(2, "big"),
        )
        for fault in ("receipt-blank-id", "receipt-long-id"):
            if smsc.faults.strikes(fault):
                receipt = f.receipt_with_bad_id(receipt, fault)
        delay = smsc.options.receipt_delay + smsc.rng.uniform(0, smsc.options.receipt_jitter)
        if delay <= 0:
            smsc.route_receipt(self, receipt)
        else:
            self._at(now + delay, "receipt", receipt)

    def _response(self, request: p.Pdu, response: p.Pdu) -> None:
        if isinstance(request, p.DeliverSm):
            self._sent_at.pop(request.sequence, None)
            if response.status == 0 and request.esm_class & 0x3C:
                self.smsc.counters.add("receipts_acked")

    # -- writing -------------------------------------------------------------

    def queue_deliver(self, pdu: p.DeliverSm) -> None:
        self._waiting.append(pdu)
        self._wake.set()

    def _pump(self) -> None:
        """Send waiting deliver_sm while the window (outstanding receipts cap) allows."""
        if not self.can_receive:
            return
        session, now = self.session, trio.current_time()
        waiting = self._waiting
        n = min(len(waiting), session.window_free)
        for pdu in waiting[:n]:
            sent = session.send(pdu)
            self._sent_at[sent.sequence] = (now, pdu, 0)
            if pdu.esm_class & 0x3C:
                self.smsc.counters.add("receipts_sent")
        del waiting[:n]

    async def _flush(self) -> None:
        data = self.session.data_to_send() + self._extra
        self._extra = b""
        if data:
            async with self._write_lock:
                with trio.fail_after(self.smsc.options.send_timeout):
                    await self.stream.send_all(data)

    # -- later ---------------------------------------------------------------

    def _at(self, when: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._tick), kind, payload))
        self._wake.set()

    async def _timer_task(self) -> None:
        o = self.smsc.options
        next_link = (
            trio.current_time() + o.enquire_link_interval if o.enquire_link_interval else None
        )
        while True:
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _, _, kind, payload = heapq.heappop(self._timers)
                if kind == "receipt":
                    self.smsc.route_receipt(self, payload)
                elif kind == "respond":
                    self._delayed -= 1
                    req, status, message_id = payload
                    self.session.respond(req, status, message_id=message_id)
            if o.receipt_resend_after:
                self._resend_unacked(now)
            if next_link is not None and now >= next_link and self.bound:
                self.session.send(p.EnquireLink())
                self.smsc.counters.add("enquire_link")
                next_link = now + o.enquire_link_interval
            self._pump()
            await self._flush()
            deadlines = [t for t in (next_link,) if t is not None]
            if self._timers:
                deadlines.append(self._timers[0][0])
            if o.receipt_resend_after and self._sent_at:
                deadlines.append(min(v[0] for v in self._sent_at.values()) + o.receipt_resend_after)
            self._wake = trio.Event()
            with trio.move_on_at(min(deadlines) if deadlines else float("inf")):
                await self._wake.wait()

    def _resend_unacked(self, now: float) -> None:
        o = self.smsc.options
        for seq, (at, pdu, tries) in list(self._sent_at.items()):
            if now - at >= o.receipt_resend_after:
                self.session.expire(seq)
                del self._sent_at[seq]
                if tries < o.receipt_resend_max and self.can_receive:
                    sent = self.session.send(pdu) if self.session.window_free else None
                    if sent is not None:
                        self._sent_at[sent.sequence] = (now, pdu, tries + 1)
                        self.smsc.counters.add("receipts_resent")

    def take_unacked(self) -> list[p.DeliverSm]:
        """Receipts this (dead) connection never had acknowledged, for another receiver."""
        pending = [pdu for _, pdu, _ in self._sent_at.values()] + self._waiting
        self._sent_at.clear()
        self._waiting = []
        return [pdu for pdu in pending if pdu.esm_class & 0x3C]

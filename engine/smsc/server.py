"""The SMSC simulator: binds, submit_sm answers, receipts, throttling, MO, recording.

One :class:`Smsc` owns the listener and the shared state (accounts, message
ids, receipt routing, counters); one :class:`Connection` per client owns its
nursery: a reader that drives the sans-IO session and a timer task for what
is due later (receipts, delayed responses, re-sent receipts, enquire_link, MO).
Writes are coalesced: everything a read produced goes out in one send. All
times come from trio's clock and all randomness from one seeded Random.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import socket
import ssl
import time
from datetime import datetime
from functools import partial
from typing import IO, Any

import trio

from engine.smpp import constants as c
from engine.smpp import pdu as p
from engine.smpp.encoding import decode_text, split
from engine.smpp.session import (
    ProtocolViolation,
    RequestReceived,
    ResponseReceived,
    Role,
    Session,
    State,
)
from engine.smsc.options import Options

READ_SIZE = 256 * 1024
_BIND_RESP_STATUS_OK = 0
_STAT_STATE = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}


class Counters:
    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(
            (
                "binds",
                "bind_refused",
                "submit_sm",
                "submit_ok",
                "submit_error",
                "throttled",
                "data_sm",
                "receipts_sent",
                "receipts_acked",
                "receipts_resent",
                "mo_sent",
                "malformed",
                "enquire_link",
                "connections",
                "dropped_slow",
                "max_delayed_responses",
            ),
            0,
        )

    def __getitem__(self, key: str) -> int:
        return self.values[key]

    def add(self, key: str, n: int = 1) -> None:
        self.values[key] += n


class _Throttle:
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


class Smsc:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.counters = Counters()
        self.rng = random.Random(options.seed)
        self.connections: set[Connection] = set()
        self.port = 0
        self._ids = itertools.count(1)
        self._account_throttles: dict[str, _Throttle] = {}
        self._held: dict[str, list[p.DeliverSm]] = {}
        self._record: IO[str] | None = None
        self._dead = frozenset(n.removeprefix("+") for n in options.dead_numbers)
        self._failing = (
            options.undeliv_fraction + options.expired_fraction + options.rejected_fraction
        )
        self._stamp_at, self._stamp = 0, ""
        self._tls: ssl.SSLContext | None = None
        if options.tls_cert:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(options.tls_cert, options.tls_key or None)

    # -- lifetime ----------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        if self.options.record:
            self._record = open(self.options.record, "a", encoding="utf-8")  # noqa: SIM115, ASYNC230
        try:
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(
                    partial(trio.serve_tcp, self._handle, self.options.port, host=self.options.host)
                )
                self.port = listeners[0].socket.getsockname()[1]
                if self.options.stats_interval:
                    nursery.start_soon(self._print_stats)
                if self.options.mo_rate and self.options.mo_from:
                    nursery.start_soon(self._mo_loop)
                task_status.started(self.port)
        finally:
            if self._record:
                self._record.close()

    async def _handle(self, tcp: trio.SocketStream) -> None:
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream: trio.abc.Stream = tcp
        if self._tls is not None:
            stream = trio.SSLStream(tcp, self._tls, server_side=True)
        conn = Connection(self, stream)
        self.connections.add(conn)
        self.counters.add("connections")
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            for receipt in conn.take_unacked():
                self.route_receipt(conn, receipt)

    async def _print_stats(self) -> None:
        while True:
            await trio.sleep(self.options.stats_interval)
            print(json.dumps(self.counters.values), flush=True)

    async def _mo_loop(self) -> None:
        while True:
            await trio.sleep(1.0 / self.options.mo_rate)
            await self.send_mo(self.options.mo_from, self.options.mo_text, self.options.mo_to)

    # -- shared decisions --------------------------------------------------

    def check_bind(self, bind: p.Pdu) -> int:
        accounts = self.options.accounts
        if accounts:
            if bind.system_id not in accounts:
                return c.ESME_RINVSYSID
            if accounts[bind.system_id] != bind.password:
                return c.ESME_RINVPASWD
        bound = sum(1 for conn in self.connections if conn.bound)
        if self.options.max_binds and bound >= self.options.max_binds:
            return c.ESME_RBINDFAIL
        return 0

    def next_message_id(self) -> tuple[str, str]:
        """(id for submit_sm_resp, id written in the receipt)."""
        n = next(self._ids) + 0x10000
        hexed, dec = format(n, "x"), str(n)
        resp = hexed if self.options.message_id_form == "hex" else dec
        if self.options.receipt_id_form == "other":
            return resp, dec if resp == hexed else hexed
        return resp, resp

    def throttle_allows(self, conn: Connection, now: float) -> bool:
        limit = self.options.throttle_tps
        if not limit:
            return True
        if self.options.throttle_scope == "account":
            t = self._account_throttles.setdefault(conn.system_id, _Throttle(limit))
        else:
            t = conn.throttle
        return t.allow(now)

    def stamp(self) -> str:
        """Appendix B's YYMMDDhhmm for now, formatted once a second."""
        now = int(time.time())
        if now != self._stamp_at:
            self._stamp_at, self._stamp = now, datetime.now().strftime("%y%m%d%H%M")
        return self._stamp

    def outcome(self, destination: str) -> tuple[str, int]:
        o = self.options
        if self._dead and destination in self._dead:
            return "UNDELIV", o.dead_err
        if not self._failing:
            return "DELIVRD", 0
        r = self.rng.random()
        for stat, fraction, err in (
            ("UNDELIV", o.undeliv_fraction, o.undeliv_err),
            ("EXPIRED", o.expired_fraction, o.expired_err),
            ("REJECTD", o.rejected_fraction, o.rejected_err),
        ):
            if r < fraction:
                return stat, err
            r -= fraction
        return "DELIVRD", 0

    def record(self, pdu: p.SubmitSm | p.DataSm, conn: Connection) -> None:
        if self._record is None:
            return
        sm = getattr(pdu, "short_message", b"") or pdu.message_payload or b""
        body = sm[1 + sm[0] :] if pdu.esm_class & 0x40 and sm else sm
        entry = {
            "time": time.time(),
            "system_id": conn.system_id,
            "command": "submit_sm" if isinstance(pdu, p.SubmitSm) else "data_sm",
            "source_addr_ton": pdu.source_addr_ton,
            "source_addr_npi": pdu.source_addr_npi,
            "source_addr": pdu.source_addr,
            "dest_addr_ton": pdu.dest_addr_ton,
            "dest_addr_npi": pdu.dest_addr_npi,
            "destination_addr": pdu.destination_addr,
            "data_coding": pdu.data_coding,
            "esm_class": pdu.esm_class,
            "registered_delivery": pdu.registered_delivery,
            "validity_period": getattr(pdu, "validity_period", ""),
            "short_message": sm.hex(),
            "text": decode_text(body, pdu.data_coding),
            "tlvs": _tlv_dict(pdu),
        }
        self._record.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._record.flush()

    def route_receipt(self, origin: Connection, receipt: p.DeliverSm) -> None:
        """Deliver on the origin if it can receive, else on a receiver of the same system_id."""
        alive = origin.can_receive and origin in self.connections
        target = origin if alive else self.receiver_for(origin.system_id)
        if target is None:
            held = self._held.setdefault(origin.system_id, [])
            if len(held) < 100_000:
                held.append(receipt)
            return
        target.queue_deliver(receipt)

    def receiver_for(self, system_id: str) -> Connection | None:
        for conn in self.connections:
            if conn.can_receive and conn.system_id == system_id:
                return conn
        return None

    def bound(self, conn: Connection) -> None:
        if conn.can_receive:
            for receipt in self._held.pop(conn.system_id, []):
                conn.queue_deliver(receipt)

    async def send_mo(self, source: str, text: str, destination: str = "") -> int:
        """A mobile-originated deliver_sm to every bound receiver; returns how many got it."""
        sent = 0
        for conn in list(self.connections):
            if conn.can_receive:
                for part in split(text, max_parts=255):
                    conn.queue_deliver(
                        p.DeliverSm(
                            source_addr_ton=1,
                            source_addr_npi=1,
                            source_addr=source.removeprefix("+"),
                            destination_addr=destination or conn.system_id,
                            esm_class=part.esm_class,
                            data_coding=part.data_coding,
                            short_message=part.short_message,
                        )
                    )
                sent += 1
                self.counters.add("mo_sent")
        return sent


def _tlv_dict(pdu: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (
        "user_message_reference",
        "sar_msg_ref_num",
        "sar_total_segments",
        "sar_segment_seqnum",
    ):
        value = getattr(pdu, name)
        if value is not None:
            out[name] = value
    if pdu.message_payload is not None:
        out["message_payload"] = pdu.message_payload.hex()
    for tag, value in pdu.tlvs:
        out[f"0x{tag:04x}"] = value.hex()
    return out


class Connection:
    def __init__(self, smsc: Smsc, stream: trio.abc.Stream) -> None:
        self.smsc = smsc
        self.stream = stream
        self.session = Session(
            Role.SMSC, window=smsc.options.receipt_window, max_length=smsc.options.max_pdu_length
        )
        self.system_id = ""
        self.throttle = _Throttle(smsc.options.throttle_tps)
        self._timers: list[tuple[float, int, str, Any]] = []
        self._tick = itertools.count()
        self._wake = trio.Event()
        self._waiting: list[p.DeliverSm] = []
        self._sent_at: dict[int, tuple[float, p.DeliverSm, int]] = {}
        self._write_lock = trio.Lock()
        self._last_rx = 0.0
        self._delayed = 0

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
            for ev in session.receive_data(data):
                if isinstance(ev, RequestReceived):
                    self._request(ev.pdu)
                elif isinstance(ev, ResponseReceived):
                    self._response(ev.request, ev.response)
                elif isinstance(ev, ProtocolViolation):
                    self.smsc.counters.add("malformed")
            self._pump()
            await self._flush()
            if session.state is State.CLOSED:
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

    def _submit(self, req: p.SubmitSm | p.DataSm) -> None:
        smsc, counters = self.smsc, self.smsc.counters
        counters.add("submit_sm" if isinstance(req, p.SubmitSm) else "data_sm")
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
        self._answer(req, 0, resp_id)
        if req.registered_delivery & 0x03 and smsc.options.receipts:
            self._schedule_receipt(req, receipt_id, now)

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
        data = self.session.data_to_send()
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

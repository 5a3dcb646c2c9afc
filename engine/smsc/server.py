"""The SMSC simulator: binds, submit_sm answers, receipts, throttling, MO, recording.

One :class:`Smsc` owns the listener and the shared state (accounts, message
ids, receipt routing, counters); one :class:`~engine.smsc.connection.Connection`
per client (its own module) owns that client's session and tasks. All times
come from trio's clock and all randomness from one seeded Random.
"""

from __future__ import annotations

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
from engine.smsc.connection import Connection, Throttle
from engine.smsc.faults import Faults
from engine.smsc.options import Options


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
                "nacks_received",
            ),
            0,
        )

    def __getitem__(self, key: str) -> int:
        return self.values[key]

    def add(self, key: str, n: int = 1) -> None:
        self.values[key] += n


class Smsc:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.counters = Counters()
        self.rng = random.Random(options.seed)
        self.connections: set[Connection] = set()
        self.port = 0
        self._ids = itertools.count(1)
        self._account_throttles: dict[str, Throttle] = {}
        self._held: dict[str, list[p.DeliverSm]] = {}
        self._record: IO[str] | None = None
        self._dead = frozenset(n.removeprefix("+") for n in options.dead_numbers)
        self._failing = (
            options.undeliv_fraction + options.expired_fraction + options.rejected_fraction
        )
        self._stamp_at, self._stamp = 0, ""
        self.faults = Faults(options.faults, options.fault_every)
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
            t = self._account_throttles.setdefault(conn.system_id, Throttle(limit))
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

    def mo_pdu(self, source: str) -> p.DeliverSm:
        """A one-part MO of --mo-text from ``source``."""
        (part,) = split(self.options.mo_text, max_parts=1)
        return p.DeliverSm(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr=source.removeprefix("+"),
            destination_addr=self.options.mo_to or "volley",
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            short_message=part.short_message,
        )

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

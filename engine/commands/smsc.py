"""The SMSC simulator: an SMPP 3.4 server for tests, demos and benchmarks.

Accepts transmitter, receiver and transceiver binds; answers submit_sm and
data_sm with message ids; sends delivery receipts (Appendix B text plus the
receipted_message_id, message_state and network_error_code TLVs) with
configurable delay, jitter and failure fractions; throttles, injects errors,
delays responses, sends enquire_link and mobile-originated messages; records
every submit_sm as JSON Lines. Counters go to stdout as JSON on exit (and every
--stats-interval seconds). Stop with SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    a("--port", type=int, default=2775, help="port to listen on; 0 picks a free one (default 2775)")
    a(
        "--account",
        action="append",
        default=[],
        metavar="ID:PASSWORD",
        help="an accepted system_id and password (repeatable); none = accept any "
        "credentials; a wrong system_id gets 0x0F, a wrong password 0x0E",
    )
    a("--max-binds", type=int, default=0, help="refuse binds beyond this many (0x0D); 0 = no limit")
    a(
        "--id-form",
        choices=["hex", "decimal"],
        default="hex",
        help="message ids in submit_sm_resp (default hex)",
    )
    a(
        "--receipt-id-form",
        choices=["same", "other"],
        default="same",
        help="write the receipt id (text and TLV) in the other form, as some SMSCs do",
    )
    a("--no-receipts", action="store_true", help="never send delivery receipts")
    a("--receipt-delay", type=float, default=0.0, metavar="S", help="seconds before a receipt")
    a(
        "--receipt-jitter",
        type=float,
        default=0.0,
        metavar="S",
        help="up to this many more seconds, uniformly at random",
    )
    a("--undeliv", type=float, default=0.0, metavar="FRACTION", help="fraction of UNDELIV receipts")
    a("--expired", type=float, default=0.0, metavar="FRACTION", help="fraction of EXPIRED receipts")
    a(
        "--rejected",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of REJECTD receipts",
    )
    a(
        "--undeliv-err",
        type=int,
        default=1,
        help="err: of UNDELIV receipts (default 1, unknown subscriber)",
    )
    a(
        "--expired-err",
        type=int,
        default=27,
        help="err: of EXPIRED receipts (default 27, absent subscriber)",
    )
    a("--rejected-err", type=int, default=11, help="err: of REJECTD receipts (default 11)")
    a(
        "--dead-numbers",
        metavar="FILE",
        help="numbers that are always UNDELIV (one per line, with or without +)",
    )
    a("--dead-err", type=int, default=1, help="err: for dead numbers (default 1)")
    a(
        "--receipt-window",
        type=int,
        default=1000,
        help="receipts outstanding (unacknowledged) per session at most (default 1000)",
    )
    a(
        "--resend-after",
        type=float,
        default=0.0,
        metavar="S",
        help="re-send a receipt not acknowledged within S seconds (store and forward); 0 = never",
    )
    a("--resend-max", type=int, default=3, help="re-send a receipt at most this many times")
    a("--throttle", type=int, default=0, metavar="N", help="answer 0x58 above N submits per second")
    a(
        "--throttle-scope",
        choices=["session", "account"],
        default="session",
        help="count --throttle per session or per system_id (default session)",
    )
    a(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="answer this fraction of submits with --error-status",
    )
    a(
        "--error-status",
        type=lambda s: int(s, 0),
        default=0x14,
        help="command_status for --error-rate (default 0x14 ESME_RMSGQFUL)",
    )
    a("--response-delay", type=float, default=0.0, metavar="S", help="delay every submit_sm_resp")
    a(
        "--enquire-link",
        type=float,
        default=0.0,
        metavar="S",
        help="send enquire_link every S seconds; 0 = never",
    )
    a(
        "--mo-from",
        default="",
        metavar="NUMBER",
        help="send mobile-originated deliver_sm from NUMBER",
    )
    a("--mo-to", default="", help="destination_addr of MO messages (default: the system_id)")
    a("--mo-text", default="STOP", help="text of MO messages (default STOP)")
    a("--mo-rate", type=float, default=0.0, metavar="PER_S", help="MO messages per second")
    a("--record", metavar="FILE.jsonl", help="append every received submit_sm as JSON Lines")
    a("--tls-cert", metavar="CERT.pem", help="serve SMPP over TLS with this certificate chain")
    a("--tls-key", metavar="KEY.pem", help="the certificate's private key (default: in CERT.pem)")
    a(
        "--stats-interval",
        type=float,
        default=0.0,
        metavar="S",
        help="print the counters as JSON every S seconds",
    )
    a("--seed", type=int, help="seed for every random choice")
    from engine.smsc.faults import FAULTS

    a(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        metavar="NAME",
        help="misbehave on purpose (repeatable): "
        + "; ".join(f"{name}: {what}" for name, what in FAULTS.items()),
    )
    a(
        "--fault-every",
        type=int,
        default=10,
        metavar="N",
        help="each fault strikes every Nth time its event comes (default 10)",
    )


def options_from(args: argparse.Namespace):
    from engine.cli import UsageError
    from engine.smsc.options import Options

    accounts = {}
    for item in args.account:
        sid, sep, pw = item.partition(":")
        if not sep or not sid:
            raise UsageError(f"--account: expected ID:PASSWORD, got {item!r}")
        accounts[sid] = pw
    for name in ("undeliv", "expired", "rejected", "error_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError(f"--{name.replace('_', '-')}: expected a fraction between 0 and 1")
    if args.fault_every < 1:
        raise UsageError("--fault-every: expected an integer >= 1")
    if args.undeliv + args.expired + args.rejected > 1.0:
        raise UsageError("--undeliv + --expired + --rejected: must not exceed 1")
    dead: frozenset[str] = frozenset()
    if args.dead_numbers:
        try:
            lines = Path(args.dead_numbers).read_text(encoding="utf-8").split()
        except OSError as exc:
            raise UsageError(f"--dead-numbers: {exc}") from None
        dead = frozenset(n.removeprefix("+") for n in lines if not n.startswith("#"))
    return Options(
        host=args.host,
        port=args.port,
        accounts=accounts,
        max_binds=args.max_binds,
        message_id_form=args.id_form,
        receipt_id_form=args.receipt_id_form,
        receipts=not args.no_receipts,
        receipt_delay=args.receipt_delay,
        receipt_jitter=args.receipt_jitter,
        undeliv_fraction=args.undeliv,
        expired_fraction=args.expired,
        rejected_fraction=args.rejected,
        undeliv_err=args.undeliv_err,
        expired_err=args.expired_err,
        rejected_err=args.rejected_err,
        dead_numbers=dead,
        dead_err=args.dead_err,
        receipt_window=args.receipt_window,
        receipt_resend_after=args.resend_after,
        receipt_resend_max=args.resend_max,
        throttle_tps=args.throttle,
        throttle_scope=args.throttle_scope,
        error_rate=args.error_rate,
        error_status=args.error_status,
        response_delay=args.response_delay,
        enquire_link_interval=args.enquire_link,
        mo_from=args.mo_from,
        mo_to=args.mo_to,
        mo_text=args.mo_text,
        mo_rate=args.mo_rate,
        record=args.record or "",
        tls_cert=args.tls_cert or "",
        tls_key=args.tls_key or "",
        stats_interval=args.stats_interval,
        seed=args.seed,
        faults=frozenset(args.fault),
        fault_every=args.fault_every,
    )


def main(args: argparse.Namespace) -> int:
    import trio

    from engine.smsc.server import Smsc

    smsc = Smsc(options_from(args))

    async def amain() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(smsc.serve)
                print(f"volley smsc listening on {args.host}:{port}", file=sys.stderr, flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(amain)
    except OSError as exc:
        print(f"volley smsc: {exc}", file=sys.stderr)
        return 1
    finally:
        print(json.dumps(smsc.counters.values), flush=True)
    return 0

"""The simulator's options, one Struct built from the command line or by tests."""

from __future__ import annotations

from typing import Literal

import msgspec


class Options(msgspec.Struct, kw_only=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 2775
    accounts: dict[str, str] = {}
    max_binds: int = 0
    message_id_form: Literal["hex", "decimal"] = "hex"
    receipt_id_form: Literal["same", "other"] = "same"
    receipts: bool = True
    receipt_delay: float = 0.0
    receipt_jitter: float = 0.0
    undeliv_fraction: float = 0.0
    expired_fraction: float = 0.0
    rejected_fraction: float = 0.0
    undeliv_err: int = 1
    expired_err: int = 27
    rejected_err: int = 11
    dead_numbers: frozenset[str] = frozenset()
    dead_err: int = 1
    receipt_window: int = 1000
    receipt_resend_after: float = 0.0
    receipt_resend_max: int = 3
    throttle_tps: int = 0
    throttle_scope: Literal["session", "account"] = "session"
    error_rate: float = 0.0
    error_status: int = 0x14
    response_delay: float = 0.0
    enquire_link_interval: float = 0.0
    mo_from: str = ""
    mo_to: str = ""
    mo_text: str = "STOP"
    mo_rate: float = 0.0
    record: str = ""
    tls_cert: str = ""  # PEM certificate chain: serve SMPP over TLS
    tls_key: str = ""  # its private key (default: in the certificate file)
    stats_interval: float = 0.0
    seed: int | None = None
    max_send_buffer: int = 4 * 1024 * 1024
    send_timeout: float = 10.0
    max_pdu_length: int = 65536
    faults: frozenset[str] = frozenset()  # engine/smsc/faults.py: misbehaviour on purpose
    fault_every: int = 10

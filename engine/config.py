"""engine.toml: the typed configuration, validated at load with msgspec.

Every section is a frozen Struct that forbids unknown keys, so a typo is an
error naming the key. msgspec's JSON-path errors are rewritten into TOML words
with the file name (``engine.toml: operators[0].window: expected an integer >= 1``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta

from engine import optout
from engine.sched.pacing import MAX_TPS

PosInt = Annotated[int, Meta(ge=1)]
NonNegInt = Annotated[int, Meta(ge=0)]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Duration = Annotated[str, Meta(pattern=r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Size = Annotated[str, Meta(pattern=r"^\s*\d+\s*(B|KB|MB|GB)\s*$")]


class Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class StoreConfig(Base, frozen=True):
    path: str = "var/volley.lmdb"
    on_crash_inflight: Literal["resend", "hold"] = "resend"
    map_size_mb: PosInt = 256
    max_map_size_mb: PosInt = 65536
    retention: Duration = "30d"
    sync: bool = True


class ControlConfig(Base, frozen=True):
    socket: str = "var/volley.sock"


class HttpConfig(Base, frozen=True):
    """`volley serve`: the API and /metrics (private: bind it to a private address)."""

    listen: str = "127.0.0.1:8080"  # host:port, [v6 address]:port, or unix:PATH
    token_env: str = "VOLLEY_API_TOKEN"  # the environment variable holding the bearer token
    max_body: Size = "64MB"  # largest request body (B, KB, MB, GB; 1 MB = 1,048,576 bytes)
    graceful_timeout: Duration = "30s"  # requests under way at a stop get this long to finish


class LinksConfig(Base, frozen=True):
    """Tracked short links (`volley serve`'s public redirects) and reply attribution."""

    base: str = ""  # the public prefix, e.g. "https://s.example/"; "": links not tracked
    listen: str = "127.0.0.1:8081"  # where `volley serve` answers GET /<code>
    code_length: Annotated[int, Meta(ge=5, le=32)] = 7  # base62 characters of a code
    reply_window: Duration = "7d"  # an MO this soon after a campaign's step answers it
    # processes answering the links (one listening socket shared): one per core beyond one
    processes: Annotated[int, Meta(ge=1, le=32)] = 1


class WebhooksConfig(Base, frozen=True):
    """Receipts, inbound messages and final states POSTed to ``url`` from the store's outbox
    (engine/store/outbox.py; `volley serve` delivers them: engine/webhooks.py)."""

    url: str = ""  # "": no webhooks (nothing is written to the outbox)
    secret_env: str = "VOLLEY_WEBHOOK_SECRET"  # the variable holding the HMAC secret
    events: list[Literal["receipt", "mo", "final"]] = msgspec.field(
        default_factory=lambda: ["receipt", "mo", "final"]
    )
    retry_for: Duration = "24h"  # then an event is dead-lettered
    timeout: Duration = "10s"  # per request
    max_in_flight: Annotated[int, Meta(ge=1, le=256)] = 8  # requests under way at once


class LogConfig(Base, frozen=True):
    """Logs of `volley run` and `volley serve`: stderr, or a file rotated by size."""

    file: str = ""  # empty: stderr
    max_mb: PosInt = 100  # rotate when the file reaches this size
    keep: NonNegInt = 5  # rotated files kept (FILE.1 ... FILE.keep)
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = False  # one JSON object per line


class EngineConfig(Base, frozen=True):
    # engine processes sharing the store, each with its share of every operator's binds;
    # "auto": as many as the configured TPS needs (engine_processes), one per core at most
    processes: Annotated[int, Meta(ge=1, le=64)] | Literal["auto"] = "auto"


PROCESS_TPS = 10_000  # what one engine process moves here, submits and receipts: "auto"'s unit


def engine_processes(cfg: Config) -> int:
    """How many engine processes ``volley run`` starts: ``[engine] processes``, or for
    "auto" one per PROCESS_TPS of the operators' summed TPS, at most one per core and no
    more than the fewest binds any operator has (each process holds one at least)."""
    wanted = cfg.engine.processes
    if wanted != "auto":
        return wanted
    if not cfg.operators:
        return 1
    need = math.ceil(sum(op.tps for op in cfg.operators) / PROCESS_TPS)
    cores = len(os.sched_getaffinity(0))
    return max(1, min(need, cores, min(op.binds for op in cfg.operators)))


class DefaultsConfig(Base, frozen=True):
    sender: str = "Volley"
    region: str = "RU"
    timezone: str = "Europe/Moscow"
    receipt_timeout: Duration = "48h"
    max_parts: Annotated[int, Meta(ge=1, le=255)] = 6
    zone_table: str = ""
    # the Russian number-range table (volley zones import); "": the store's, else the seed
    zone_ranges: str = ""


class SourceRule(Base, frozen=True):
    """How to set source_addr TON/NPI for a sender of a given shape."""

    kind: Literal["alphanumeric", "shortcode", "international", "national"]
    ton: NonNegInt
    npi: NonNegInt


class OperatorConfig(Base, frozen=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f#]+$")]
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 2775
    system_id: str = "volley"
    password: str = ""
    password_env: str = ""
    system_type: str = ""
    tls: bool = False
    tls_ca: str = ""  # PEM file of the CA(s) to trust for this SMSC; default: the system's
    bind: Literal["transceiver", "transmitter"] = "transceiver"
    binds: PosInt = 1
    window: PosInt = 64
    tps: Annotated[float, Meta(gt=0, le=MAX_TPS)] = 100.0  # submit_sm per second
    prefixes: list[str] = []
    failover: list[str] = []
    address_range: str = ""
    source_rules: list[SourceRule] = []
    data_coding: Literal["auto", "gsm", "latin1", "ucs2", "ia5"] = "auto"
    gsm_data_coding: NonNegInt = 0
    concatenation: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    receipt_id_form: Literal["auto", "hex", "decimal"] = "auto"
    registered_delivery: bool = True
    connect_timeout: Duration = "10s"
    response_timeout: Duration = "30s"
    enquire_link_interval: Duration = "30s"
    reconnect_min: Duration = "1s"
    reconnect_max: Duration = "60s"
    max_retries: NonNegInt = 5
    paused: bool = False
    # message kind -> a [windows.NAME] this operator also requires (the stricter wins)
    send_windows: dict[str, str] = {}
    hard_errors: list[int] | None = None  # this operator's err: codes; default [prune]
    soft_errors: list[int] | None = None
    # what one SMS part costs on this route (your billing currency): segment dry runs
    # and reports show the cost in money as well as in parts
    price_per_part: Annotated[float, Meta(ge=0)] | None = None


class WindowOverride(Base, frozen=True):
    """A narrower window for some destinations (prefixes, e.g. a US state's area codes)."""

    prefixes: list[str]
    days: list[Weekday] = msgspec.field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    hours: str | list[str] = "00:00-24:00"  # checked by _check_windows
    hours_by_day: dict[Weekday, str | list[str]] = {}
    closed_dates: list[str] = []
    open_dates: list[str] = []


class WindowConfig(Base, frozen=True):
    days: list[Weekday] = msgspec.field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    hours: str | list[str] = "00:00-24:00"  # checked by _check_windows
    hours_by_day: dict[Weekday, str | list[str]] = {}  # e.g. {sun = "12:00-21:00"}
    closed_dates: list[str] = []
    open_dates: list[str] = []
    zone: str = "recipient"  # or a fixed IANA zone for every recipient
    overrides: list[WindowOverride] = []
    validity_margin: Duration = "15m"  # the SMSC's retries end this long before closing


class CapConfig(Base, frozen=True):
    max: PosInt
    period: Duration


HARD_ERRORS = [
    1,
    5,
    9,
    11,
    44,
]  # MAP: unknown/unidentified/illegal subscriber, not provisioned, moved
SOFT_ERRORS = [6, 13, 27, 31, 32, 34]  # absent, barred, absent, busy, memory full, system failure


class PruneConfig(Base, frozen=True):
    after_failures: PosInt = 2
    soft_failures: PosInt = 5
    soft_span: Duration = "7d"
    prune_ttl: Duration = "180d"
    history: PosInt = 10
    hard_errors: list[int] = msgspec.field(default_factory=lambda: list(HARD_ERRORS))
    soft_errors: list[int] = msgspec.field(default_factory=lambda: list(SOFT_ERRORS))


class StopConfig(Base, frozen=True):
    """Inbound opt-outs (engine/optout.py): a keyword or phrase, with polite words around."""

    keywords: list[str] = msgspec.field(default_factory=lambda: list(optout.KEYWORDS))
    phrases: list[str] = msgspec.field(default_factory=lambda: list(optout.PHRASES))
    polite: list[str] = msgspec.field(default_factory=lambda: list(optout.POLITE))
    transactional_exempt: bool = False


class Config(Base, frozen=True):
    store: StoreConfig = StoreConfig()
    control: ControlConfig = ControlConfig()
    http: HttpConfig = HttpConfig()
    links: LinksConfig = LinksConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    log: LogConfig = LogConfig()
    engine: EngineConfig = EngineConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    operators: list[OperatorConfig] = []
    windows: dict[str, WindowConfig] = {}
    caps: dict[str, list[CapConfig] | CapConfig] = {}
    prune: PruneConfig = PruneConfig()
    stop: StopConfig = StopConfig()
    base_dir: str = ""

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() or not self.base_dir else Path(self.base_dir) / p


T = TypeVar("T")


class ConfigError(Exception):
    """An invalid engine.toml; the message names the file and the key."""


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0, "": 1.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def seconds(duration: str) -> float:
    """'48h' -> 172800.0; a bare number is seconds."""
    m = _DURATION.match(duration)
    if not m:
        raise ValueError(f"not a duration: {duration!r} (expected e.g. 30s, 5m, 48h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)\s*$")
_SIZE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def size_bytes(size: str) -> int:
    """'64MB' -> 67108864 (binary units: 1 KB = 1024 bytes)."""
    m = _SIZE.match(size)
    if not m:
        raise ValueError(f"not a size: {size!r} (expected e.g. 512KB, 64MB, 1GB)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


_PATH = re.compile(r" - at `\$(.*)`$")


def _toml_words(message: str) -> str:
    """Rewrite msgspec's JSON words into TOML ones, key path first."""
    m = _PATH.search(message)
    key = ""
    if m:
        key = m.group(1).lstrip(".")
        message = message[: m.start()]
    message = (
        message.replace("`object`", "a table")
        .replace("`array`", "a list")
        .replace("`str`", "a string")
        .replace("`int`", "an integer")
        .replace("`float`", "a number")
        .replace("`bool`", "true or false")
    )
    if message.startswith("Object contains unknown field "):
        field = message.removeprefix("Object contains unknown field ").strip("`")
        where = f"{key}." if key else ""
        return f"{where}{field}: unknown key"
    if message.startswith("Object missing required field "):
        field = message.removeprefix("Object missing required field ").strip("`")
        where = f"{key}." if key else ""
        return f"{where}{field}: required key missing"
    if "matching regex" in message and "(ms|s|m|h|d)" in message:
        message = "expected a duration such as 500ms, 30s, 5m, 48h or 7d"
    if "matching regex" in message and "(B|KB|MB|GB)" in message:
        message = "expected a size such as 512KB, 64MB or 1GB"
    return f"{key or '(top level)'}: {message[0].lower()}{message[1:]}"


MAX_PASSWORD = 8  # octets: SMPP 3.4 password is a C-Octet String of at most 9 with its NUL


def resolve_password(op: OperatorConfig, environ: Mapping[str, str]) -> str:
    """The operator's bind password: ``password_env``'s value if set in the config, else
    ``password``. An unset variable or a value over 8 octets is a ConfigError naming the
    key; the value itself is never shown."""
    if op.password_env:
        value = environ.get(op.password_env)
        if value is None:
            raise ConfigError(
                f"operators {op.name!r}: password_env: the variable {op.password_env} is not set"
            )
        key = f"password_env ({op.password_env})"
    else:
        value, key = op.password, "password"
    if len(value.encode()) > MAX_PASSWORD:
        raise ConfigError(
            f"operators {op.name!r}: {key}: longer than {MAX_PASSWORD} octets "
            "(the SMPP 3.4 limit; the value is not shown)"
        )
    return value


def _check_semantics(cfg: Config) -> None:
    names = [op.name for op in cfg.operators]
    processes = cfg.engine.processes if cfg.engine.processes != "auto" else 1
    for i, op in enumerate(cfg.operators):
        if len(op.password.encode()) > MAX_PASSWORD:
            raise ConfigError(
                f"operators[{i}].password: longer than {MAX_PASSWORD} octets "
                "(the SMPP 3.4 limit; the value is not shown)"
            )
        if names.count(op.name) > 1:
            raise ConfigError(f"operators[{i}].name: duplicate operator name {op.name!r}")
        if op.binds < processes:
            raise ConfigError(
                f"operators[{i}].binds: {op.binds} is fewer than engine.processes = {processes} "
                "(every engine process holds at least one bind of every operator)"
            )
        for j, other in enumerate(op.failover):
            if other not in names:
                raise ConfigError(
                    f"operators[{i}].failover[{j}]: no operator named {other!r} "
                    f"(expected one of {names})"
                )
        for kind, name in op.send_windows.items():
            if name not in cfg.windows:
                raise ConfigError(
                    f"operators[{i}].send_windows.{kind}: no [windows.{name}] table "
                    f"(expected one of {sorted(cfg.windows)})"
                )
    _check_windows(cfg)
    try:
        listen_address(cfg.http.listen)
    except ValueError as exc:
        raise ConfigError(f"http.listen: {exc}") from None
    _check_links(cfg.links)
    _check_webhooks(cfg.webhooks)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.defaults.timezone)
    except Exception as exc:
        raise ConfigError(
            f"defaults.timezone: unknown time zone {cfg.defaults.timezone!r} "
            "(expected an IANA name such as Europe/Moscow)"
        ) from exc


def _check_links(links: LinksConfig) -> None:
    from urllib.parse import urlsplit

    try:
        listen_address(links.listen)
    except ValueError as exc:
        raise ConfigError(f"links.listen: {exc}") from None
    if not links.base:
        return
    parts = urlsplit(links.base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"links.base: {links.base!r}: expected the public prefix of the short links, "
            'an http(s) URL such as "https://s.example/"'
        )
    if not links.base.endswith("/"):
        raise ConfigError(f"links.base: {links.base!r}: must end with / (the code follows it)")
    if any(c.isspace() for c in links.base):
        raise ConfigError(f"links.base: {links.base!r}: no spaces")


def _check_webhooks(hooks: WebhooksConfig) -> None:
    from urllib.parse import urlsplit

    if not hooks.url:
        return
    parts = urlsplit(hooks.url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c.isspace() for c in hooks.url)
    ):
        raise ConfigError(f"webhooks.url: {hooks.url!r}: expected an http(s) URL")
    if not hooks.events:
        raise ConfigError('webhooks.events: empty (expected some of "receipt", "mo", "final")')
    if not hooks.secret_env:
        raise ConfigError("webhooks.secret_env: empty (the variable holding the HMAC secret)")
    for key in ("retry_for", "timeout"):
        if seconds(getattr(hooks, key)) <= 0:
            raise ConfigError(f"webhooks.{key}: must be longer than 0")


def listen_address(text: str) -> tuple[str, int] | str:
    """``host:port`` (an IPv6 address in brackets) as (host, port); ``unix:PATH`` as PATH."""
    if text.startswith("unix:"):
        if not text[5:]:
            raise ValueError(f"{text!r}: expected unix:PATH")
        return text[5:]
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: expected HOST:PORT (e.g. 127.0.0.1:8080) or unix:PATH")
    return host, int(port)


def _check_windows(cfg: Config) -> None:
    from datetime import date
    from zoneinfo import ZoneInfo

    from engine.sched.windows import parse_range

    for kind, w in cfg.windows.items():
        for where, item in [(f"windows.{kind}", w)] + [
            (f"windows.{kind}.overrides[{i}]", o) for i, o in enumerate(w.overrides)
        ]:
            hours = [("hours", item.hours)] + [
                (f"hours_by_day.{day}", h) for day, h in item.hours_by_day.items()
            ]
            for key, value in hours:
                for h in [value] if isinstance(value, str) else value:
                    try:
                        parse_range(h)
                    except ValueError as exc:
                        raise ConfigError(f"{where}.{key}: {exc}") from None
            for key in ("closed_dates", "open_dates"):
                for d in getattr(item, key):
                    try:
                        date.fromisoformat(d)
                    except ValueError:
                        raise ConfigError(
                            f"{where}.{key}: {d!r}: expected a date like 2026-12-31"
                        ) from None
        if w.zone != "recipient":
            try:
                ZoneInfo(w.zone)
            except Exception:
                raise ConfigError(
                    f'windows.{kind}.zone: {w.zone!r}: expected "recipient" or an IANA zone'
                ) from None


def decode_toml(
    data: bytes | str, type_: type[T], source: str, error: type[ConfigError] = ConfigError
) -> T:
    """A TOML document as ``type_``; ``error`` names the source and the key in TOML words."""
    try:
        return msgspec.toml.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        raise error(f"{source}: {_toml_words(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from None


def parse(data: bytes | str, *, source: str = "engine.toml", base_dir: str = "") -> Config:
    """Decode and validate a config document; errors name the source and key."""
    cfg = decode_toml(data, Config, source)
    try:
        _check_semantics(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return msgspec.structs.replace(cfg, base_dir=base_dir)


def load(path: str | Path = "engine.toml") -> Config:
    """Load engine.toml; a missing file gives the embedded defaults."""
    p = Path(path)
    if not p.exists():
        if str(path) == "engine.toml":
            return parse(b"", source=str(p))
        raise ConfigError(f"{p}: no such file")
    return parse(p.read_bytes(), source=str(p), base_dir=str(p.resolve().parent))

"""The HTTP API (ASGI): enqueue batches, follow them, find a message, status, metrics.

Every request needs ``Authorization: Bearer <token>`` when a token is
configured (401 otherwise, whatever the path). Answers are JSON; errors are
``{"error": ...}`` (422: ``{"errors": [{"line", "field", "reason"}]}``).
Store calls run on worker threads; an enqueue streams its body into
``Store.enqueue`` through ``engine.ingest`` (the same validation, atomicity and
idempotence as `volley enqueue`), never holding the body whole.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine import ingest
from engine.config import Config, size_bytes
from engine.http import body, metrics, openapi
from engine.http.asgi import HttpError, Receive, Request, Scope, Send
from engine.lookup import EXPORT_COLUMNS, export_rows, message_view, parse_since
from engine.sched.schedule import Scheduler
from engine.store import STATES, EnqueueResult, Store, StoreError

if TYPE_CHECKING:
    from engine.webhooks import WebhookSender

log = logging.getLogger("volley.http")

# (method, path pattern, handler): the one routing table (the OpenAPI test reads it too)
ROUTES = (
    ("POST", "/v1/batches/{batch}", "enqueue"),
    ("GET", "/v1/batches/{batch}", "batch"),
    ("GET", "/v1/batches/{batch}/messages", "messages"),
    ("GET", "/v1/batches/{batch}/messages/{id}", "message"),
    ("POST", "/v1/batches/{batch}/cancel", "cancel"),
    ("GET", "/v1/status", "status"),
    ("GET", "/v1/openapi.json", "openapi"),
    ("GET", "/metrics", "metrics"),
)
BODY_NAME = "body"  # how ingest names the body in its error lines
_ERROR_LINE = re.compile(rf"^{BODY_NAME}:(\d+): (.*?): (.*)$", re.S)
_FORMATS = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json-lines": "jsonl",
    "text/csv": "csv",
}
MAX_BATCH_ID = 256
EXPORT_CHUNK = 1 << 16


class Api:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        token: str | None,
        control: Path,
        sender: WebhookSender | None = None,
    ) -> None:
        self.cfg = cfg
        self.sender = sender
        self.store = store
        self.token = token.encode() if token else None
        self.max_body = size_bytes(cfg.http.max_body)
        self.scheduler = Scheduler(cfg)
        self.registry = metrics.registry(cfg, store, control, sender)
        self._loading: set[str] = set()  # batches a request is loading now
        self._routes = [(m, p.split("/"), h) for m, p, h in ROUTES]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: nothing here; the server closes them
        request = Request(scope, receive, send)
        started = time.perf_counter()
        context: dict[str, Any] = {}
        try:
            await self._handle(request, context)
        except HttpError as exc:
            context["error"] = str(exc)
            if not request.status:
                await request.json(exc.status, exc.body, exc.headers)
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.raw_path.decode("latin-1"))
            context["error"] = repr(exc)
            if not request.status:
                await request.json(500, {"error": "internal error (see the server's log)"})
        finally:
            self._access(request, started, context)

    def _access(self, request: Request, started: float, context: dict[str, Any]) -> None:
        status = request.status or 499  # nothing answered: the client went away
        fields = {
            "method": request.method,
            "path": request.raw_path.decode("latin-1"),
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "peer": request.peer,
            "bytes": request.sent,
        } | context
        level = logging.WARNING if status >= 500 else logging.INFO
        log.log(level, "request", extra=fields)

    async def _handle(self, request: Request, context: dict[str, Any]) -> None:
        self._authorize(request)
        segments = request.segments()
        allowed = []
        for method, pattern, name in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            context.update(params)
            handler: Callable[..., Awaitable[None]] = getattr(self, name)
            await handler(request, context, **params)
            return
        if allowed:
            raise HttpError(
                405,
                f"{request.method} not allowed here (allowed: {', '.join(allowed)})",
                headers=[(b"allow", ", ".join(allowed).encode())],
            )
        raise HttpError(404, "no such resource (see /v1/openapi.json)")

    def _authorize(self, request: Request) -> None:
        if self.token is None:
            return
        scheme, _, given = request.headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
            raise HttpError(
                401,
                "a bearer token is needed: Authorization: Bearer <token> ([http] token_env)",
                headers=[(b"www-authenticate", b'Bearer realm="volley"')],
            )

    # -- batches -----------------------------------------------------------------

    async def enqueue(self, request: Request, context: dict[str, Any], batch: str) -> None:
        _check_batch_id(batch)
        fmt = _body_format(request.header(b"content-type"))
        length = request.header(b"content-length")
        if length.isdigit() and int(length) > self.max_body:
            raise HttpError(413, str(body.BodyTooLarge(self.max_body)))
        query = request.query()
        validator = self._validator(query)
        drop_dead = _flag(query, "drop_dead")
        campaign = query.get("campaign", "")
        step = (query.get("step") or batch) if campaign else ""
        if batch in self._loading:
            raise HttpError(409, f"batch {batch!r} is being loaded by another request; retry")
        self._loading.add(batch)
        try:
            result, error = await self._load(
                request, batch, fmt, validator, drop_dead, (campaign, step)
            )
        finally:
            self._loading.discard(batch)
        if error is not None:
            raise _load_error(error)
        assert result is not None
        answer = {
            "batch": result.batch,
            "queued": result.queued,
            "already": result.duplicates,
            "scheduled": result.scheduled,
            "dead": result.dead,
            "stopped": result.stopped,
            "dropped": result.dropped,
            "default_zone": validator.default_zone,
        }
        context.update(queued=result.queued, already=result.duplicates)
        await request.json(200, answer)

    def _validator(self, query: dict[str, str]) -> ingest.Validator:
        kind = query.get("kind") or "marketing"
        window = query.get("window", "")
        validator = ingest.Validator(
            self.cfg, default_kind=kind, scheduler=self.scheduler, window=window
        )
        if kind not in validator.kinds:
            raise HttpError(400, f"kind: {kind!r}: expected one of {sorted(validator.kinds)}")
        if window and window not in self.cfg.windows:
            raise HttpError(400, f"window: no [windows.{window}] in the config")
        return validator

    async def _load(
        self,
        request: Request,
        batch: str,
        fmt: str,
        validator: ingest.Validator,
        drop_dead: bool,
        step: tuple[str, str] = ("", ""),
    ) -> tuple[EnqueueResult | None, BaseException | None]:
        """Stream the body into the store on a worker thread; (result, None) or (None, error)."""
        chunks_in, chunks = body.channel()
        reader = body.BodyReader(chunks)

        def load() -> tuple[EnqueueResult | None, BaseException | None]:
            lines = body.text(reader)
            messages = ingest.messages(lines, BODY_NAME, validator, fmt=fmt)
            try:
                return self.store.enqueue(
                    batch,
                    messages,
                    now=time.time(),
                    drop_dead=drop_dead,
                    campaign=step[0],
                    segment=step[1],
                ), None
            except Exception as exc:
                return None, exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(body.pump, request.receive, chunks_in, self.max_body)
            with chunks:
                outcome = await trio.to_thread.run_sync(load)
            nursery.cancel_scope.cancel()
        return outcome

    async def batch(self, request: Request, context: dict[str, Any], batch: str) -> None:
        counts, paused = await trio.to_thread.run_sync(self._batch_counts, batch)
        states = dict.fromkeys(STATES, 0) | counts
        answer = {"batch": batch, "states": states, "total": sum(counts.values()), "paused": paused}
        await request.json(200, answer)

    def _batch_counts(self, batch: str) -> tuple[dict[str, int], bool]:
        counts = self.store.batch_progress(batch)
        if not counts:
            raise HttpError(404, f"no batch {batch!r}")
        return counts, batch in self.store.paused_batches()

    async def message(self, request: Request, context: dict[str, Any], batch: str, id: str) -> None:
        msg = await trio.to_thread.run_sync(self.store.find, batch, id)
        if msg is None:
            await trio.to_thread.run_sync(self._batch_counts, batch)  # 404 naming the batch
            raise HttpError(404, f"no message {id!r} in batch {batch!r}")
        engagement = await trio.to_thread.run_sync(self.store.engagement, msg.id)
        transitions = await trio.to_thread.run_sync(self.store.message_history, msg.id)
        await request.json(200, message_view(msg, engagement, transitions))

    async def messages(self, request: Request, context: dict[str, Any], batch: str) -> None:
        query = request.query()
        states = [s.strip() for s in query.get("state", "").split(",") if s.strip()]
        for state in states:
            if state not in STATES:
                raise HttpError(400, f"state: {state!r}: expected one of {', '.join(STATES)}")
        try:
            since = parse_since(query["since"]) if query.get("since") else None
        except ValueError as exc:
            raise HttpError(400, f"since: {exc}") from None
        fmt = query.get("format") or ("csv" if "text/csv" in request.header(b"accept") else "jsonl")
        if fmt not in ("csv", "jsonl"):
            raise HttpError(400, f"format: {fmt!r}: expected csv or jsonl")
        await trio.to_thread.run_sync(self._batch_counts, batch)
        kind = b"text/csv; charset=utf-8" if fmt == "csv" else b"application/x-ndjson"
        await request.start(200, kind)
        rows = await trio.to_thread.run_sync(self._export, request, batch, states, since, fmt)
        context["rows"] = rows
        await request.body(b"")

    def _export(
        self, request: Request, batch: str, states: list[str], since: float | None, fmt: str
    ) -> int:
        """On a worker thread: rows out in chunks of about 64 KB, one message at a time."""
        out = io.StringIO()
        encoder = msgspec.json.Encoder()
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        if fmt == "csv":
            writer.writeheader()
        n = 0
        for n, row in enumerate(export_rows(self.store, batch, states, since), 1):  # noqa: B007
            if fmt == "csv":
                writer.writerow(row)
            else:
                out.write(encoder.encode(row).decode() + "\n")
            if out.tell() >= EXPORT_CHUNK:
                trio.from_thread.run(request.body, out.getvalue().encode(), True)
                out.seek(0)
                out.truncate()
        if out.tell():
            trio.from_thread.run(request.body, out.getvalue().encode(), True)
        return n

    async def cancel(self, request: Request, context: dict[str, Any], batch: str) -> None:
        await trio.to_thread.run_sync(self._batch_counts, batch)
        try:
            n = await trio.to_thread.run_sync(self.store.cancel_batch, batch, time.time())
        except StoreError as exc:
            raise HttpError(409, str(exc)) from None
        context["cancelled"] = n
        await request.json(200, {"batch": batch, "cancelled": n})

    # -- the rest ----------------------------------------------------------------

    async def status(self, request: Request, context: dict[str, Any]) -> None:
        from engine.commands import status

        snap = await trio.to_thread.run_sync(
            lambda: status.live(self.cfg, status.snapshot(self.cfg, self.store))
        )
        if self.sender is not None:
            snap["webhooks"]["sender"] = self.sender.stats()
        await request.json(200, snap)

    async def openapi(self, request: Request, context: dict[str, Any]) -> None:
        await request.json(200, openapi.SPEC)

    async def metrics(self, request: Request, context: dict[str, Any]) -> None:
        data = await trio.to_thread.run_sync(generate_latest, self.registry)
        length = [(b"content-length", str(len(data)).encode())]
        await request.start(200, CONTENT_TYPE_LATEST.encode(), length)
        await request.body(data)


def _match(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params = {}
    for want, got in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


def _check_batch_id(batch: str) -> None:
    if not batch or len(batch) > MAX_BATCH_ID or not batch.isprintable():
        raise HttpError(
            400, f"batch id: expected 1 to {MAX_BATCH_ID} printable characters, got {batch!r}"
        )


def _body_format(content_type: str) -> str:
    media, _, params = content_type.partition(";")
    fmt = _FORMATS.get(media.strip().lower())
    if fmt is None:
        raise HttpError(
            415,
            f"Content-Type {media.strip() or '(none)'!r}: expected application/x-ndjson "
            "(JSON Lines) or text/csv",
        )
    charset = re.search(r"charset\s*=\s*\"?([\w-]+)", params, re.I)
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise HttpError(415, f"charset {charset.group(1)!r}: only UTF-8 is read")
    return fmt


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in ("", "true", "false", "1", "0", "yes", "no"):
        raise HttpError(400, f"{name}: {value!r}: expected true or false")
    return value in ("", "true", "1", "yes")


def _load_error(error: BaseException) -> HttpError:
    """What a failed load answers: every bad line, a body too large, or the store's refusal."""
    if isinstance(error, ingest.IngestError):
        errors = [_line_error(line) for line in error.lines]
        summary = f"{len(errors)} bad line(s): nothing was queued"
        return HttpError(422, summary, body={"error": summary, "errors": errors})
    if isinstance(error, UnicodeDecodeError):
        reason = f"not UTF-8 text ({error.reason} at byte {error.start} of a chunk)"
        return HttpError(422, reason, body={"error": reason, "errors": [_whole(BODY_NAME, reason)]})
    if isinstance(error, body.BodyTooLarge):
        return HttpError(413, str(error))
    if isinstance(error, body.BodyAborted):
        return HttpError(400, str(error))
    if isinstance(error, StoreError):
        conflict = "being loaded" in str(error) or "campaign" in str(error)
        return HttpError(409 if conflict else 503, str(error))
    return HttpError(500, f"the load failed: {error!r}")


def _line_error(line: str) -> dict[str, Any]:
    m = _ERROR_LINE.match(line)
    if m is None:
        return _whole("", line)
    return {"line": int(m.group(1)), "field": m.group(2), "reason": m.group(3)}


def _whole(field: str, reason: str) -> dict[str, Any]:
    return {"line": None, "field": field, "reason": reason}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

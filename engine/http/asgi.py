"""The little of ASGI the API needs: a request's parts, and JSON or streamed answers.

No framework: the server (hypercorn) parses HTTP; this reads the scope it
gives and sends ``http.response.*`` messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_json = msgspec.json.Encoder()


class HttpError(Exception):
    """An answer other than success: ``status`` and a JSON body (``{"error": ...}`` by default)."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        body: dict[str, Any] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"error": message}
        self.headers = headers or []


class Request:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        raw = scope.get("raw_path") or scope["path"].encode()
        self.raw_path: bytes = raw.split(b"?", 1)[0]
        self.headers = {k.lower(): v for k, v in scope.get("headers", [])}
        self.status = 0  # what was answered, for the access log
        self.sent = 0  # body bytes sent

    def segments(self) -> list[str]:
        """The path's segments, each percent-decoded on its own (so %2F stays inside one)."""
        try:
            return [unquote(s.decode("ascii"), errors="strict") for s in self.raw_path.split(b"/")]
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "the path is not valid percent-encoded UTF-8") from None

    def query(self) -> dict[str, str]:
        """The query string's parameters (the last of each name)."""
        raw = self.scope.get("query_string", b"").decode("latin-1")
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")

    @property
    def peer(self) -> str:
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else ""

    async def start(
        self, status: int, content_type: bytes, headers: list[tuple[bytes, bytes]] = ()
    ) -> None:
        self.status = status
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), *headers],
            }
        )

    async def body(self, data: bytes, more: bool = False) -> None:
        self.sent += len(data)
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, obj: Any, headers: list[tuple[bytes, bytes]] = ()) -> None:
        data = _json.encode(obj)
        length = [(b"content-length", str(len(data)).encode())]
        await self.start(status, b"application/json", [*length, *headers])
        await self.body(data)

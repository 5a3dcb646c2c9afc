"""The API's OpenAPI 3.1 description, served at /v1/openapi.json (written out by hand:
tests check that it parses and that it lists exactly the routes the API serves)."""

from __future__ import annotations

from typing import Any

from engine.store import STATES

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
_LINE_ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "error": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["line", "field", "reason"],
                "properties": {
                    "line": {
                        "type": ["integer", "null"],
                        "description": "1-based; null when the body as a whole is wrong",
                    },
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}
_STATES = {
    "type": "object",
    "properties": {s: {"type": "integer"} for s in STATES},
    "additionalProperties": {"type": "integer"},
}
_ENQUEUED = {
    "type": "object",
    "required": ["batch", "queued", "already"],
    "properties": {
        "batch": {"type": "string"},
        "queued": {"type": "integer", "description": "messages added by this request"},
        "already": {"type": "integer", "description": "ids already in the batch: not added"},
        "scheduled": {"type": "integer", "description": "of those queued, due later"},
        "dead": {"type": "integer", "description": "queued to pruned numbers: to be skipped"},
        "stopped": {"type": "integer", "description": "queued to stop-listed numbers"},
        "dropped": {"type": "integer", "description": "to pruned numbers, not queued"},
        "default_zone": {"type": "integer", "description": "timed in [defaults] timezone"},
    },
}
_MESSAGE = {
    "type": "object",
    "description": "What `volley message BATCH ID --json` prints",
    "properties": {
        "batch": {"type": "string"},
        "id": {"type": "string", "description": "the upstream's id in its batch"},
        "key": {"type": "integer", "description": "the store's own id"},
        "to": {"type": "string"},
        "from": {"type": "string"},
        "kind": {"type": "string"},
        "route": {"type": "string"},
        "state": {"type": "string", "enum": list(STATES)},
        "parts": {"type": "integer"},
        "part_states": {"type": "array", "items": {"type": "string"}},
        "smsc_ids": {"type": "array", "items": {"type": "string"}},
        "attempts": {"type": "integer"},
        "error": {"type": "string"},
        "reason": {"type": "string"},
        "submit_status": {"type": ["string", "null"]},
        "receipt": {
            "type": ["object", "null"],
            "properties": {
                "stat": {"type": "string"},
                "err": {"type": ["integer", "null"]},
                "network_error": {"type": ["integer", "null"]},
            },
        },
        "text": {"type": "string"},
        "zone": {"type": "string"},
        "created": {"type": "string", "format": "date-time"},
        "updated": {"type": "string", "format": "date-time"},
        "due": {"type": ["string", "null"], "format": "date-time"},
        "not_before": {"type": ["string", "null"], "format": "date-time"},
        "expires": {"type": ["string", "null"], "format": "date-time"},
        "claimed": {"type": ["string", "null"], "format": "date-time"},
        "sent": {"type": ["string", "null"], "format": "date-time"},
        "history": {
            "type": "array",
            "description": "its states with times and reasons, oldest first: enqueued, "
            "requeued, scheduled, rerouted, receipt (intermediate), claimed, sent, then its "
            "final state",
            "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "event": {"type": "string"},
                    "state": {"type": "string"},
                    "reason": {"type": "string"},
                    "due": {"type": "string", "format": "date-time"},
                    "attempts": {"type": "integer"},
                    "smsc_ids": {"type": "array", "items": {"type": "string"}},
                    "operator": {"type": "string"},
                    "receipt": {"type": "string"},
                },
                "required": ["at", "event"],
            },
        },
        "links": {
            "type": "array",
            "description": "its tracked short links: [links] base + code stands for url",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "clicks": {
            "type": "array",
            "description": "its clicks, oldest first (the first 100)",
            "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "agent": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
        "click_count": {"type": "integer"},
        "replies": {"type": "integer", "description": "inbound SMS attributed to it"},
        "last_reply": {"type": ["string", "null"], "format": "date-time"},
        "opted_out": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "when its recipient opted out in answer to it",
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_UNAUTHORIZED = {"401": _json(_ERROR, "no or wrong bearer token")}
_BATCH = {"name": "batch", "in": "path", "required": True, "schema": {"type": "string"}}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Volley",
        "version": "1",
        "description": "Enqueue batches of SMS and follow them (`volley serve`).",
    },
    "security": [{"bearer": []}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/v1/batches/{batch}": {
            "parameters": [_BATCH],
            "post": {
                "summary": "Add messages to a batch: all or nothing, idempotent on (batch, id)",
                "parameters": [
                    {"name": "kind", "in": "query", "schema": {"type": "string"}},
                    {"name": "window", "in": "query", "schema": {"type": "string"}},
                    {"name": "drop_dead", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "campaign",
                        "in": "query",
                        "description": "the campaign this batch is a step of",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "step",
                        "in": "query",
                        "description": "the step's name in its campaign (default: the batch id)",
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json(_ENQUEUED, "queued (or already there)"),
                    "400": _json(_ERROR, "a bad query parameter or batch id"),
                    **_UNAUTHORIZED,
                    "409": _json(_ERROR, "another request is loading this batch"),
                    "413": _json(_ERROR, "the body is larger than [http] max_body"),
                    "415": _json(_ERROR, "not JSON Lines or CSV"),
                    "422": _json(_LINE_ERRORS, "bad lines: nothing was queued"),
                },
            },
            "get": {
                "summary": "A batch's messages by state",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["batch", "states"],
                            "properties": {
                                "batch": {"type": "string"},
                                "states": _STATES,
                                "total": {"type": "integer"},
                                "paused": {"type": "boolean"},
                            },
                        },
                        "counts by state",
                    ),
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "no such batch"),
                },
            },
        },
        "/v1/batches/{batch}/messages": {
            "parameters": [_BATCH],
            "get": {
                "summary": "Export the batch's messages (streamed), as `volley messages` does",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "description": "comma-separated states to keep",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "description": "changed at or after: ISO 8601 with offset, a date, or 2h",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["csv", "jsonl"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "one row per message",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _json(_ERROR, "a bad state, since or format"),
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "no such batch"),
                },
            },
        },
        "/v1/batches/{batch}/messages/{id}": {
            "parameters": [
                _BATCH,
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "get": {
                "summary": "One message",
                "responses": {
                    "200": _json(_MESSAGE, "the message"),
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "no such batch or message"),
                },
            },
        },
        "/v1/batches/{batch}/cancel": {
            "parameters": [_BATCH],
            "post": {
                "summary": "Cancel the batch's queued and scheduled messages",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "batch": {"type": "string"},
                                "cancelled": {"type": "integer"},
                            },
                        },
                        "cancelled",
                    ),
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "no such batch"),
                    "409": _json(_ERROR, "the store refused the cancel"),
                },
            },
        },
        "/v1/status": {
            "get": {
                "summary": "What `volley status --json` prints",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["states", "batches", "binds"],
                            "properties": {
                                "states": _STATES,
                                "batches": {"type": "object", "additionalProperties": _STATES},
                                "binds": {"type": "array", "items": {"type": "object"}},
                                "engine": {"type": "object"},
                            },
                        },
                        "status",
                    ),
                    **_UNAUTHORIZED,
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_UNAUTHORIZED},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "the Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_UNAUTHORIZED,
                },
            }
        },
    },
}

"""`volley serve`: the HTTP API and /metrics (ASGI apps on hypercorn's trio worker)."""

"""What the steering commands (pause, resume, tps, reconnect, drain) share: one request
to the running engine through its control socket, and its answer as an exit code.

Exit 0 when the engine did it (its answer on stdout), 2 when it refused the
request as bad input (no such operator, bind or batch), 1 when no engine runs
or it failed.
"""

from __future__ import annotations

import sys

from engine.config import Config
from engine.control import protocol as p


def send(cfg: Config, command: str, request: p.Base) -> int:
    from engine.control.client import Client, ControlUnavailable

    path = cfg.resolve(cfg.control.socket)
    try:
        with Client.connect(path) as client:
            reply = client.request(request)
    except (ControlUnavailable, TimeoutError) as exc:
        detail = "no answer within 5s" if isinstance(exc, TimeoutError) else str(exc)
        print(f"volley {command}: no engine running ({detail})", file=sys.stderr)
        return 1
    if isinstance(reply, p.Error):
        print(f"volley {command}: the engine refused: {reply.message}", file=sys.stderr)
        return 2 if reply.code == p.BAD_REQUEST else 1
    assert isinstance(reply, p.Ok)
    print(reply.detail)
    return 0

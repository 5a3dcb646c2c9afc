"""`volley serve`'s listeners: each an ASGI app on its own address, on hypercorn's trio worker.

The API (with /metrics) listens on ``[http] listen``, private; the public
short-link redirects get a listener of their own (``[links] listen``) when they
come, so a link never reaches the API. One shutdown event stops every listener
gracefully: no new connections, requests under way get ``graceful_timeout``.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import partial
from typing import NamedTuple

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from engine.config import listen_address
from engine.http.asgi import App

log = logging.getLogger("volley.http")


class Listener(NamedTuple):
    name: str  # "api", "links"
    app: App
    address: str  # host:port, [v6]:port or unix:PATH


def is_local(address: str) -> bool:
    """Whether only this host can reach ``address``: a loopback address or a Unix socket."""
    where = listen_address(address)
    if isinstance(where, str):
        return True
    host = where[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def hypercorn_config(address: str, graceful_timeout: float) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [address]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None  # the app logs each request, with its context
    config.errorlog = logging.getLogger("volley.http.server")
    config.include_server_header = False
    return config


async def serve_all(
    listeners: list[Listener],
    shutdown: trio.Event,
    *,
    graceful_timeout: float = 30.0,
    task_status: trio.TaskStatus[dict[str, list[str]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every listener until ``shutdown`` is set; started with {name: [bound URL, ...]}."""
    async with trio.open_nursery() as nursery:
        bound = {}
        for listener in listeners:
            config = hypercorn_config(listener.address, graceful_timeout)
            bound[listener.name] = await nursery.start(
                partial(serve, listener.app, config, shutdown_trigger=shutdown.wait)
            )
            log.info(
                "%s listening on %s",
                listener.name,
                ", ".join(bound[listener.name]),
                extra={"listener": listener.name, "address": listener.address},
            )
        task_status.started(bound)

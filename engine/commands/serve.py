"""The HTTP side: the API and /metrics on [http] listen, the short links' redirects on
[links] listen (when [links] base is set), its own long-running process.

Works whether or not an engine runs: it reads and writes the store (enqueue
as `volley enqueue` does; it never changes a message an engine holds) and
takes live figures from the engine's control socket. Every request needs
`Authorization: Bearer <token>`, the token read from the environment variable
[http] token_env; with no token set it listens only on a loopback address or a
Unix socket (anything else: exit 2). SIGINT/SIGTERM: stop accepting, let the
requests under way finish ([http] graceful_timeout), exit 0; a second signal
stops at once (a load cut short enqueues nothing). The links listener is public
and unauthenticated: GET /<code> answers 302 to the link's URL and records the
click (HEAD and link-preview robots are redirected without one), anything else 404.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

log = logging.getLogger("volley.http")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR", help="override [http] listen (host:port)")
    parser.add_argument(
        "--links-listen", metavar="ADDR", help="override [links] listen (host:port)"
    )
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")


def main(args: argparse.Namespace) -> int:
    import msgspec
    import trio

    from engine import config, logs
    from engine.cli import UsageError
    from engine.http.api import Api
    from engine.http.links import Links
    from engine.http.server import Listener, is_local
    from engine.store import StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    if args.listen:
        try:
            config.listen_address(args.listen)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        cfg = msgspec.structs.replace(
            cfg, http=msgspec.structs.replace(cfg.http, listen=args.listen)
        )
    if args.links_listen:
        try:
            config.listen_address(args.links_listen)
        except ValueError as exc:
            raise UsageError(f"--links-listen: {exc}") from None
        cfg = msgspec.structs.replace(
            cfg, links=msgspec.structs.replace(cfg.links, listen=args.links_listen)
        )
    logs.setup(cfg, as_json=args.log_json)
    token = os.environ.get(cfg.http.token_env, "").strip() or None
    listen = cfg.http.listen
    if token is None and not is_local(listen):
        raise UsageError(
            f"[http] listen = {listen!r} is not a loopback address and no API token is set: "
            f"export {cfg.http.token_env}=<a long random token> (or listen on 127.0.0.1)"
        )
    if token is None:
        log.warning("no API token (%s unset): any local user can use the API", cfg.http.token_env)
    elif len(token) < 16:
        log.warning("the API token in %s is short (%d characters)", cfg.http.token_env, len(token))
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"volley serve: {exc}", file=sys.stderr)
        return 1
    api = Api(cfg, store, token=token, control=cfg.resolve(cfg.control.socket))
    listeners = [Listener("api", api, listen)]
    if cfg.links.base:
        listeners.append(Listener("links", Links(store), cfg.links.listen))
        listen += f" or {cfg.links.listen}"
    graceful = config.seconds(cfg.http.graceful_timeout)
    try:
        return trio.run(_serve, listeners, graceful)
    except (OSError, BaseExceptionGroup) as exc:
        error = _os_error(exc)
        if error is None:
            raise
        print(
            f"volley serve: cannot listen on {listen}: {error.strerror or error}", file=sys.stderr
        )
        return 1
    finally:
        store.close()


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError (a listener that cannot bind) that ended the server, if that is all it was."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        errors = [_os_error(e) for e in exc.exceptions]
        if errors and all(errors):
            return errors[0]
    return None


async def _serve(listeners, graceful_timeout: float) -> int:
    import trio

    from engine.http.server import serve_all

    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, signals, shutdown, nursery.cancel_scope)
            await serve_all(listeners, shutdown, graceful_timeout=graceful_timeout)
            nursery.cancel_scope.cancel()  # every listener has stopped
    log.info("stopped")
    return 0


async def _signals(signals, shutdown, scope) -> None:
    async for signum in signals:
        if not shutdown.is_set():
            log.info(
                "signal %s: no new requests; finishing those under way", signal.Signals(signum).name
            )
            shutdown.set()
        else:
            log.info("second signal: stopping now")
            scope.cancel()

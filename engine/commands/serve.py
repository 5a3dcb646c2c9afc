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
With [links] processes = N, N processes answer the links on one listening socket
(this one and N - 1 workers it starts and stops; each its own store handle).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys

log = logging.getLogger("volley.http")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="ADDR", help="override [http] listen (host:port)")
    parser.add_argument(
        "--links-listen", metavar="ADDR", help="override [links] listen (host:port)"
    )
    parser.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    parser.add_argument("--links-worker", metavar="ADDR", help=argparse.SUPPRESS)  # a links worker


def main(args: argparse.Namespace) -> int:
    import trio

    from engine import collector, config, logs
    from engine.cli import UsageError
    from engine.http.api import Api
    from engine.http.links import Links
    from engine.http.server import Listener, is_local
    from engine.store import StoreError
    from engine.wiring import open_store

    cfg = config.load(args.config)
    collector.tune()
    cfg = _listening_on(cfg, "http", args.listen, "--listen")
    cfg = _listening_on(cfg, "links", args.links_listen, "--links-listen")
    if args.links_worker is not None:
        return _links_worker(cfg, args)
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
    secret = webhook_secret(cfg)
    try:
        store = open_store(cfg)
    except StoreError as exc:
        print(f"volley serve: {exc}", file=sys.stderr)
        return 1
    sender = None
    if secret is not None:
        from engine.webhooks import WebhookSender

        sender = WebhookSender(store, cfg.webhooks, secret)
    control = cfg.resolve(cfg.control.socket)
    api = Api(cfg, store, token=token, control=control, sender=sender)
    listeners = [Listener("api", api, listen)]
    graceful = config.seconds(cfg.http.graceful_timeout)
    workers: list[subprocess.Popen] = []
    try:
        if cfg.links.base:
            address, workers = _links_listener(cfg, args)
            listeners.append(Listener("links", Links(store), address))
            listen += f" or {cfg.links.listen}"
        return trio.run(_serve, listeners, graceful, sender)
    except (OSError, BaseExceptionGroup) as exc:
        error = _os_error(exc)
        if error is None:
            raise
        print(
            f"volley serve: cannot listen on {listen}: {error.strerror or error}", file=sys.stderr
        )
        return 1
    finally:
        _stop_workers(workers, graceful)
        store.close()


def _listening_on(cfg, section: str, address: str | None, flag: str):
    """``cfg`` with ``[section] listen`` set from the command line (``flag``), if given."""
    import msgspec

    from engine import config
    from engine.cli import UsageError

    if not address:
        return cfg
    try:
        config.listen_address(address)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    listener = msgspec.structs.replace(getattr(cfg, section), listen=address)
    return msgspec.structs.replace(cfg, **{section: listener})


def webhook_secret(cfg) -> bytes | None:
    """The HMAC secret of [webhooks] (None: no webhooks); unset is a usage error (exit 2)."""
    from engine.cli import UsageError

    if not cfg.webhooks.url:
        return None
    secret = os.environ.get(cfg.webhooks.secret_env, "")
    if not secret:
        raise UsageError(
            f"webhooks.secret_env: the variable {cfg.webhooks.secret_env} is not set "
            "(the secret that signs each webhook)"
        )
    return secret.encode()


def _links_listener(cfg, args: argparse.Namespace) -> tuple[str, list[subprocess.Popen]]:
    """The links listener's address; with [links] processes > 1, a socket of its own (fd://N)
    and N - 1 worker processes, each listening on the same port with one of its own."""
    if cfg.links.processes == 1:
        return cfg.links.listen, []
    fd, address = _links_socket(cfg.links.listen, cfg.links.processes)
    command = [sys.executable, "-m", "engine", "serve", "--config", args.config,
               "--links-worker", address, *(["--log-json"] if args.log_json else [])]  # fmt: skip
    workers = [
        subprocess.Popen(
            command,
            env={**os.environ, "VOLLEY_LINKS_WORKER": str(i)},
            preexec_fn=_die_with_parent,
        )
        for i in range(1, cfg.links.processes)
    ]
    log.info("links answered by %d processes", cfg.links.processes)
    return f"fd://{fd}", workers


def _links_socket(address: str, processes: int) -> tuple[int, str]:
    """A listening socket on ``address`` with SO_REUSEPORT, and the address it got (port 0
    resolved). Each links process listens on one of its own, so the kernel spreads new
    connections over the processes that listen (with one shared socket, the process that
    woke first accepted every connection of a burst), and none waits for a process that
    is still starting."""
    from engine.http.server import hypercorn_config

    hc = hypercorn_config(address, 0.0)
    hc.workers = processes  # hypercorn sets SO_REUSEPORT when there are workers
    (sock,) = hc.create_sockets().insecure_sockets  # OSError: cannot listen
    sock.listen(hc.backlog)
    host, port = sock.getsockname()[:2]
    return sock.detach(), f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _die_with_parent() -> None:
    """In a worker, before exec: SIGTERM when `volley serve` goes (even killed)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_workers(workers: list[subprocess.Popen], graceful: float) -> None:
    """Workers stop on the signal their group got; those that did not get one are sent it."""
    for proc in workers:
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(graceful + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _links_worker(cfg, args: argparse.Namespace) -> int:
    """A links worker: the links listener alone, on a socket of its own (SO_REUSEPORT) on
    the address its parent bound."""
    import trio

    from engine import config, logs
    from engine.http.links import Links
    from engine.http.server import Listener
    from engine.wiring import open_store

    tag = "links" + os.environ.get("VOLLEY_LINKS_WORKER", "")
    logs.setup(cfg, as_json=args.log_json, tag=tag)
    try:
        fd, _ = _links_socket(args.links_worker, cfg.links.processes)
    except OSError as exc:
        log.error("links worker: cannot listen on %s: %s", args.links_worker, exc.strerror or exc)
        return 1
    store = open_store(cfg)
    try:
        graceful = config.seconds(cfg.http.graceful_timeout)
        listener = Listener("links", Links(store), f"fd://{fd}")
        return trio.run(_serve, [listener], graceful)
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


async def _serve(listeners, graceful_timeout: float, sender=None) -> int:
    import trio

    from engine.http.server import serve_all

    shutdown = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, signals, shutdown, nursery.cancel_scope)
            if sender is not None:  # the webhooks: stopped with the listeners
                nursery.start_soon(sender.run)
            await serve_all(listeners, shutdown, graceful_timeout=graceful_timeout)
            if sender is not None:  # requests under way finish, deliveries are recorded
                sender.stop()
                with trio.move_on_after(graceful_timeout):
                    await sender.stopped.wait()
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

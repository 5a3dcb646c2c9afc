"""Several engine processes on one store: start them, keep them, speak for them.

With ``[engine] processes = N`` (N > 1) ``volley run`` is this supervisor. It
takes the store's lock (engine/store/lock.py) and recovers what a crash left in
flight, then starts N engine processes (``volley run --worker I/N``), which
share that lock: each inherits the locked descriptor, so a second engine still
finds the store taken while any of them runs. Each holds every I-th bind of every operator
and that share of the operator's TPS, claims from the shared queue (a claim is
one LMDB transaction, so no message is claimed twice) and tags its claims so
that its own in-flight messages can be recovered alone. A process killed by a
signal has its in-flight messages put back per ``on_crash_inflight`` and is
started again; the others keep sending. The supervisor serves the control
socket: snapshots merge the processes' own (each serves ``SOCKET.I``), and
actions go to every process. Processes run in their own session, so a
terminal's ^C reaches the supervisor only; each stops by itself if the
supervisor disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import msgspec
import trio

from engine.config import Config, engine_processes
from engine.control import protocol as cp
from engine.control.client import Client, ControlUnavailable
from engine.control.server import ControlServer
from engine.control.views import merge_snapshots, store_snapshot
from engine.store import StoreLock
from engine.store.lock import INHERITED_FD
from engine.wiring import open_store

log = logging.getLogger("volley.supervisor")

MAX_RESTARTS = 5
SUPERVISOR_PID = "VOLLEY_SUPERVISOR_PID"  # in each engine process's environment
# What the supervisor sends its processes. Not SIGTERM: a service manager that
# signals the whole group (systemd's default) must not make a graceful stop
# look like a second, immediate one.
STOP, STOP_NOW = signal.SIGUSR1, signal.SIGUSR2


def worker_socket(control: Path, index: int) -> Path:
    return control.with_name(f"{control.name}.{index}")


def owner_tag(index: int) -> bytes:
    """What engine process ``index`` writes beside its claims in the in-flight index."""
    return bytes([index + 1])


class Supervisor:
    def __init__(
        self, cfg: Config, config_path: str, control: Path, flags: list[str], lock: StoreLock
    ) -> None:
        self.cfg = cfg
        self.lock = lock  # the store's: held here, shared with the engine processes
        self.n = engine_processes(cfg)
        self.control = control
        self.config_path = config_path
        self._argv = [sys.executable, "-m", "engine", "run", "--config", config_path, *flags]
        self._procs: list[trio.Process | None] = [None] * self.n
        self.codes: list[int | None] = [None] * self.n
        self.stopping = False
        self.restarts = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> int:
        async with trio.open_nursery() as nursery:
            await nursery.start(ControlServer(self.control, self).serve)
            task_status.started()
            async with trio.open_nursery() as workers:
                for i in range(self.n):
                    workers.start_soon(self._keep, i)
            nursery.cancel_scope.cancel()
        return 0 if all(code == 0 for code in self.codes) else 1

    async def _keep(self, index: int) -> None:
        """Run engine process ``index``; after a crash, recover its claims and start it again."""
        while True:
            argv = [*self._argv, "--worker", f"{index}/{self.n}"]
            env = {**os.environ, SUPERVISOR_PID: str(os.getpid()), INHERITED_FD: str(self.lock.fd)}
            proc = await trio.lowlevel.open_process(
                argv, start_new_session=True, env=env, pass_fds=(self.lock.fd,)
            )
            self._procs[index] = proc
            log.info("engine process %d/%d started (pid %d)", index, self.n, proc.pid)
            code = await proc.wait()
            self._procs[index] = None
            self.codes[index] = code
            if code >= 0:
                self._exited(index, code)
                return
            name = signal.Signals(-code).name
            back = await trio.to_thread.run_sync(self._recover, index)
            what = "put back" if self.cfg.store.on_crash_inflight == "resend" else "held as unknown"
            log.error(
                "engine process %d killed by %s; %d message(s) it had in flight %s",
                index,
                name,
                back,
                what,
            )
            if self.stopping:
                return
            if self.restarts >= MAX_RESTARTS:
                log.error(
                    "engine process %d not restarted: %d restarts already", index, MAX_RESTARTS
                )
                return
            self.restarts += 1
            log.info("engine process %d: starting it again", index)
            await trio.sleep(min(30.0, 2.0 ** (self.restarts - 1)))
            if self.stopping:
                return

    def _exited(self, index: int, code: int) -> None:
        if code == 0 or self.stopping:
            log.info("engine process %d/%d exited with %d", index, self.n, code)
        else:  # it gave up by itself (its log says why): the rest stop too
            log.error("engine process %d/%d failed (exit %d): stopping all", index, self.n, code)
            self.signal_all()

    def _recover(self, index: int) -> int:
        store = open_store(self.cfg)
        try:
            return store.recover_inflight(self.lock, owner_tag(index))
        finally:
            store.close()

    def reload(self, *, signal_processes: bool = True) -> str:
        """Check the config file again: refused (the reason returned, nothing changes), or
        taken here and passed on to every engine process (SIGHUP; or by the caller)."""
        from engine.reload import ReloadError, load

        try:
            self.cfg = load(self.config_path, self.cfg)
        except ReloadError as exc:
            log.error("reload refused, the running config stays: %s", exc)
            return str(exc)
        if signal_processes:
            for proc in self._procs:
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGHUP)
        return ""

    async def wait_exited(self) -> None:
        for proc in self._procs:
            if proc is not None:
                await proc.wait()

    def signal_all(self, signum: int = STOP) -> None:
        """``STOP``: drain and unbind; ``STOP_NOW``: exit at once (nothing is lost)."""
        self.stopping = True
        for proc in self._procs:
            if proc is not None and proc.returncode is None:
                proc.send_signal(signum)

    # -- the control socket: the processes' snapshots merged, actions to all --

    async def snapshot(self) -> cp.Snapshot:
        snaps = await trio.to_thread.run_sync(self._snapshots)
        if not snaps:  # starting, or every one restarting: the store's side, still live
            snap = await trio.to_thread.run_sync(store_snapshot, self.cfg)
            events = [*snap.events, "engine processes starting"]
            return msgspec.structs.replace(snap, live=True, pid=os.getpid(), events=events)
        return merge_snapshots(snaps, pid=os.getpid())

    def _snapshots(self) -> list[cp.Snapshot]:
        out = []
        for i in range(self.n):
            try:
                with Client.connect(worker_socket(self.control, i), timeout=2.0) as client:
                    out.append(client.snapshot())
            except (ControlUnavailable, OSError):
                continue  # starting or restarting: the others still answer
        return out

    async def act(self, req: cp.Request, uid: int) -> cp.Reply:
        log.info("control: uid %d asks %r", uid, req)
        if isinstance(req, cp.Drain):
            self.stopping = True
        if isinstance(req, cp.Reload):
            refused = self.reload(signal_processes=False)
            if refused:
                return cp.Error(message=refused, code=cp.BAD_REQUEST)
        replies = await trio.to_thread.run_sync(self._ask_all, req)
        ok = [r for r in replies if isinstance(r, cp.Ok)]
        if ok:
            return ok[0]
        errors = Counter(r for r in replies if isinstance(r, cp.Error))
        if errors:
            return errors.most_common(1)[0][0]
        return cp.Error(message="no engine process answers")

    def _ask_all(self, req: cp.Request) -> list[cp.Reply]:
        """Every process gets it (a bind is found where it lives); a batch only once."""
        replies: list[cp.Reply] = []
        once = isinstance(req, cp.Pause | cp.Resume) and bool(req.batch)
        for i in range(self.n):
            try:
                with Client.connect(worker_socket(self.control, i), timeout=2.0) as client:
                    replies.append(client.request(req))
            except (ControlUnavailable, OSError):
                continue
            if once and isinstance(replies[-1], cp.Ok):
                break
        return replies

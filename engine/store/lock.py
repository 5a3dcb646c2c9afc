"""One engine per store: an exclusive flock on ``volley.lock`` in the store's directory.

``volley run`` takes the lock for its whole life (:meth:`StoreLock.acquire`);
a second engine on the same store gets :class:`StoreLocked` naming the pid
written in the file. The kernel drops the lock when the holder's last
descriptor closes, so a killed engine never leaves a stale lock behind.

With ``[engine] processes > 1`` the supervisor takes the lock and its engine
processes share it: each is started with the locked descriptor (its number in
``VOLLEY_STORE_LOCK_FD``) and adopts it (:meth:`StoreLock.inherit`). A flock
belongs to the open file description, so the children hold the same lock and
it lasts while any of them runs. Only the lock's first taker may put back what
a crash left in flight (``Store.recover_inflight`` asks for the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from engine.store.errors import StoreError

LOCK_NAME = "volley.lock"
INHERITED_FD = "VOLLEY_STORE_LOCK_FD"  # in an engine process's environment


class StoreLocked(StoreError):
    """Another engine holds the store."""

    def __init__(self, path: Path, pid: int) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"{path}: the store is in use by another engine ({who}); one engine per store"
        )
        self.pid = pid


class StoreLock:
    """A held lock on one store directory; ``inherited``: adopted from the supervisor."""

    def __init__(self, store: Path, fd: int, *, inherited: bool = False) -> None:
        self.store = store
        self.fd = fd
        self.inherited = inherited

    @classmethod
    def acquire(cls, store: str | os.PathLike[str]) -> StoreLock:
        """Take the store's lock, creating the directory (0700) and lock file (0600)."""
        path = Path(store)
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's lock file: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StoreLocked(path, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @classmethod
    def inherit(cls, store: str | os.PathLike[str], fd: int) -> StoreLock:
        """Adopt the lock our supervisor took: ``fd`` must be that store's locked file."""
        path = Path(store)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path / LOCK_NAME))
        except OSError as exc:
            raise StoreError(f"{path}: no store lock to inherit (fd {fd}): {exc}") from None
        if not same:
            raise StoreError(f"{path}: fd {fd} is not this store's lock file")
        try:  # the same open file description: succeeds only if it holds the lock
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreLocked(path, _read_pid(fd)) from None
        os.set_inheritable(fd, False)
        return cls(path, fd, inherited=True)

    @classmethod
    def from_environment(cls, store: str | os.PathLike[str]) -> StoreLock | None:
        """The supervisor's lock when this is one of its engine processes, else None."""
        raw = os.environ.get(INHERITED_FD, "")
        return cls.inherit(store, int(raw)) if raw.isdigit() else None

    def covers(self, store: str | os.PathLike[str]) -> bool:
        """Whether this lock is the one of ``store`` (the same directory)."""
        try:
            return os.path.samefile(self.store, store) and self.fd >= 0
        except OSError:
            return False

    def release(self) -> None:
        if self.fd >= 0:
            if not self.inherited:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int:
    try:
        raw = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return 0
    return int(raw) if raw.isdigit() else 0

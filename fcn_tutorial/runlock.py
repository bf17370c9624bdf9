"""One run per run folder: ``run.lock`` holds the owner's process id while a run trains there.

:func:`fcn_tutorial.run.train` takes the lock before it writes anything and gives it back when it ends,
however it ends (an error, Ctrl-C). A second run into the same folder, a new one or ``--resume``, is
refused with a message naming the owner. A lock whose process is gone (``kill -9``, a crash, a
restarted Colab runtime) is *stale*: the next run detects it and takes the folder over.

The lock file is created with ``O_CREAT | O_EXCL``, which exactly one process wins. It holds
the owner's host, process id and start time: a lock from this host whose process no longer exists, or
whose process id now belongs to a process started later, is stale. A lock from another host (a shared
drive) cannot be checked, so it is respected; its message says how to remove it.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with RunFolderLock(folder) as lock:
...     lock.path.name
'run.lock'
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["LOCK_NAME", "RunFolderLock", "RunFolderBusyError"]

LOCK_NAME = "run.lock"


class RunFolderBusyError(FileExistsError):
    """Another live process owns the run folder."""


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of proc(5); the name in ( ) may hold spaces


def _alive(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` (a lock's content) may still be running."""
    if owner.get("host") != socket.gethostname():
        return True  # cannot be checked from here
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    started = owner.get("process_start")
    return started is None or _process_start(pid) in (None, started)


class RunFolderLock:
    """``with RunFolderLock(folder):`` owns ``folder/run.lock`` for the duration of the block."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.held = False
        self.took_over: dict | None = None  # the stale lock this one replaced, if any

    def acquire(self) -> RunFolderLock:
        """Take the lock, or take over a stale one; raise :class:`RunFolderBusyError` if a live run holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._create():
            self.held = True
            return self
        owner = self._read()
        if owner is None and self._age() < 5.0:  # being written by the process that just created it
            raise self._busy({})
        if owner is not None and _alive(owner):
            raise self._busy(owner)
        # Stale: remove it and try once more. Two processes taking over at once could both remove and
        # create; each re-reads the lock after a moment, and only the one whose content is there stays.
        self.path.unlink(missing_ok=True)
        if not self._create():
            raise self._busy(self._read() or {})
        time.sleep(0.2)
        if self._read() != self.owner:
            raise self._busy(self._read() or {})
        self.held, self.took_over = True, owner or {}
        return self

    def release(self) -> None:
        """Remove the lock file if this object still owns it."""
        if self.held and self._read() == self.owner:
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(self.owner) + "\n")
            file.flush()
            os.fsync(file.fileno())
        return True

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _read(self) -> dict | None:
        """The lock's content; ``None`` if it is gone or unreadable (a half-written lock is stale)."""
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def _busy(self, owner: dict) -> RunFolderBusyError:
        who = f"process {owner.get('pid', '?')} on {owner.get('host', '?')} (since {owner.get('since', '?')})"
        return RunFolderBusyError(
            f"run folder {self.folder} is in use by {who}; wait for that run to end or stop it, or choose "
            f"another --out. If no run is using it, delete {self.path}"
        )

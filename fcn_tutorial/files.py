"""Writing files so that nothing is ever half-written.

Every file the package writes (checkpoints, ``history.csv``, JSON results, split lists, downloads)
goes through :func:`atomic_write`: the bytes go to a temporary file in the same folder, are flushed to
disk (``fsync``), and the temporary file is renamed over the target with :func:`os.replace`. A crash
or ``kill -9`` therefore leaves the old file or the new one, never a mixture. Temporary files are
named ``.<name>.<random>.tmp``, so :func:`remove_stale_temporaries` can find and remove the ones a
killed process left behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "atomic_write_bytes",
    "fsync_directory",
    "remove_stale_temporaries",
    "OutputClaims",
]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "a.bin", lambda file: file.write(b"abc")).read_bytes()
    b'abc'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda file: file.write(data))


def fsync_directory(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the ``.<name>.*.tmp`` files that an interrupted :func:`atomic_write` left in ``folder``.

    Call it only where no other process is writing (e.g. in a run folder this process has locked).
    Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*.tmp" if name else ".*.tmp"
    removed = []
    for path in folder.glob(pattern):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class OutputClaims:
    """The files one run of a tool may write: never a file it did not write itself, never one twice.

    ``claim(path)`` before writing ``path``. It refuses (``FileExistsError``) a file that already
    exists and was not claimed in this run, unless ``overwrite=True``, and it refuses (``ValueError``)
    a second claim on the same path, e.g. ``x.jpg`` and ``x.png`` both mapping to ``x_mask.png``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> claims = OutputClaims()
    >>> claims.claim(folder / "a.png").name
    'a.png'
    >>> claims.claim(folder / "a.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: two outputs of this run would both be written to ...a.png; rename one of the inputs
    """

    def __init__(self, *, overwrite: bool = False):
        self.overwrite = overwrite
        self.claimed: set[Path] = set()

    def claim(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        key = path.resolve()
        if key in self.claimed:
            raise ValueError(f"two outputs of this run would both be written to {path}; rename one of the inputs")
        if path.exists() and not self.overwrite:
            raise FileExistsError(
                f"{path} already exists and was not written by this run; pass --overwrite to replace it, "
                f"or choose another output folder"
            )
        self.claimed.add(key)
        return path

"""Checkpoints that survive interruption and never run code when loaded.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dictionaries. It is
written *atomically* (:mod:`fcn_tutorial.files`): :func:`save_checkpoint` writes a temporary file in the
same folder, flushes it to disk (``fsync``) and renames it over the old file with :func:`os.replace`, so
a crash leaves either the old checkpoint or the new one, never half a file. :func:`load_checkpoint` uses
``torch.load(weights_only=True)``, which only rebuilds tensors and plain Python values: a file that
carries pickled code is refused with a :class:`ValueError` and its code never runs.

The random number generators (Python, NumPy, torch, CUDA) are stored too, as tensors and plain
values, so that :func:`restore_rng_state` continues a run exactly where it stopped.

Training writes its checkpoints through a :class:`CheckpointWriter`: a copy of the state is taken at
once, and one background thread writes it while the next epoch trains, so the disk never holds the
loop up.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointWriter", "rng_state", "restore_rng_state"]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (:func:`fcn_tutorial.files.atomic_write`: temporary file, ``fsync``,
    ``os.replace``).

    A write that fails (a full disk, a folder without write permission) is an :class:`OSError` that
    names ``path``; the old checkpoint at ``path`` is left as it was.
    """
    try:
        return atomic_write(path, lambda file: torch.save(state, file))
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, f"could not write the checkpoint ({error.strerror})", str(path)) from None
    except RuntimeError as error:  # torch.save's own writer: "unexpected pos ..." when the disk fills up
        if "unexpected pos" not in str(error) and "write" not in str(error).lower():
            raise
        raise OSError(
            errno.ENOSPC, "could not write the checkpoint (torch.save stopped part-way: is the disk full?)", str(path)
        ) from None


def _copied(value: Any) -> Any:
    """``value`` with every tensor in it cloned: a snapshot that later in-place updates cannot change."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(item) for item in value)
    return value


class CheckpointWriter:
    """Write checkpoints in a background thread, in the order they were handed over.

    :meth:`submit` clones the state's tensors first (the next training step changes the weights and
    Adam's moments in place), then one thread writes the snapshot with :func:`save_checkpoint`, atomically,
    while training goes on. At most ``max_pending`` snapshots wait in memory; the next :meth:`submit`
    waits for older ones. A failed write is raised by the next :meth:`submit` or by :meth:`wait`. Use it
    as a context manager: leaving the block waits for every write, even when training fails or is
    interrupted, so the checkpoint of the last finished epoch is never lost.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> weights = torch.zeros(2)
    >>> with CheckpointWriter() as writer:
    ...     writer.submit({"w": weights}, folder / "last.pt")
    ...     weights += 1                                   # training goes on: the snapshot is unchanged
    >>> load_checkpoint(folder / "last.pt")["w"]
    tensor([0., 0.])
    """

    def __init__(self, max_pending: int = 2):
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")
        self._pending: list[Future] = []

    def submit(self, state: dict[str, Any], path: str | os.PathLike) -> None:
        """Snapshot ``state`` now and write it to ``path`` in the background."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.pop(0).result()  # raises the error of a failed write
        self._pending.append(self._executor.submit(save_checkpoint, _copied(state), path))

    def wait(self) -> None:
        """Block until every submitted checkpoint is on disk; raise the first failed write's error."""
        pending, self._pending = self._pending, []
        errors = []
        for future in pending:
            try:
                future.result()
            except Exception as error:  # noqa: BLE001 - every write is waited for before the first error is raised
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None:
                self.wait()
            else:  # already failing: finish the writes, but let the first error through
                try:
                    self.wait()
                except Exception:  # noqa: BLE001
                    pass
        finally:
            self._executor.shutdown(wait=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse files that hold anything but data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {path} holds something other than tensors and plain values (refused by "
            f"torch.load(weights_only=True): {first_line}); only load checkpoints you trust"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"checkpoint {path} is not a readable torch checkpoint ({error})") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, expected a dictionary")
    return state


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's generators (and CUDA's, if any) as plain data."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the generator states saved by :func:`rng_state`."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

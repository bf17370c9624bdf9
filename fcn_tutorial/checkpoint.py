"""Checkpoints that survive interruption and never run code when loaded.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dictionaries. It is
written *atomically* (:mod:`fcn_tutorial.files`): :func:`save_checkpoint` writes a temporary file in the
same folder, flushes it to disk (``fsync``) and renames it over the old file with :func:`os.replace`, so
a crash leaves either the old checkpoint or the new one, never half a file. :func:`load_checkpoint` uses
``torch.load(weights_only=True)``, which only rebuilds tensors and plain Python values: a file that
carries pickled code is refused with a :class:`ValueError` and its code never runs.

The random number generators (Python, NumPy, torch, CUDA) are stored too, as tensors and plain
values, so that :func:`restore_rng_state` continues a run exactly where it stopped.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "restore_rng_state"]


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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse files that hold anything but data."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a checkpoint file in it, such as {path / 'best.pt'}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): an interrupted copy or download?")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise ValueError(f"{path} is not a PyTorch checkpoint: torch.save writes zip archives, and this is not one")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {path} holds something other than tensors and plain values (refused by "
            f"torch.load(weights_only=True): {first_line}); only load checkpoints you trust"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever the reader trips on, the file is the problem
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"checkpoint {path} is not a readable torch checkpoint ({reason})") from None
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

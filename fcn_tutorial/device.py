"""Choosing the device: ``"auto"`` means the fastest one this machine has.

Every command and API function that takes a ``device`` accepts ``"auto"`` (the default),
``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``; a device that is not there is a clear error.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "best_device_name"]


def best_device_name() -> str:
    """``"cuda"`` if a CUDA GPU is available, else ``"mps"`` (Apple), else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` for ``device``; ``"auto"`` or ``None`` picks :func:`best_device_name`.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device(best_device_name())
    try:
        resolved = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was asked for, but this machine has no CUDA GPU; use --device auto or cpu"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {name!r} was asked for, but MPS is not available here; use --device auto or cpu")
    elif resolved.type != "cpu":
        raise ValueError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return resolved

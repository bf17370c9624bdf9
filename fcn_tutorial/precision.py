"""Mixed precision: which autocast dtype a run uses, and whether it needs a gradient scaler.

``bf16`` has fp32's range, so it never needs loss scaling; ``fp16`` does, on any device. Only the
network runs in the lower precision: inputs are prepared in fp32 and logits are cast back to fp32
before the loss, the upsampling to full size and the metrics.
"""

from __future__ import annotations

import torch

__all__ = ["AMP_CHOICES", "cpu_supports_bf16", "precision_plan"]

AMP_CHOICES = ("none", "bf16", "fp16", "auto")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision_plan(
    device_type: str, amp: str, *, bf16_supported: bool | None = None
) -> tuple[torch.dtype | None, bool]:
    """Which autocast dtype (``None``: full fp32) and whether a ``GradScaler`` is needed.

    ``auto`` picks bf16 where the hardware has it natively (recent GPUs; CPUs with AVX512-BF16 or AMX, where
    it trains about twice as fast as fp32, see ``benchmarks/train.py``), else fp16 with a scaler on CUDA,
    and fp32 elsewhere (``none`` is always fp32).

    >>> precision_plan("cpu", "none")
    (None, False)
    >>> precision_plan("cuda", "fp16", bf16_supported=True)
    (torch.float16, True)
    >>> precision_plan("cpu", "auto", bf16_supported=True)
    (torch.bfloat16, False)
    """
    if amp not in AMP_CHOICES:
        raise ValueError(f"--amp must be none, bf16, fp16 or auto, got {amp!r}")
    if bf16_supported is None:
        if device_type == "cuda":
            bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        else:
            bf16_supported = device_type == "cpu" and cpu_supports_bf16()
    if amp == "none":
        return None, False
    if amp == "auto":
        if bf16_supported:
            return torch.bfloat16, False
        return (torch.float16, True) if device_type == "cuda" else (None, False)
    if amp == "bf16":
        if not bf16_supported:
            raise ValueError(f"--amp bf16: this {device_type} has no native bfloat16 support; use --amp none")
        return torch.bfloat16, False
    return torch.float16, True

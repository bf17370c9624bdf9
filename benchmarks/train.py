"""Training throughput of FCN-8s on this machine, and how close it gets to the matrix-multiply peak.

For each network preset (paper, original, compact; width 1.0) and each variant (fp32, channels-last,
bf16 autocast, bf16 + channels-last) this times full training steps (forward, cross-entropy,
backward, Adam) on 224 x 224 crops in batches of 10, as the original recipe trains. The floating-
point work of one step is counted by ``torch.utils.flop_counter.FlopCounterMode``; dividing by the
step time gives the achieved GFLOP/s, shown as a fraction of this machine's fp32 (and bf16) matrix-
multiply peak, measured in the same run with large ``torch.mm`` calls. Everything is measured side by
side in one process, so the ratios are comparable even when the absolute numbers are noisy (other
processes sharing the CPU slow every line down alike only if they run all the time).

    .venv/bin/python benchmarks/train.py                       # everything: 12 steps, ~10 min on 2 idle cores
    .venv/bin/python benchmarks/train.py --presets compact --steps 3
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from fcn_tutorial.engine import segmentation_loss
from fcn_tutorial.models import build_model
from fcn_tutorial.precision import cpu_supports_bf16

VARIANTS = {  # name: (autocast dtype, channels-last)
    "fp32": (None, False),
    "channels-last": (None, True),
    "bf16": (torch.bfloat16, False),
    "bf16+channels-last": (torch.bfloat16, True),
}


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """GFLOP/s of ``n x n`` matrix products in ``dtype``, best of repeated timings over ``seconds``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def training_step(model, optimizer, images, masks, amp_dtype):
    with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(images)
    loss = segmentation_loss(logits, masks)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def measure(
    preset: str, variant: str, *, batch: int, size: int, steps: int, width: float = 1.0, batch_norm: bool = False
) -> dict:
    """Images/s and GFLOP per step of training FCN-8s (``preset``, ``width``) in ``variant``."""
    amp_dtype, channels_last = VARIANTS[variant]
    torch.manual_seed(0)
    model = build_model("fcn8s", 2, preset=preset, width=width, batch_norm=batch_norm).train()
    images, masks = torch.rand(batch, 3, size, size), torch.randint(0, 2, (batch, size, size))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for step in range(steps):
        start = time.perf_counter()
        if step == 0:  # the first step also counts the work (FlopCounterMode adds little to a seconds-long step)
            with FlopCounterMode(display=False) as counter:
                training_step(model, optimizer, images, masks, amp_dtype)
        else:
            training_step(model, optimizer, images, masks, amp_dtype)
        times.append(time.perf_counter() - start)
    seconds = sum(times) / len(times)
    flops = counter.get_total_flops()
    return {
        "preset": preset,
        "variant": variant,
        "images_per_s": batch / seconds,
        "step_s": seconds,
        "gflop_per_step": flops / 1e9,
        "gflops": flops / seconds / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "original", "compact"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--steps",
        type=int,
        default=1,
        help="timed steps per line (the first includes one-time set-up: use 2+ on an idle machine)",
    )
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0, help="e.g. 0.25 with --batch-norm: the CPU recipe")
    parser.add_argument("--batch-norm", action="store_true")
    args = parser.parse_args()

    bf16 = cpu_supports_bf16()
    variants = [v for v in args.variants if bf16 or VARIANTS[v][0] is None]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {bf16}")
    peak32 = matmul_peak(torch.float32)
    peak16 = matmul_peak(torch.bfloat16) if bf16 else None
    print(f"matrix-multiply peak: fp32 {peak32:.1f} GFLOP/s" + (f", bf16 {peak16:.1f} GFLOP/s" if peak16 else ""))
    print(
        f"FCN-8s (width {args.width:g}{', batch norm' if args.batch_norm else ''}) training, batch {args.batch}, "
        f"{args.size}x{args.size}, mean of {args.steps} step(s)"
    )
    header = (
        f"{'preset':8} {'variant':19} {'img/s':>7} {'s/step':>7} {'GFLOP/step':>10} {'GFLOP/s':>8} "
        f"{'%fp32 pk':>8} {'%bf16 pk':>8} {'x fp32':>7}"
    )
    print(header)
    results = {}
    for preset in args.presets:
        for variant in variants:
            r = measure(
                preset,
                variant,
                batch=args.batch,
                size=args.size,
                steps=args.steps,
                width=args.width,
                batch_norm=args.batch_norm,
            )
            results[preset, variant] = r
            base = results.get((preset, "fp32"))
            speedup = r["images_per_s"] / base["images_per_s"] if base else float("nan")
            of16 = f"{100 * r['gflops'] / peak16:7.1f}%" if peak16 and VARIANTS[variant][0] else f"{'-':>8}"
            print(
                f"{preset:8} {variant:19} {r['images_per_s']:7.2f} {r['step_s']:7.2f} {r['gflop_per_step']:10.1f} "
                f"{r['gflops']:8.1f} {100 * r['gflops'] / peak32:7.1f}% {of16} {speedup:7.2f}",
                flush=True,
            )
    if ("paper", "fp32") in results:
        print("throughput relative to paper fp32:")
        base = results["paper", "fp32"]["images_per_s"]
        for (preset, variant), r in results.items():
            print(f"  {preset:8} {variant:19} {r['images_per_s'] / base:6.2f}x")
    print("Numbers are noisy when other processes share the CPU; ratios within this run are comparable.")


if __name__ == "__main__":
    main()

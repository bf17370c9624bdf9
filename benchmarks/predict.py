"""Inference speed: frames per second of ``fcn-tutorial predict``'s network path in fp32, bf16 and channels-last.

Every variant segments the same 288 x 384 frames through :func:`fcn_tutorial.scoring.predict` (the
path of ``fcn-tutorial predict``: antialiased resize to the run's size in fp32, the network, bilinear
upsampling of the scores to the frame, argmax), one frame at a time. The variants take turns, frame
by frame, so a machine shared with other work slows them alike and their ratios stay comparable.
With a checkpoint, the masks of each variant are also compared with the fp32 masks (the share of
pixels that differ); without one, a randomly initialised network of the README's CPU recipe is used
(its score layers random too, so that its masks hold both classes)::

    FCN_TUTORIAL_DATA=../shared/data .venv/bin/python benchmarks/predict.py
    FCN_TUTORIAL_DATA=../shared/data .venv/bin/python benchmarks/predict.py --checkpoint runs/kvasir-cpu/best.pt
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from fcn_tutorial.evaluate import load_model
from fcn_tutorial.models import build_model
from fcn_tutorial.precision import cpu_supports_bf16
from fcn_tutorial.scoring import predict

VARIANTS = {  # name: (autocast dtype, channels-last, flip TTA)
    "fp32": (None, False, False),
    "channels-last": (None, True, False),
    "bf16": (torch.bfloat16, False, False),
    "bf16+channels-last": (torch.bfloat16, True, False),
    "bf16+channels-last+tta": (torch.bfloat16, True, True),
}


def frames(count: int, height: int, width: int) -> list[torch.Tensor]:
    """``count`` Kvasir-SEG test frames resized to ``height x width`` (random frames when the data is absent)."""
    from torchvision.transforms.v2 import functional as TF

    try:
        from fcn_tutorial.data import get_dataset

        dataset = get_dataset("kvasir-seg", "test")
        return [
            TF.resize(dataset[i][0].as_subclass(torch.Tensor), [height, width], antialias=True)
            for i in range(min(count, len(dataset)))
        ]
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"no Kvasir-SEG frames ({error}); random frames instead")
        return [torch.rand(3, height, width) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a best.pt (default: an untrained compact FCN-8s, width 0.25, BN)")
    parser.add_argument("--resize", type=int, default=256, help="network input without a checkpoint (pixels)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, nargs=2, default=[288, 384], metavar=("H", "W"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()

    if args.checkpoint:
        model, config = load_model(args.checkpoint, "cpu")
        size, normalize = config.resize, config.normalize
    else:
        torch.manual_seed(0)
        model = build_model("fcn8s", 2, preset="compact", width=0.25, batch_norm=True).eval()
        with torch.no_grad():  # score layers start at zero: random ones make masks of both classes to compare
            for name in ("score_fr", "score_pool4", "score_pool3"):
                torch.nn.init.normal_(getattr(model, name).weight, std=0.05)
        size, normalize = args.resize, False
    plain, channels_last = model, copy.deepcopy(model).to(memory_format=torch.channels_last)
    variants = [v for v in args.variants if VARIANTS[v][0] is None or cpu_supports_bf16()]
    images = frames(args.frames, *args.size)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_supports_bf16()}; "
        f"{len(images)} frames of {args.size[0]} x {args.size[1]}, network input {size or 'full size'}"
    )

    seconds: dict[str, list[float]] = {v: [] for v in variants}
    masks: dict[str, list[torch.Tensor]] = {v: [] for v in variants}
    for warm_up in (True, False):
        for image in images[:2] if warm_up else images:
            for variant in variants:
                amp_dtype, cl, tta = VARIANTS[variant]
                started = time.perf_counter()
                mask = predict(
                    channels_last if cl else plain,
                    image,
                    size=size,
                    normalize=normalize,
                    amp_dtype=amp_dtype,
                    channels_last=cl,
                    tta=tta,
                )
                if not warm_up:
                    seconds[variant].append(time.perf_counter() - started)
                    masks[variant].append(mask)

    base = 1 / statistics.median(seconds["fp32"]) if "fp32" in seconds else None
    print(f"{'variant':24} {'frames/s':>9} {'x fp32':>7} {'pixels != fp32':>15}")
    for variant in variants:
        fps = 1 / statistics.median(seconds[variant])
        differ = (
            (
                sum((a != b).sum().item() for a, b in zip(masks[variant], masks["fp32"]))
                / sum(m.numel() for m in masks["fp32"])
            )
            if "fp32" in masks
            else float("nan")
        )
        print(f"{variant:24} {fps:9.2f} {fps / base if base else float('nan'):7.2f} {100 * differ:14.3f}%")
    print("Medians over frames; the variants take turns frame by frame, so their ratios are comparable.")


if __name__ == "__main__":
    main()

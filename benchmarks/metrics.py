"""Time fcn_tutorial.metrics.ConfusionMatrix against torchmetrics' MulticlassJaccardIndex, side by side.

The workload is the size of the original test split: 182 label maps of 288 x 384 pixels, 2 classes and
a void label (255) around the endoscope's round view. Both metrics see the same tensors, one image
per update as in an evaluation loop (and, second, the whole split as one batch); each repetition runs
ours then theirs, and we report the median time of each and their ratio.

    .venv/bin/python benchmarks/metrics.py [--repeats 5] [--images 182]

Target: ours takes at most 0.3x the time of torchmetrics, in both runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.classification import MulticlassJaccardIndex

from fcn_tutorial.metrics import ConfusionMatrix

VOID = 255
TARGET_RATIO = 0.3


def make_split(n_images: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks with one elliptic polyp and a void border, and predictions that get about 10% wrong."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.linspace(-1, 1, height).view(-1, 1)
    x = torch.linspace(-1, 1, width).view(1, -1)
    void = (x**2 + y**2) > 1.2  # the dark corners outside the endoscope's view
    centres = torch.rand(n_images, 2, 1, 1, generator=generator) - 0.5
    radii = 0.1 + 0.3 * torch.rand(n_images, 1, 1, generator=generator)
    polyp = ((x - centres[:, 0]) ** 2 + (y - centres[:, 1]) ** 2) < radii**2
    targets = polyp.long().masked_fill(void, VOID)
    wrong = torch.rand(n_images, height, width, generator=generator) < 0.1
    predictions = torch.where(wrong, 1 - polyp.long(), polyp.long())
    return predictions, targets


def time_once(metric, predictions: torch.Tensor, targets: torch.Tensor, per_image: bool) -> float:
    start = time.perf_counter()
    if per_image:
        for prediction, target in zip(predictions, targets):
            metric.update(prediction[None], target[None])
    else:
        metric.update(predictions, targets)
    metric.compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=182)
    parser.add_argument("--height", type=int, default=288)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    predictions, targets = make_split(args.images, args.height, args.width)
    print(
        f"{args.images} label maps of {args.height}x{args.width}, 2 classes + void {VOID}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}"
    )

    ours = ConfusionMatrix(n_classes=2, ignore_index=VOID)
    theirs = MulticlassJaccardIndex(num_classes=2, average="none", ignore_index=VOID)
    ours.update(predictions[:1], targets[:1])  # warm-up
    theirs.update(predictions[:1], targets[:1])

    met = True
    for per_image in (True, False):
        times = {"ours": [], "torchmetrics": []}
        for _ in range(args.repeats):
            for name, metric in (("ours", ours), ("torchmetrics", theirs)):
                metric.reset()
                times[name].append(time_once(metric, predictions, targets, per_image))
        ours_s, theirs_s = statistics.median(times["ours"]), statistics.median(times["torchmetrics"])
        ratio = ours_s / theirs_s
        # Same data, same result: the per-class Jaccard must agree.
        ours_jaccard = torch.tensor(ours.compute().jaccard, dtype=torch.float64)
        agree = torch.allclose(ours_jaccard, theirs.compute().double(), atol=1e-6)
        label = "one image per update" if per_image else "whole split in one update"
        print(
            f"{label:27s} ours {ours_s * 1e3:8.1f} ms   torchmetrics {theirs_s * 1e3:8.1f} ms   "
            f"ratio {ratio:.3f}   same Jaccard: {agree}"
        )
        met = met and ratio <= TARGET_RATIO and agree
    print(f"target: ours <= {TARGET_RATIO}x torchmetrics' time in both runs: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()

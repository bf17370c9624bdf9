"""The decision threshold of a two-class network, chosen on the validation split.

A two-class network calls a pixel polyp where the polyp probability ``p`` is above 0.5: that is what
the argmax of its two scores does. Nothing makes 0.5 the best choice. A network trained on frames
where most pixels are background often hedges at the polyp's rim and draws every polyp a little too
small; calling a pixel polyp from ``p > 0.3`` then adds the rim back and raises the Jaccard.

The threshold is a setting like the learning rate: choose it on the **validation** split and report the
**test** split with it, never the other way round. :class:`ThresholdSweep` makes that cheap. One pass
over the split records, for every image, how many polyp and how many background pixels fall between
two neighbouring candidate thresholds; the confusion matrix at *every* candidate follows by summing
those counts, with no second pass through the network::

    fcn-tutorial threshold runs/kvasir-cpu/best.pt --split val --tta
    fcn-tutorial evaluate runs/kvasir-cpu/best.pt --split test --tta --threshold 0.3

>>> import torch
>>> sweep = ThresholdSweep(thresholds=(0.3, 0.5, 0.7))
>>> probability = torch.tensor([[0.2, 0.4, 0.6, 0.8]])   # one image of 1 x 4 pixels
>>> truth = torch.tensor([[0, 1, 1, 1]])
>>> logits = torch.stack([torch.zeros(1, 4), (probability / (1 - probability)).log()])  # softmax gives back p
>>> sweep.update(logits, truth)
>>> [round(j, 3) for j in sweep.jaccard()]          # p > 0.3 finds all three polyp pixels
[1.0, 0.667, 0.333]
>>> sweep.best()
0.3
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .data import VOID
from .evaluate import SPLIT_CHOICES, add_network_input_arguments
from .metrics import _jaccard  # per-class TP / (TP + FP + FN) of a stack of confusion matrices
from .scoring import check_threshold

__all__ = [
    "THRESHOLDS",
    "ThresholdSweep",
    "sweep_dataset",
    "checkpoint_sweep",
    "sweep_checkpoint",
    "plot_sweep",
    "register",
]

THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05, 0.10, ..., 0.95


class ThresholdSweep:
    """Confusion matrices of a two-class network at many decision thresholds, from one pass over a split.

    For each image, ``counts[image, truth, k]`` holds the pixels of true class ``truth`` whose polyp
    probability is above exactly ``k`` of the (sorted) thresholds. At threshold ``k`` the network calls
    polyp the pixels above it: those in the buckets after ``k``. Void pixels are not counted.
    """

    def __init__(self, thresholds: Sequence[float] = THRESHOLDS, ignore_index: int | None = VOID):
        if not thresholds:
            raise ValueError("give at least one threshold")
        for threshold in thresholds:
            check_threshold(threshold, 2)
        self.thresholds = sorted(float(t) for t in thresholds)
        self.ignore_index = ignore_index
        self._boundaries = torch.tensor(self.thresholds, dtype=torch.float32)
        self._images: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add frames: ``2 x H x W`` logits with an ``H x W`` mask, or ``N x 2 x H x W`` with ``N x H x W``."""
        if logits.ndim == 3:
            logits, target = logits[None], target[None]
        if logits.ndim != 4 or logits.shape[1] != 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f"expected N x 2 x H x W logits and N x H x W masks, "
                f"got {tuple(logits.shape)} and {tuple(target.shape)}"
            )
        if not torch.isfinite(logits).all():
            raise ValueError("logits are NaN or infinite: no probability can be read from them")
        probability = logits.detach().float().softmax(dim=1)[:, 1].cpu().contiguous()
        # The number of thresholds strictly below p: p > threshold[k] exactly when bucket > k.
        buckets = torch.bucketize(probability, self._boundaries, right=False)
        target = target.as_subclass(torch.Tensor).cpu().long()
        n_buckets = len(self.thresholds) + 1
        for image_buckets, image_truth in zip(buckets, target):
            keep = image_truth != self.ignore_index if self.ignore_index is not None else image_truth >= 0
            truth = image_truth[keep]
            if ((truth < 0) | (truth > 1)).any():
                raise ValueError(f"masks must hold 0 (background), 1 (polyp) or void, got {truth.unique().tolist()}")
            counts = torch.bincount(truth * n_buckets + image_buckets[keep], minlength=2 * n_buckets)
            self._images.append(counts.view(2, n_buckets))

    @property
    def counts(self) -> torch.Tensor:
        """``images x 2 x (thresholds + 1)`` pixel counts, as described in the class."""
        if not self._images:
            return torch.zeros(0, 2, len(self.thresholds) + 1, dtype=torch.int64)
        return torch.stack(self._images)

    def subset(self, images: Sequence[int]) -> ThresholdSweep:
        """The sweep of some of the images only (by their order of arrival), e.g. to choose a threshold on one
        half of a split and score it on the other."""
        part = ThresholdSweep(self.thresholds, ignore_index=self.ignore_index)
        part._images = [self._images[i] for i in images]
        return part

    def confusions(self, per_image: bool = False) -> torch.Tensor:
        """``thresholds x 2 x 2`` confusion matrices (rows truth, columns prediction), summed over the images.

        With ``per_image``: ``images x thresholds x 2 x 2``.
        """
        counts = self.counts if per_image else self.counts.sum(dim=0, keepdim=True)
        # Pixels called polyp at threshold k: buckets k + 1 and up (a reversed cumulative sum).
        above = counts.flip(-1).cumsum(-1).flip(-1)[..., 1:]  # N x 2 x T
        total = counts.sum(-1, keepdim=True)  # N x 2 x 1
        called_polyp = above.transpose(1, 2)  # N x T x 2 (truth)
        called_background = (total - above).transpose(1, 2)
        matrices = torch.stack([called_background, called_polyp], dim=-1)  # N x T x truth x prediction
        return matrices if per_image else matrices[0]

    def jaccard(self) -> list[float]:
        """Polyp Jaccard over the whole split at each threshold (one confusion matrix, as everywhere in the book)."""
        return _jaccard(self.confusions())[:, 1].tolist()

    def per_image_jaccard(self) -> list[float]:
        """Polyp Jaccard of each image, averaged over the images with polyp in truth or prediction, per threshold."""
        return _jaccard(self.confusions(per_image=True))[..., 1].nanmean(dim=0).tolist()

    def best(self) -> float:
        """The threshold with the highest whole-split polyp Jaccard; of equals, the one closest to 0.5."""
        scores = self.jaccard()
        if not self._images or all(score != score for score in scores):
            raise ValueError("no pixels were counted: add frames with their masks first")
        ranked = sorted(zip(self.thresholds, scores), key=lambda pair: (-_finite(pair[1]), abs(pair[0] - 0.5)))
        return ranked[0][0]

    def report(self) -> dict[str, Any]:
        """Plain JSON values: the thresholds, both Jaccards at each, and the best threshold."""
        return {
            "thresholds": self.thresholds,
            "jaccard": self.jaccard(),
            "per_image_jaccard": self.per_image_jaccard(),
            "best": self.best(),
            "images": len(self._images),
        }


def _finite(value: float) -> float:
    return value if value == value else -1.0


@torch.no_grad()
def sweep_dataset(
    model: torch.nn.Module,
    dataset,
    device: torch.device,
    *,
    input_size: int | None = None,
    normalize: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    tta: bool = False,
    batch_size: int = 8,
    thresholds: Sequence[float] = THRESHOLDS,
    progress: bool | None = None,
) -> ThresholdSweep:
    """Run ``model`` on every pair of ``dataset`` (full-size masks, as ``fcn-tutorial evaluate``) into a sweep."""
    from .data.loaders import make_eval_loader
    from .progress import progress_bar
    from .scoring import predict_logits

    sweep = ThresholdSweep(thresholds)
    model.eval()
    loader = make_eval_loader(dataset, batch_size=batch_size, num_workers=0, rank=0, world_size=1, pin_memory=False)
    for images, masks in progress_bar(loader, progress=progress, desc="threshold sweep", leave=False, unit="batch"):
        logits = predict_logits(
            model,
            images,
            size=input_size,
            normalize=normalize,
            amp_dtype=amp_dtype,
            channels_last=channels_last,
            device=device,
            tta=tta,
        )
        for frame_logits, mask in zip(logits, masks):
            sweep.update(frame_logits, mask)
    return sweep


def checkpoint_sweep(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "val",
    *,
    resize: int | str | None = "train",
    batch_size: int | None = None,
    device: str = "auto",
    amp: str = "none",
    channels_last: bool = False,
    tta: bool = False,
    thresholds: Sequence[float] = THRESHOLDS,
    progress: bool | None = None,
) -> tuple[ThresholdSweep, str]:
    """The :class:`ThresholdSweep` of ``checkpoint`` on ``split`` of ``data`` (default: the run's own data, val),
    and the data it swept.

    ``split``, ``resize``, ``amp`` and ``channels_last`` mean what they mean for
    :func:`~fcn_tutorial.evaluate.evaluate_checkpoint` (default: fp32 at the run's input size): choose the
    threshold with the settings you will score with.
    """
    from .evaluate import _input_size, prepare_scoring
    from .scoring import default_eval_batch_size

    model, config, dataset, data, target_device, amp_dtype = prepare_scoring(
        checkpoint,
        data,
        split,
        device=device,
        amp=amp,
        channels_last=channels_last,
        threshold=0.5,  # two classes only
        purpose="no threshold to choose",
    )
    sweep = sweep_dataset(
        model,
        dataset,
        target_device,
        input_size=_input_size(resize, config),
        normalize=config.normalize,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        tta=tta,
        batch_size=batch_size or default_eval_batch_size(target_device),
        thresholds=thresholds,
        progress=progress,
    )
    return sweep, data


def sweep_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "val",
    *,
    tta: bool = False,
    progress: bool | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """:meth:`ThresholdSweep.report` of :func:`checkpoint_sweep` (``settings``: its keyword arguments), with
    what was swept."""
    sweep, data = checkpoint_sweep(checkpoint, data, split, tta=tta, progress=progress, **settings)
    return {"checkpoint": str(checkpoint), "data": data, "split": split, "tta": tta, **sweep.report()}


def format_sweep(report: dict[str, Any]) -> str:
    """The sweep as a small table, the best threshold marked."""
    lines = [f"{report['checkpoint']} on {report['data']} / {report['split']} ({report['images']} images)"]
    lines.append("  threshold  polyp Jaccard  per image")
    for threshold, whole, per_image in zip(report["thresholds"], report["jaccard"], report["per_image_jaccard"]):
        mark = "  <- best" if threshold == report["best"] else ""
        lines.append(f"  {threshold:9.2f}  {whole:13.4f}  {per_image:9.4f}{mark}")
    return "\n".join(lines)


def plot_sweep(report: dict[str, Any], *, title: str | None = None):
    """Polyp Jaccard against the threshold, over the whole split and per image, argmax's 0.5 and the best marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(report["thresholds"], report["jaccard"], marker="o", markersize=3, label="whole split")
    ax.plot(report["thresholds"], report["per_image_jaccard"], marker="s", markersize=3, label="mean per image")
    ax.axvline(0.5, color="grey", linestyle=":", label="0.5 (argmax)")
    ax.axvline(report["best"], color="black", linestyle="--", label=f"best {report['best']}")
    ax.set(xlabel="decision threshold (polyp probability)", ylabel="polyp Jaccard", xlim=(0, 1))
    ax.set_title(title or f"{report.get('split', '')} split, {report['images']} images".strip(), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _run(args: argparse.Namespace) -> int:
    from .evaluate import check_loader_options, parse_resize

    resize = parse_resize(args.resize)
    check_loader_options(args.batch_size)
    report = sweep_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        tta=args.tta,
        resize=resize,
        batch_size=args.batch_size,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        progress=False if args.no_progress else None,
    )
    if args.plot:
        plot_sweep(report).savefig(args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(format_sweep(report))
    if args.plot:
        print(f"  plot: {args.plot}")
    if args.split == "test":
        print("  (chosen on the test split: report it on another one, or the score flatters the network)")
    print(f"  score the test split with it: {evaluate_command(args, report['best'])}")
    return 0


def evaluate_command(args: argparse.Namespace, threshold: float) -> str:
    """The ``fcn-tutorial evaluate`` that scores the test split with the settings the threshold was chosen with."""
    words = ["fcn-tutorial", "evaluate", str(args.checkpoint)]
    if args.data:
        words += ["--data", str(args.data)]
    if args.resize != "train":
        words += ["--resize", str(args.resize)]
    if args.amp != "none":
        words += ["--amp", args.amp]
    if args.channels_last:
        words.append("--channels-last")
    if args.tta:
        words.append("--tta")
    return " ".join(words + ["--threshold", f"{threshold:g}"])


def register(subparsers) -> None:
    """Add ``fcn-tutorial threshold`` to the command line."""
    parser = subparsers.add_parser(
        "threshold",
        help="choose a two-class network's decision threshold on the validation split",
        description="Polyp Jaccard at decision thresholds 0.05 to 0.95 from one pass over a split, and the best one. "
        "Give it the --resize, --amp and --channels-last you will score with: they are what the threshold is for.",
    )
    parser.add_argument("checkpoint", help="best.pt or last.pt of a two-class training run")
    parser.add_argument("--data", help="data set name or folder (default: the one the run trained on)")
    parser.add_argument(
        "--split",
        default="val",
        choices=SPLIT_CHOICES,
        help="the split to choose on: train, val, test, or all: every pair of the folder (default: val)",
    )
    parser.add_argument("--tta", action="store_true", help="average each frame with its flips, as evaluate --tta")
    add_network_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the sweep as JSON")
    parser.add_argument("--plot", help="also draw Jaccard against threshold into this image file (.png, .svg, ...)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

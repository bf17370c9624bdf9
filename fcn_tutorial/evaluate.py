"""Scoring a trained checkpoint on a split: ``load_model``, ``evaluate_checkpoint`` and ``fcn-tutorial evaluate``.

The scores are those of the original tutorial, accumulated over the whole split (one confusion
matrix), plus the Jaccard of each image averaged over images, which weighs small and large polyps
alike::

    fcn-tutorial evaluate runs/fcn8s/best.pt --data kvasir-seg --split val --json
    fcn-tutorial evaluate runs/fcn8s/best.pt --data my-labelled-frames/ --split all
    fcn-tutorial evaluate runs/fcn8s/best.pt --tta --threshold 0.3

``--threshold`` calls a pixel polyp where the network's polyp probability is above it, instead of taking
the argmax (0.5); choose it on the validation split with ``fcn-tutorial threshold``
(:mod:`fcn_tutorial.threshold`).

Masks are always scored at their full size, through :mod:`fcn_tutorial.scoring`: the network sees
each frame preprocessed exactly as in training (resized to the run's ``--resize`` with antialiasing,
normalised if the run was) and its scores are resized to the mask. A run's ``test.json`` holds the
same figures as ``fcn-tutorial evaluate --split test --json`` for its ``best.pt``. ``--split all``
scores every pair of a folder (``images/`` + ``masks/``), with no train/val/test split.

This module does not import the trainer: loading and scoring a checkpoint needs only the config,
the models and the data.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import TrainConfig, build_model_for
from .device import resolve_device
from .precision import AMP_CHOICES, precision_plan
from .scoring import check_threshold, default_eval_batch_size, preprocess, score_dataset

__all__ = ["load_model", "evaluate_checkpoint", "checkpoint_report", "all_pairs", "ResizedInput", "register"]

SPLIT_CHOICES = ("train", "val", "valid", "test", "all")


def load_model(checkpoint: str | Path, device: str | torch.device = "auto") -> tuple[nn.Module, TrainConfig]:
    """The network of a ``best.pt`` or ``last.pt`` with its weights, in eval mode, and its :class:`TrainConfig`.

    A run trained with ``--ema`` saved the weight average next to the raw weights; the average is
    returned, since it is what the run validated. Checkpoints of every earlier version load: their
    config is read with today's defaults for the options that did not exist yet. The stored config is
    validated like any other; the network is built without ImageNet weights (the checkpoint holds all of
    them), so loading never touches the network.
    """
    device = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location=device)
    if "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {checkpoint} has no 'model' and 'config' entries; is it a fcn-tutorial run?")
    try:
        config = TrainConfig.from_dict(state["config"])
    except ValueError as error:
        raise ValueError(f"checkpoint {checkpoint} holds an invalid config: {error}") from None
    model = build_model_for(config, pretrained_backbone=False)  # the weights are in the checkpoint: no download
    try:
        model.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {checkpoint} does not fit a {config.model} ({config.preset}): {first_line}"
        ) from None
    diverged = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if diverged:
        raise ValueError(
            f"checkpoint {checkpoint} holds NaN or infinite weights ({diverged[0]}, ...): its run diverged; "
            f"use a checkpoint of a run with a lower --lr"
        )
    return model.to(device).eval(), config


class ResizedInput(nn.Module):
    """Run ``model`` on the image resized to ``size`` (and normalised) and bring its scores back to the image's size.

    A module form of :func:`fcn_tutorial.scoring.predict_logits` for a batch of same-size frames.
    ``size`` is read as in :func:`fcn_tutorial.data.transforms.eval_transforms`: an int is the
    shorter side (keeping the aspect ratio), a pair is ``(height, width)``.
    """

    def __init__(self, model: nn.Module, size: int | tuple[int, int] | None, *, normalize: bool = False):
        super().__init__()
        self.model, self.size, self.normalize = model, size, normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        height, width = images.shape[-2:]
        logits = self.model(preprocess(images, size=self.size, normalize=self.normalize))
        return F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)


def _input_size(resize: int | str | None, config: TrainConfig) -> int | None:
    if resize == "train":
        return config.resize
    if resize in (None, "full"):
        return None
    return int(resize)


def all_pairs(data: str | Path, n_classes: int = 2):
    """Every pair of ``data``, with no split: a plain ``images/`` + ``masks/`` folder whole, else all its splits."""
    from torch.utils.data import ConcatDataset

    from .data import SegmentationFolder, registry

    path = Path(str(data)).expanduser()
    if path.is_dir() and registry.detect_layout(path) == "images-masks":
        return SegmentationFolder(path, n_classes=n_classes)
    parts = []
    for split in ("train", "val", "test"):
        try:
            parts.append(registry.get_dataset(str(data), split, n_classes=n_classes))
        except (FileNotFoundError, ValueError, KeyError):
            continue
    if not parts:
        raise FileNotFoundError(f"{data}: no pairs found (expected images/ + masks/, or train/val/test folders)")
    return ConcatDataset(parts)


def checkpoint_report(
    checkpoint: str | Path, data: str, split: str, images: int, input_size: int | None, scores: dict[str, Any]
) -> dict[str, Any]:
    """What ``fcn-tutorial evaluate --json`` prints and a run writes to ``test.json``: where from, then the scores."""
    return {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "split": split,
        "images": images,
        "input_size": input_size,
        "scored_at": "full size",
        **scores,
    }


def prepare_scoring(
    checkpoint: str | Path,
    data: str | None,
    split: str,
    *,
    device: str,
    amp: str,
    channels_last: bool,
    threshold: float | None,
    purpose: str,
) -> tuple[nn.Module, TrainConfig, Any, str, torch.device, torch.dtype | None]:
    """What ``evaluate`` and ``threshold`` both need before their pass over a split: the network of
    ``checkpoint`` (on ``device``, channels-last if asked), its config, the dataset of ``split`` of ``data``
    (default: the run's own; ``"all"``: every pair of a folder), the data's name, the device and the
    autocast dtype of ``amp``. ``threshold`` is checked against the network's classes; an empty split is a
    ``ValueError`` that says there is ``purpose`` missing."""
    from .data import registry

    target_device = resolve_device(device)
    model, config = load_model(checkpoint, target_device)
    check_threshold(threshold, config.n_classes)
    data = data or config.data
    if split == "all":
        dataset = all_pairs(data, config.n_classes)
    else:
        dataset = registry.get_dataset(data, split, n_classes=config.n_classes)
    if len(dataset) == 0:
        raise ValueError(f"the {split} split of {data} holds no frames: {purpose}")
    amp_dtype, _ = precision_plan(target_device.type, amp)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, config, dataset, str(data), target_device, amp_dtype


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "test",
    *,
    resize: int | str | None = "train",
    batch_size: int | None = None,
    num_workers: int = 0,
    device: str = "auto",
    amp: str = "none",
    channels_last: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Score ``checkpoint`` on ``split`` of ``data`` (default: the data set it was trained on).

    ``split``: ``"train"``, ``"val"``, ``"test"``, or ``"all"`` (every pair, no split). ``resize`` is the
    size the network sees: ``"train"`` (the run's ``--resize``), ``None``/``"full"`` (full size) or a
    number of pixels; the masks are scored at full size either way. Returns pixel accuracy, per-class
    and mean Jaccard and Dice over the whole split, and the per-image Jaccard (per class, averaged over
    images, and its mean). ``batch_size=None``: :func:`~fcn_tutorial.scoring.default_eval_batch_size`.
    ``tta``: score the flip-averaged probabilities (:func:`~fcn_tutorial.scoring.flip_averaged_logits`).
    ``threshold``: call a pixel polyp above this probability (:func:`~fcn_tutorial.scoring.decide`).
    """
    model, config, dataset, data, target_device, amp_dtype = prepare_scoring(
        checkpoint,
        data,
        split,
        device=device,
        amp=amp,
        channels_last=channels_last,
        threshold=threshold,
        purpose="nothing to score",
    )
    size = _input_size(resize, config)
    scores = score_dataset(
        model,
        dataset,
        config.n_classes,
        target_device,
        input_size=size,
        normalize=config.normalize,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        tta=tta,
        threshold=threshold,
        batch_size=batch_size or default_eval_batch_size(target_device),
        num_workers=num_workers,
        progress=progress,
        desc=f"evaluating {split}",
    )
    report = checkpoint_report(checkpoint, data, split, len(dataset), size, scores)
    if tta:
        report["tta"] = "flips"
    if threshold is not None:
        report["threshold"] = threshold
    return report


def format_report(result: dict[str, Any]) -> str:
    """The scores as a few readable lines."""
    classes = ", ".join(f"class {c} {j:.4f}" for c, j in enumerate(result["jaccard"]))
    per_image = ", ".join(f"class {c} {j:.4f}" for c, j in enumerate(result["per_image_jaccard"]))
    size = f"{result['input_size']} px" if result["input_size"] else "full size"
    if "threshold" in result:
        size += f", polyp above probability {result['threshold']}"
    return "\n".join(
        [
            f"{result['checkpoint']} on {result['data']} / {result['split']} ({result['images']} images, "
            f"network input {size}, masks at full size)",
            f"  loss {result['loss']:.4f}, pixel accuracy {result['pixel_accuracy']:.4f}",
            f"  Jaccard over the split: {classes}; mean {result['mean_jaccard']:.4f}",
            f"  Jaccard per image (mean over images): {per_image}; mean {result['per_image_mean_jaccard']:.4f}",
        ]
    )


def _run(args: argparse.Namespace) -> int:
    resize = parse_resize(args.resize)
    check_loader_options(args.batch_size, args.num_workers)
    started = time.perf_counter()
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        resize=resize,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        tta=args.tta,
        threshold=args.threshold,
        progress=False if args.no_progress else None,
    )
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        flips = ", flip TTA: 4 network passes per frame" if args.tta else ""
        print(format_report(result))
        print(f"  {result['images']} frames in {seconds:.1f} s: {result['images'] / seconds:.2f} frames/s{flips}")
    return 0


def parse_resize(text: str) -> int | str:
    """``--resize``: ``"train"``, ``"full"`` or a positive number of pixels (a clear error otherwise)."""
    if text in ("train", "full"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--resize must be 'train', 'full' or a positive number of pixels, got {text!r}")
    return value


def check_loader_options(batch_size: int | None, num_workers: int = 0) -> None:
    """Refuse a ``--batch-size`` or ``--num-workers`` out of range, naming the option."""
    if batch_size is not None and not 1 <= batch_size <= 4096:
        raise ValueError(f"--batch-size must be in [1, 4096], got {batch_size}")
    if not 0 <= num_workers <= 256:
        raise ValueError(f"--num-workers must be in [0, 256], got {num_workers}")


def add_network_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how the network sees the frames, shared by ``evaluate`` and ``threshold``."""
    parser.add_argument(
        "--resize", default="train", help="network input: 'train' (the run's --resize, default), 'full', or pixels"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="frames per batch (default: 8 on a CPU, 16 on a GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto (default) | cpu | cuda | cuda:N | mps")
    parser.add_argument("--amp", default="none", choices=AMP_CHOICES, help="precision (default: none, fp32)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")


def register(subparsers) -> None:
    """Add ``fcn-tutorial evaluate`` to the command line."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on a split",
        description="Pixel accuracy, per-class and mean Jaccard over a split, and per-image mean Jaccard, "
        "with every mask at full size.",
    )
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("--data", help="data set name or folder (default: the one the run trained on)")
    parser.add_argument(
        "--split",
        default="test",
        choices=SPLIT_CHOICES,
        help="train, val, test, or all: every pair of the folder, no split (default: test)",
    )
    add_network_input_arguments(parser)
    parser.add_argument("--num-workers", type=int, default=0, help="loader worker processes (default: 0)")
    parser.add_argument("--tta", action="store_true", help="average each frame with its flips (4 passes per frame)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="two classes: call a pixel polyp above this probability (default: argmax, i.e. 0.5); "
        "choose it on val with fcn-tutorial threshold",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

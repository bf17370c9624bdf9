"""Scoring a trained checkpoint on a split: ``evaluate_checkpoint`` and ``fcn-tutorial evaluate``.

The scores are those of the original tutorial, accumulated over the whole split (one confusion
matrix), plus the Jaccard of each image averaged over images, which weighs small and large polyps
alike::

    fcn-tutorial evaluate runs/fcn8s/best.pt --data kvasir-seg --split val --json

Masks are always scored at their full size. The network sees each frame at the size it was trained
on (the run's ``--resize``; full size if it had none) and its scores are resized to the mask.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import load_checkpoint
from .train import TrainConfig, build_model_for, evaluate, precision_plan

__all__ = ["load_model", "evaluate_checkpoint", "ResizedInput", "register"]


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig]:
    """The network of a ``best.pt`` or ``last.pt`` with its weights, in eval mode, and its :class:`TrainConfig`."""
    state = load_checkpoint(checkpoint, map_location=device)
    if "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {checkpoint} has no 'model' and 'config' entries; is it a fcn-tutorial run?")
    config = TrainConfig.from_dict(state["config"])
    model = build_model_for(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {checkpoint} does not fit a {config.model} ({config.preset}): {error}") from None
    return model.to(device).eval(), config


class ResizedInput(nn.Module):
    """Run ``model`` on the image resized to ``size`` and bring its scores back to the image's size.

    ``size`` is read as in :func:`fcn_tutorial.data.transforms.eval_transforms`: an int is the
    shorter side (keeping the aspect ratio), a pair is ``(height, width)``.
    """

    def __init__(self, model: nn.Module, size: int | tuple[int, int]):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF

        height, width = images.shape[-2:]
        logits = self.model(TF.resize(images, _as_size(self.size), antialias=True))
        return F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)


def _as_size(size: int | tuple[int, int]) -> list[int]:
    return [size] if isinstance(size, int) else list(size)


def _input_size(resize: int | str | None, config: TrainConfig) -> int | None:
    if resize == "train":
        return config.resize
    if resize in (None, "full"):
        return None
    return int(resize)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | None = None,
    split: str = "test",
    *,
    resize: int | str | None = "train",
    batch_size: int = 1,
    num_workers: int = 0,
    device: str = "auto",
    amp: str = "none",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Score ``checkpoint`` on ``split`` of ``data`` (default: the data set it was trained on).

    ``resize`` is the size the network sees: ``"train"`` (the run's ``--resize``), ``None`` (full
    size) or a number of pixels. Returns pixel accuracy, per-class and mean Jaccard and Dice over the
    whole split, and the per-image Jaccard (per class, averaged over images, and its mean).
    """
    from .data import registry, transforms
    from .data.loaders import pad_collate
    from .distributed import init_distributed
    from .metrics import PerImageJaccard

    target_device = init_distributed(device).device
    model, config = load_model(checkpoint, target_device)
    data = data or config.data
    dataset = registry.get_dataset(data, split, transform=transforms.eval_transforms(resize=None, normalize=config.normalize))
    size = _input_size(resize, config)
    network = ResizedInput(model, size) if size else model
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=pad_collate)
    amp_dtype, _ = precision_plan(target_device.type, amp)
    per_image = PerImageJaccard(config.n_classes, ignore_index=255)
    loss, scores = evaluate(network, loader, config.n_classes, target_device, amp_dtype=amp_dtype,
                            per_image=per_image, progress=progress, desc=f"evaluating {split}")
    per_class = per_image.mean().tolist()
    return {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "split": split,
        "images": len(dataset),
        "input_size": size,
        "loss": loss,
        "pixel_accuracy": scores.pixel_accuracy,
        "jaccard": scores.jaccard,
        "mean_jaccard": scores.mean_jaccard,
        "dice": scores.dice,
        "per_image_jaccard": per_class,
        "per_image_mean_jaccard": _nanmean(per_class),
    }


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def format_report(result: dict[str, Any]) -> str:
    """The scores as a few readable lines."""
    classes = ", ".join(f"class {c} {j:.4f}" for c, j in enumerate(result["jaccard"]))
    per_image = ", ".join(f"class {c} {j:.4f}" for c, j in enumerate(result["per_image_jaccard"]))
    size = f"{result['input_size']} px" if result["input_size"] else "full size"
    return "\n".join([
        f"{result['checkpoint']} on {result['data']} / {result['split']} ({result['images']} images, network input {size})",
        f"  loss {result['loss']:.4f}, pixel accuracy {result['pixel_accuracy']:.4f}",
        f"  Jaccard over the split: {classes}; mean {result['mean_jaccard']:.4f}",
        f"  Jaccard per image (mean over images): {per_image}; mean {result['per_image_mean_jaccard']:.4f}",
    ])


def _run(args: argparse.Namespace) -> int:
    resize = args.resize if args.resize in ("train", "full") else int(args.resize)
    result = evaluate_checkpoint(args.checkpoint, args.data, args.split, resize=resize, batch_size=args.batch_size,
                                 num_workers=args.num_workers, device=args.device, amp=args.amp,
                                 progress=False if args.no_progress else None)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def register(subparsers) -> None:
    """Add ``fcn-tutorial evaluate`` to the command line."""
    parser = subparsers.add_parser(
        "evaluate", help="score a checkpoint on a split",
        description="Pixel accuracy, per-class and mean Jaccard over a split, and per-image mean Jaccard.",
    )
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("--data", help="data set name or folder (default: the one the run trained on)")
    parser.add_argument("--split", default="test", help="train, val or test (default: test)")
    parser.add_argument("--resize", default="train",
                        help="network input: 'train' (the run's --resize, default), 'full', or pixels")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16", "auto"])
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

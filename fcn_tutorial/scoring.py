"""Scoring a network: the one path from frames to logits to scores, shared by training, evaluation and prediction.

Every score in the package comes from here: the per-epoch validation of a training run, its final test
line and ``test.json``, ``fcn-tutorial evaluate``, ``fcn-tutorial predict`` and the book. For each frame:

1. :func:`preprocess`: resize it to the network's input size (antialiased, exactly as the training
   transforms do) and normalise it if the run did; always in fp32.
2. run the network (under autocast when ``amp_dtype`` is given);
3. cast the logits to fp32 and resize them bilinearly to the frame's own size;
4. read a class off them (:func:`decide`: their argmax, or for two classes a decision threshold on the
   polyp probability) and compare it with the mask at that size (:func:`evaluate`), or return it
   (:func:`predict`).

With ``tta=True`` (test-time augmentation) step 2 runs the network on the frame and on its horizontal,
vertical and double flips, flips the four score maps back and averages their softmax probabilities;
the log of that average stands for the logits. It costs four forward passes per frame.

So a mask is scored at the size it was given. :func:`evaluate` is handed full-size masks by
``fcn-tutorial evaluate`` and for a run's best epoch (the *full-size* scores of ``test.json``);
during training the per-epoch validation may be handed masks resized to the training size, which is
faster and is labelled so (``val_size`` in ``history.csv``, "at 256 px" in the log).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from .data import VOID
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .metrics import ConfusionMatrix, PerImageJaccard, SegmentationScores
from .progress import progress_bar

__all__ = [
    "NonFiniteLogitsError",
    "TTA_FLIPS",
    "preprocess",
    "flip_averaged_logits",
    "predict_logits",
    "decide",
    "check_threshold",
    "predict",
    "evaluate",
    "score_dataset",
    "scores_dict",
    "default_eval_batch_size",
]


class NonFiniteLogitsError(ValueError):
    """The network's scores are NaN or infinite: its weights have diverged, and no class can be read from them."""


def preprocess(
    images: torch.Tensor, *, size: int | Sequence[int] | None = None, normalize: bool = False
) -> torch.Tensor:
    """The network's input for ``[0, 1]`` frames (``3 x H x W`` or ``N x 3 x H x W``): fp32, resized, normalised.

    ``size`` is read as in training's ``Resize``: an int is the shorter side (aspect ratio kept), a pair
    is ``(height, width)``, ``None`` keeps the size. The resize is antialiased like training's; without
    antialiasing a network trained on antialiased frames loses several Jaccard points.

    >>> preprocess(torch.ones(3, 40, 60), size=20).shape
    torch.Size([3, 20, 30])
    """
    images = images.as_subclass(torch.Tensor).float()
    if size is not None:
        images = TF.resize(images, [size] if isinstance(size, int) else list(size), antialias=True)
    if normalize:
        images = TF.normalize(images, list(IMAGENET_MEAN), list(IMAGENET_STD))
    return images


def default_eval_batch_size(device: torch.device | str) -> int:
    """Frames per scoring batch when none is asked for: 16 on a GPU, 8 on a CPU.

    Batching saves the per-call overhead of small networks; frames of different sizes still run one size
    at a time (:func:`predict_logits`), so a batch never holds more than 8 full-size frames on a CPU.
    """
    return 16 if torch.device(device).type == "cuda" else 8


TTA_FLIPS = ((), (-1,), (-2,), (-2, -1))  # the dimensions flipped: none, horizontal, vertical, both


def flip_averaged_logits(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Log of the softmax probabilities of ``batch`` averaged over :data:`TTA_FLIPS`, in fp32: one network call.

    The four flipped copies of the batch run as one batch of ``4 N`` frames; each score map is flipped
    back before averaging, so every pixel averages the votes of the same pixel seen four ways.
    """
    n = len(batch)
    flipped = torch.cat([batch.flip(dims) if dims else batch for dims in TTA_FLIPS])
    probabilities = model(flipped).float().softmax(dim=1)
    mean = sum(
        probabilities[i * n : (i + 1) * n].flip(dims) if dims else probabilities[i * n : (i + 1) * n]
        for i, dims in enumerate(TTA_FLIPS)
    ) / len(TTA_FLIPS)
    return mean.clamp_min(torch.finfo(torch.float32).tiny).log()  # finite: the metrics refuse infinities


def predict_logits(
    model: nn.Module,
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    size: int | Sequence[int] | None = None,
    normalize: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
    tta: bool = False,
) -> list[torch.Tensor]:
    """fp32 logits ``C x H x W`` for each frame, at that frame's own ``H x W``.

    ``images``: ``[0, 1]`` frames, a list of ``3 x H x W`` or an ``N x 3 x H x W`` batch. Frames that
    :func:`preprocess` brings to the same size run through the network as one batch. ``tta``: average
    over flips (:func:`flip_averaged_logits`).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    frames = [preprocess(image.to(device), size=size, normalize=normalize) for image in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for index, frame in enumerate(frames):
        groups.setdefault(tuple(frame.shape[-2:]), []).append(index)
    logits: list[torch.Tensor | None] = [None] * len(frames)
    for indices in groups.values():
        batch = torch.stack([frames[i] for i in indices])
        if channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            scores = flip_averaged_logits(model, batch) if tta else model(batch)
        for index, frame_scores in zip(indices, scores.float()):
            full_size = tuple(images[index].shape[-2:])
            if frame_scores.shape[-2:] != full_size:
                frame_scores = F.interpolate(frame_scores[None], size=full_size, mode="bilinear", align_corners=False)[
                    0
                ]
            logits[index] = frame_scores
    return logits


def check_threshold(threshold: float | None, n_classes: int) -> float | None:
    """``threshold`` if it is a probability strictly between 0 and 1 for a two-class network, else a clear error."""
    if threshold is None:
        return None
    if n_classes != 2:
        raise ValueError(f"a decision threshold needs a two-class network (background, polyp), not {n_classes} classes")
    if isinstance(threshold, bool) or not 0 < float(threshold) < 1:
        raise ValueError(f"the decision threshold is a polyp probability strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


def decide(logits: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """The class of every pixel of ``logits`` (``... x C x H x W``): an int64 ``... x H x W`` mask.

    ``threshold=None`` takes the class with the largest score (argmax). With a ``threshold``, a two-class
    network calls a pixel class 1 (polyp) where its softmax probability is above ``threshold``: argmax is the
    same as 0.5, and a lower threshold draws every polyp larger (:mod:`fcn_tutorial.threshold` chooses it
    on the validation split).

    >>> logits = torch.tensor([[[0.0, 0.0, 0.0]], [[-2.0, -0.5, 1.0]]])  # 2 classes x 1 x 3 pixels
    >>> decide(logits).tolist(), decide(logits, threshold=0.3).tolist()
    ([[0, 0, 1]], [[0, 1, 1]])
    """
    if threshold is None:
        return logits.argmax(dim=-3)
    check_threshold(threshold, logits.shape[-3])
    return (logits.float().softmax(dim=-3).select(-3, 1) > threshold).long()


@torch.no_grad()
def predict(
    model: nn.Module,
    image: torch.Tensor,
    *,
    size: int | Sequence[int] | None = None,
    normalize: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    tta: bool = False,
    threshold: float | None = None,
) -> torch.Tensor:
    """The class of every pixel of ``image`` (float ``3 x H x W`` in [0, 1]): an int64 ``H x W`` mask.

    ``size`` and ``normalize`` must be the run's ``resize`` and ``normalize`` (see :func:`preprocess`);
    ``threshold``: see :func:`decide`.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image of shape 3 x H x W, got {tuple(image.shape)}")
    model.eval()
    logits = predict_logits(
        model, [image], size=size, normalize=normalize, amp_dtype=amp_dtype, channels_last=channels_last, tta=tta
    )[0]
    return decide(logits, threshold).cpu()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    n_classes: int,
    device: torch.device,
    *,
    input_size: int | Sequence[int] | None = None,
    normalize: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    per_image: PerImageJaccard | None = None,
    progress: bool | None = None,
    desc: str = "validation",
) -> tuple[float, SegmentationScores]:
    """Score ``model`` on ``loader``: ``(loss, SegmentationScores)`` over the whole split.

    ``loader`` yields ``(images, masks)``: ``[0, 1]`` frames and their masks, as lists or batches.
    Each frame goes through :func:`predict_logits` (resized to ``input_size``, normalised if
    ``normalize``) and its logits are compared with its mask at the mask's size. The loss is the
    cross-entropy over every non-void pixel (with ``tta``: of the flip-averaged probabilities); the
    confusion matrix counts every pixel of the split and is summed over processes under ``torchrun``.
    ``per_image`` also collects each frame's Jaccard. The classes are read off the logits by
    :func:`decide` (argmax, or ``threshold`` on the polyp probability); the loss does not depend on it.
    NaN or infinite logits raise :class:`NonFiniteLogitsError` (on every process).
    """
    from .distributed import all_reduce_sum

    check_threshold(threshold, n_classes)
    model.eval()
    confusion = ConfusionMatrix(n_classes, ignore_index=VOID)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    pixels = torch.zeros((), dtype=torch.float64, device=device)
    non_finite = torch.zeros((), dtype=torch.float64, device=device)  # frames whose logits hold NaN or inf
    for images, masks in progress_bar(loader, progress=progress, desc=desc, leave=False, unit="batch"):
        all_logits = predict_logits(
            model,
            images,
            size=input_size,
            normalize=normalize,
            amp_dtype=amp_dtype,
            channels_last=channels_last,
            device=device,
            tta=tta,
        )
        for logits, mask in zip(all_logits, masks):
            if not torch.isfinite(logits).all():
                non_finite += 1
                continue
            logits, mask = logits[None], mask.as_subclass(torch.Tensor).to(device)[None]
            loss_sum += F.cross_entropy(logits, mask, ignore_index=VOID, reduction="sum").double()
            pixels += (mask != VOID).sum()
            classes = decide(logits, threshold)
            confusion.update(classes, mask)
            if per_image is not None:
                per_image.update(classes, mask)
    confusion.reduce_from_all_processes()
    if per_image is not None:
        _gather_per_image(per_image)
    totals = all_reduce_sum(torch.stack([loss_sum, pixels, non_finite]))
    if totals[2]:  # raised on every process together, after the collectives above
        raise NonFiniteLogitsError(
            f"the network's scores are NaN or infinite on {int(totals[2])} frame(s): its weights have diverged"
        )
    return (totals[0] / totals[1].clamp(min=1)).item(), confusion.compute()


def _gather_per_image(per_image: PerImageJaccard) -> None:
    """Under ``torchrun``, give every process the per-image Jaccard of every image (each scored its own shard)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, per_image.values.cpu())
    per_image.reset()
    for values in gathered:  # in rank order
        per_image.extend(values)


def scores_dict(loss: float, scores: SegmentationScores, per_image: PerImageJaccard | None = None) -> dict[str, Any]:
    """The scores as plain JSON values: loss, pixel accuracy, Jaccard and Dice per class, per-image Jaccard."""
    result: dict[str, Any] = {
        "loss": loss,
        "pixel_accuracy": scores.pixel_accuracy,
        "jaccard": list(scores.jaccard),
        "mean_jaccard": scores.mean_jaccard,
        "dice": list(scores.dice),
    }
    if per_image is not None:
        per_class = per_image.mean().tolist()
        kept = [value for value in per_class if not math.isnan(value)]
        result["per_image_jaccard"] = per_class
        result["per_image_mean_jaccard"] = sum(kept) / len(kept) if kept else math.nan
    return result


def score_dataset(
    model: nn.Module,
    dataset,
    n_classes: int,
    device: torch.device,
    *,
    input_size: int | Sequence[int] | None = None,
    normalize: bool = False,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    progress: bool | None = None,
    desc: str = "scoring",
) -> dict[str, Any]:
    """:func:`evaluate` ``model`` on every pair of ``dataset`` (untransformed ``[0, 1]`` frames, masks as drawn).

    Returns :func:`scores_dict` with the per-image Jaccard (``threshold``: see :func:`decide`). This is
    what ``fcn-tutorial evaluate`` and a run's ``test.json`` report, so the two agree for the same checkpoint.
    """
    from .data.loaders import make_eval_loader

    loader = make_eval_loader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        rank=rank,
        world_size=world_size,
        pin_memory=torch.device(device).type == "cuda",
    )
    per_image = PerImageJaccard(n_classes, ignore_index=VOID)
    loss, scores = evaluate(
        model,
        loader,
        n_classes,
        device,
        input_size=input_size,
        normalize=normalize,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        tta=tta,
        threshold=threshold,
        per_image=per_image,
        progress=progress,
        desc=desc,
    )
    return scores_dict(loss, scores, per_image)

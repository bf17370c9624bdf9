"""Segmentation metrics: pixel accuracy, Jaccard index (IoU) and Dice, all read off a confusion matrix.

A confusion matrix counts pixels by (true class, predicted class): row ``i``, column ``j`` holds the
pixels of class ``i`` that the model called ``j``. Every score of this module follows from it, so we
accumulate one matrix over a whole split and divide at the end, as the original tutorial did: big
images weigh more than small ones, and a class missing from one image does not spoil the mean.
Pixels labelled ``ignore_index`` (``fcn_tutorial.data.VOID = 255``) are left out of every count.

Worked example: two 2 x 3 masks, background 0 and polyp 1, one void pixel.

>>> import torch
>>> from fcn_tutorial.metrics import ConfusionMatrix
>>> target = torch.tensor([[0, 0, 1], [0, 1, 255]])
>>> prediction = torch.tensor([[0, 1, 1], [0, 0, 1]])
>>> metric = ConfusionMatrix(n_classes=2, ignore_index=255)
>>> metric.update(prediction, target)
>>> scores = metric.compute()
>>> scores.confusion            # rows: truth, columns: prediction; the void pixel is not counted
tensor([[2, 1],
        [1, 1]])
>>> scores.pixel_accuracy       # (2 + 1) correct of 5 counted pixels
0.6
>>> [round(j, 3) for j in scores.jaccard]   # class 0: 2 / (3 + 3 - 2), class 1: 1 / (2 + 2 - 1)
[0.5, 0.333]
>>> round(scores.mean_jaccard, 3)
0.417

:class:`PerImageJaccard` keeps one Jaccard per image instead, to look at the spread over images.

What every function and class here accepts: predictions and targets as tensors, NumPy arrays or
nested lists (anything else is a ``TypeError``); ``n_classes`` a whole number from 1 to
:data:`MAX_CLASSES` and ``ignore_index`` a whole number or None (``TypeError``/``ValueError``
otherwise). Logits that hold NaN or infinity raise ``ValueError``: a diverged model has no class to
count, and ``argmax`` would quietly call such a pixel class 0, a score that looks like learning.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "MAX_CLASSES",
    "ConfusionMatrix",
    "PerImageJaccard",
    "SegmentationScores",
    "confusion_matrix",
    "jaccard_index",
    "pixel_accuracy",
    "scores_from_confusion",
]


MAX_CLASSES = 4096  # a C x C matrix per image; more classes than any segmentation data set has


@dataclass(frozen=True)
class SegmentationScores:
    """The scores of one confusion matrix. NaN marks a class absent from both truth and prediction."""

    pixel_accuracy: float
    jaccard: list[float]
    mean_jaccard: float
    dice: list[float]
    confusion: torch.Tensor  # C x C, rows = ground truth, columns = prediction

    def as_dict(self) -> dict[str, float]:
        """Flat ``{name: float}`` for a JSON file or a CSV row: ``jaccard_class_0``, ``dice_class_1``..."""
        row = {"pixel_accuracy": self.pixel_accuracy, "mean_jaccard": self.mean_jaccard}
        row.update({f"jaccard_class_{c}": value for c, value in enumerate(self.jaccard)})
        row.update({f"dice_class_{c}": value for c, value in enumerate(self.dice)})
        return row


def scores_from_confusion(confusion: torch.Tensor) -> SegmentationScores:
    """Pixel accuracy, per-class Jaccard ``TP / (TP + FP + FN)``, their mean and per-class Dice."""
    confusion = confusion.detach().to("cpu", torch.float64)
    true_positives = confusion.diagonal()
    jaccard = _jaccard(confusion)
    dice = 2 * true_positives / (confusion.sum(dim=1) + confusion.sum(dim=0))
    return SegmentationScores(
        pixel_accuracy=(true_positives.sum() / confusion.sum()).item(),
        jaccard=jaccard.tolist(),
        mean_jaccard=jaccard.nanmean().item(),
        dice=dice.tolist(),
        confusion=confusion.to(torch.int64),
    )


def _jaccard(confusion: torch.Tensor) -> torch.Tensor:
    """Per-class ``TP / (TP + FP + FN)`` of a ``... x C x C`` matrix, as float64.

    A class absent from truth and prediction gives 0 / 0 = NaN: it has no Jaccard, and nanmean skips it.
    """
    confusion = confusion.double()
    true_positives = confusion.diagonal(dim1=-2, dim2=-1)
    union = confusion.sum(dim=-1) + confusion.sum(dim=-2) - true_positives
    return true_positives / union


def _check_classes(n_classes, ignore_index) -> tuple[int, int | None]:
    """``n_classes`` as an int in ``1 .. MAX_CLASSES`` and ``ignore_index`` as an int or None, or a clear error."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"n_classes must be a whole number, got {n_classes!r} ({type(n_classes).__name__})")
    if not 1 <= n_classes <= MAX_CLASSES:
        raise ValueError(f"n_classes must be at least 1 and at most {MAX_CLASSES}, got {n_classes}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral)):
        raise TypeError(
            f"ignore_index must be a whole number or None, got {ignore_index!r} ({type(ignore_index).__name__})"
        )
    return int(n_classes), None if ignore_index is None else int(ignore_index)


def _as_tensors(prediction, target) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors, NumPy arrays and nested lists all become tensors (on the device of whichever is a tensor)."""
    device = next((x.device for x in (prediction, target) if isinstance(x, torch.Tensor)), None)
    return _as_tensor(prediction, "prediction", device), _as_tensor(target, "target", device)


def _as_tensor(values, name: str, device: torch.device | None) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        if not isinstance(values, (list, tuple, np.ndarray)) and not hasattr(values, "__array__"):
            raise TypeError(f"{name} must be a tensor, a NumPy array or a nested list, not {type(values).__name__}")
        try:
            array = np.asarray(values)
        except ValueError as error:  # e.g. rows of different lengths
            raise ValueError(f"{name} is not a rectangular array: {error}") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, not {array.dtype} values")
        values = torch.as_tensor(array, device=device)
    if values.dtype in (torch.uint16, torch.uint32, torch.uint64):  # few operations support these: widen
        values = values.to(torch.int64)
    return values


def _as_labels(prediction: torch.Tensor, target: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check dtypes and shapes; return ``(prediction, target)`` as integer labels of the target's shape."""
    if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
        raise ValueError(f"target must be an integer tensor of class labels, got dtype {target.dtype}")
    if prediction.dtype == torch.bool or prediction.is_complex():
        raise ValueError(f"prediction must be integer labels or float logits, got dtype {prediction.dtype}")
    if prediction.is_floating_point():  # logits N x C x H x W (or C x H x W): the class is the largest score
        if prediction.ndim != target.ndim + 1 or prediction.ndim < 3:
            raise ValueError(
                f"logits of shape {tuple(prediction.shape)} need a target with one dimension less "
                f"(N x C x H x W with N x H x W), got target shape {tuple(target.shape)}"
            )
        if prediction.shape[-3] != n_classes:
            raise ValueError(
                f"logits have {prediction.shape[-3]} channels (shape {tuple(prediction.shape)}) "
                f"but n_classes is {n_classes}"
            )
        finite = torch.isfinite(prediction)
        if not finite.all():  # argmax would quietly call a NaN pixel class 0 (or whichever channel holds the NaN)
            bad, pixels = int((~finite).any(dim=-3).sum()), prediction[..., 0, :, :].numel()
            raise ValueError(
                f"logits are NaN or infinite at {bad} of {pixels} pixels: no class can be read from "
                f"them (has training diverged? lower the learning rate)"
            )
        prediction = prediction.argmax(dim=-3)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} does not match target shape {tuple(target.shape)}"
        )
    return prediction, target


def _check_range(
    labels: torch.Tensor, name: str, n_classes: int, keep: torch.Tensor | None, ignore_index: int | None = None
) -> None:
    """Raise if a counted label lies outside ``[0, n_classes)``. The usual case costs one min/max."""
    if labels.numel() == 0:
        return
    low, high = torch.stack(torch.aminmax(labels)).tolist()
    if low >= 0 and high < n_classes:
        return
    outside = (labels < 0) | (labels >= n_classes)
    if keep is not None:
        outside &= keep
    if outside.any():
        bad = torch.unique(labels[outside]).tolist()
        allowed = f"[0, {n_classes})" + ("" if ignore_index is None else f" or ignore_index={ignore_index}")
        raise ValueError(f"{name} has labels {bad[:10]} outside {allowed}")


def _count(
    prediction: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int | None, per_image: bool = False
) -> torch.Tensor:
    """Confusion counts ``C x C`` (or ``N x C x C`` with ``per_image``) with one ``bincount``."""
    prediction, target = _as_tensors(prediction, target)
    from_logits = prediction.is_floating_point()
    prediction, target = _as_labels(prediction, target, n_classes)
    if per_image and target.ndim == 2:
        prediction, target = prediction[None], target[None]
    if per_image and target.ndim != 3:
        raise ValueError(f"per-image scores need N x H x W or H x W masks, got shape {tuple(target.shape)}")
    keep = None if ignore_index is None else target != ignore_index
    _check_range(target, "target", n_classes, keep, ignore_index)
    if not from_logits:  # the argmax of C logits is always a valid class; on void pixels anything goes
        _check_range(prediction, "prediction", n_classes, keep)

    # Pair (truth i, prediction j) goes to bin i * C + j; image k's bins start at k * C * C.
    n_images = target.shape[0] if per_image else 1
    n_bins = n_images * n_classes**2
    # The smallest integer type that holds every bin, plus one for ignored pixels: less memory to touch.
    dtype = next(d for d in (torch.uint8, torch.int16, torch.int32, torch.int64) if torch.iinfo(d).max >= n_bins)
    bins = target.to(dtype) * n_classes + prediction.to(dtype)
    if per_image:
        bins += (torch.arange(n_images, device=bins.device, dtype=dtype) * n_classes**2).view(-1, 1, 1)
    if keep is not None:
        bins.masked_fill_(~keep, n_bins)  # ignored pixels (whatever their wrapped value) go to the extra bin
    counts = torch.bincount(bins.flatten(), minlength=n_bins + 1)[:n_bins]
    return counts.view(n_images, n_classes, n_classes) if per_image else counts.view(n_classes, n_classes)


def confusion_matrix(
    prediction: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """The ``C x C`` int64 pixel counts of one batch: rows = ground truth, columns = prediction.

    ``prediction`` is labels of the target's shape (``N x H x W`` or ``H x W``) or float logits
    ``N x C x H x W`` (argmax over C; NaN or infinite logits raise ``ValueError``). Pixels whose target
    is ``ignore_index`` are not counted. Tensors, NumPy arrays and nested lists are accepted.
    """
    with torch.no_grad():
        return _count(prediction, target, *_check_classes(n_classes, ignore_index))


def pixel_accuracy(
    prediction: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int | None = None
) -> float:
    """Fraction of the counted pixels whose class is right (NaN when every pixel is ignored)."""
    return scores_from_confusion(confusion_matrix(prediction, target, n_classes, ignore_index)).pixel_accuracy


def jaccard_index(
    prediction: torch.Tensor, target: torch.Tensor, n_classes: int, ignore_index: int | None = None
) -> list[float]:
    """Per-class Jaccard (IoU) of one batch, pooled over its pixels; NaN for a class absent from both."""
    return scores_from_confusion(confusion_matrix(prediction, target, n_classes, ignore_index)).jaccard


class ConfusionMatrix:
    """Accumulates a confusion matrix batch after batch, on the device of the tensors it is given.

    >>> metric = ConfusionMatrix(n_classes=2, ignore_index=255)
    >>> for images, masks in loader:                      # doctest: +SKIP
    ...     metric.update(model(images), masks)
    >>> metric.reduce_from_all_processes()                # doctest: +SKIP
    >>> metric.compute().mean_jaccard                     # doctest: +SKIP
    """

    def __init__(self, n_classes: int, ignore_index: int | None = None):
        self.n_classes, self.ignore_index = _check_classes(n_classes, ignore_index)
        self.confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: labels (``N x H x W`` or ``H x W``) or logits (``N x C x H x W``)."""
        with torch.no_grad():
            counts = _count(prediction, target, self.n_classes, self.ignore_index)
            if self.confusion.device != counts.device:
                self.confusion = self.confusion.to(counts.device)
            self.confusion += counts

    def compute(self) -> SegmentationScores:
        """The scores of everything added so far (all NaN before the first update)."""
        return scores_from_confusion(self.confusion)

    def reset(self) -> None:
        """Start again from zero, e.g. at the next epoch."""
        self.confusion.zero_()

    def reduce_from_all_processes(self) -> None:
        """Sum the matrices of every process of a distributed run; nothing to do in a single process."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.confusion)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts to this matrix (in place) and return it."""
        if (other.n_classes, other.ignore_index) != (self.n_classes, self.ignore_index):
            raise ValueError(
                f"cannot merge a ConfusionMatrix(n_classes={other.n_classes}, ignore_index={other.ignore_index}) "
                f"into a ConfusionMatrix(n_classes={self.n_classes}, ignore_index={self.ignore_index})"
            )
        self.confusion += other.confusion.to(self.confusion.device)
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        total = ConfusionMatrix(self.n_classes, self.ignore_index)
        total.confusion = self.confusion.clone()
        return total.merge(other)

    def __repr__(self) -> str:
        pixels = int(self.confusion.sum())
        return f"ConfusionMatrix(n_classes={self.n_classes}, ignore_index={self.ignore_index}, pixels={pixels})"


class PerImageJaccard:
    """One Jaccard per image and class, to see how the score spreads over the images of a split.

    ``values`` is an ``images x classes`` float64 tensor, NaN where a class is absent from both the
    image's truth and its prediction; ``mean()`` averages each class over the images that have it.
    """

    def __init__(self, n_classes: int, ignore_index: int | None = None):
        self.n_classes, self.ignore_index = _check_classes(n_classes, ignore_index)
        self._batches: list[torch.Tensor] = []

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch (``N x H x W`` labels or ``N x C x H x W`` logits) or one ``H x W`` image."""
        with torch.no_grad():
            counts = _count(prediction, target, self.n_classes, self.ignore_index, per_image=True)
            self._batches.append(_jaccard(counts).cpu())

    @property
    def values(self) -> torch.Tensor:
        """``images x classes`` Jaccard of every image added so far, in the order they came."""
        if not self._batches:
            return torch.empty(0, self.n_classes, dtype=torch.float64)
        return torch.cat(self._batches)

    def extend(self, values: torch.Tensor) -> None:
        """Add Jaccards scored elsewhere (another process's shard): an ``images x classes`` tensor like :attr:`values`.

        >>> metric = PerImageJaccard(2)
        >>> metric.extend(torch.tensor([[1.0, 0.5], [0.9, float("nan")]], dtype=torch.float64))
        >>> len(metric), metric.mean().tolist()
        (2, [0.95, 0.5])
        """
        if values.ndim != 2 or values.shape[1] != self.n_classes:
            raise ValueError(f"expected an images x {self.n_classes} tensor, got shape {tuple(values.shape)}")
        self._batches.append(values.to(torch.float64).cpu())

    def compute(self) -> torch.Tensor:
        """The same as :attr:`values`, so that every metric here reads ``update``, ``compute``, ``reset``."""
        return self.values

    def mean(self) -> torch.Tensor:
        """Per-class mean over the images where the class appears (in truth or prediction)."""
        return self.values.nanmean(dim=0)

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._batches)

    def reset(self) -> None:
        self._batches.clear()

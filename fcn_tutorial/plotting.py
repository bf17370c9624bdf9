"""Figures for the book: masks drawn over frames, frames beside their masks, predictions side by side.

Every function takes the package's conventions (images ``float32 3 x H x W`` in ``[0, 1]``, masks
``int64 H x W`` with ``VOID = 255``), also accepts NumPy arrays (``H x W x 3`` images), and returns a
matplotlib ``Figure`` that the caller shows and closes::

    fig = show_pair(image, mask)
    plt.show()
    plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .data import VOID

# Class colours (RGB in [0, 1]): class 1 (polyp) is red; more classes take the next colours.
CLASS_COLORS = np.array(
    [
        (0.0, 0.0, 0.0),  # 0 background: not painted in overlays
        (1.0, 0.15, 0.15),  # 1 polyp
        (0.15, 0.55, 1.0),
        (0.2, 0.85, 0.2),
        (1.0, 0.8, 0.1),
        (0.8, 0.3, 0.9),
    ]
)
VOID_COLOR = (0.5, 0.5, 0.5)
DPI = 100
MAX_SIZE = (10.0, 4.0)  # inches: the book's figures stay this small (and its notebooks light)


def to_image_array(image: Any) -> np.ndarray:
    """An image as an ``H x W x 3`` float array in ``[0, 1]`` (from a ``3 x H x W`` tensor or an array)."""
    array = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"expected an image of shape 3 x H x W or H x W x 3, got {tuple(np.shape(image))}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        array = array / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def to_label_array(mask: Any) -> np.ndarray:
    """A label map as an ``H x W`` int64 array; ``C x H x W`` scores are turned into labels by ``argmax``."""
    array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:  # scores (logits or probabilities), one channel per class
        array = array.argmax(axis=0)
    if array.ndim != 2:
        raise ValueError(f"expected a mask of shape H x W (or scores C x H x W), got {tuple(np.shape(mask))}")
    return array.astype(np.int64)


def class_color(label: int) -> np.ndarray:
    return CLASS_COLORS[1 + (label - 1) % (len(CLASS_COLORS) - 1)] if label > 0 else CLASS_COLORS[0]


def colorize(mask: Any) -> np.ndarray:
    """A label map as an ``H x W x 3`` picture: background black, polyp red, void grey."""
    labels = to_label_array(mask)
    picture = np.zeros((*labels.shape, 3), dtype=np.float32)
    for label in np.unique(labels):
        picture[labels == label] = VOID_COLOR if label == VOID else class_color(int(label))
    return picture


def overlay(image: Any, mask: Any, *, alpha: float = 0.5, color: Sequence[float] | None = None) -> np.ndarray:
    """Paint ``mask`` over ``image``: an ``H x W x 3`` float array in ``[0, 1]``.

    Pixels of class 1 and above are blended with their class colour (``color`` overrides the colour of
    every foreground class), void pixels with grey, and background pixels keep the frame's colours.
    ``alpha`` is the weight of the paint: 0 shows the frame alone, 1 the mask alone.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    picture = to_image_array(image).copy()
    labels = to_label_array(mask)
    if labels.shape != picture.shape[:2]:
        raise ValueError(
            f"mask is {labels.shape[0]}x{labels.shape[1]} but its image is {picture.shape[0]}x{picture.shape[1]}"
        )
    for label in np.unique(labels):
        if label == 0:
            continue
        paint = VOID_COLOR if label == VOID else (color if color is not None else class_color(int(label)))
        where = labels == label
        picture[where] = (1 - alpha) * picture[where] + alpha * np.asarray(paint, dtype=np.float32)
    return picture


def boundary(mask: Any) -> np.ndarray:
    """``H x W`` booleans: the pixels of a foreground region that touch a pixel of another class."""
    labels = to_label_array(mask)
    padded = np.pad(labels, 1, mode="edge")
    different = np.zeros(labels.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        different |= padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] != labels
    return different & (labels > 0) & (labels != VOID)


def outline(image: Any, mask: Any, *, color: Sequence[float] | None = None, thickness: int = 2) -> np.ndarray:
    """Draw the border of each foreground region of ``mask`` on ``image`` (``H x W x 3`` array)."""
    picture = to_image_array(image).copy()
    labels = to_label_array(mask)
    if labels.shape != picture.shape[:2]:
        raise ValueError(
            f"mask is {labels.shape[0]}x{labels.shape[1]} but its image is {picture.shape[0]}x{picture.shape[1]}"
        )
    edge = boundary(labels)
    for _ in range(thickness - 1):  # thicken inwards, one pixel at a time
        inner = labels.copy()
        inner[edge] = 0
        edge |= boundary(inner)
    for label in np.unique(labels[edge]):
        picture[edge & (labels == label)] = color if color is not None else class_color(int(label))
    return picture


def fit_figsize(width: float, height: float) -> tuple[float, float]:
    """Shrink ``(width, height)`` inches, keeping the aspect ratio, until it fits in ``MAX_SIZE``."""
    scale = min(1.0, MAX_SIZE[0] / width, MAX_SIZE[1] / height)
    return width * scale, height * scale


def _hide_axes(axes: np.ndarray) -> None:
    for axis in np.ravel(axes):
        axis.set_xticks([])
        axis.set_yticks([])


def show_pair(image: Any, mask: Any, *, title: str | None = None, alpha: float = 0.5) -> Figure:
    """A frame, its mask and the mask over the frame, in one row."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), dpi=DPI)
    axes[0].imshow(to_image_array(image))
    axes[0].set_title("frame")
    axes[1].imshow(colorize(mask), interpolation="nearest")
    axes[1].set_title("mask")
    axes[2].imshow(overlay(image, mask, alpha=alpha))
    axes[2].set_title("overlay")
    _hide_axes(axes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_pairs(
    images: Any,
    masks: Sequence[Any] | None = None,
    *,
    indices: Sequence[int] | range | None = None,
    titles: Sequence[str] | None = None,
    alpha: float = 0.5,
) -> Figure:
    """Several frames (top row) above their masks drawn over them (bottom row).

    Pass either ``images`` and ``masks`` (two sequences), or a data set of ``(image, mask)`` pairs as
    ``images`` with the ``indices`` to draw (default: the first four).
    """
    if masks is None:
        dataset = images
        indices = list(range(min(4, len(dataset)))) if indices is None else list(indices)
        pairs = [dataset[index] for index in indices]
        images, masks = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
        if titles is None:
            titles = [f"#{index}" for index in indices]
    elif indices is not None:
        images, masks = [images[i] for i in indices], [masks[i] for i in indices]
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    if len(images) == 0:
        raise ValueError("nothing to show: no images")
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=fit_figsize(2.5 * n, 4.6), dpi=DPI, squeeze=False)
    for column, (image, mask) in enumerate(zip(images, masks)):
        axes[0, column].imshow(to_image_array(image))
        axes[1, column].imshow(overlay(image, mask, alpha=alpha))
        if titles is not None:
            axes[0, column].set_title(titles[column])
    axes[0, 0].set_ylabel("frame")
    axes[1, 0].set_ylabel("mask over frame")
    _hide_axes(axes)
    fig.tight_layout()
    return fig


def show_predictions(
    images: Sequence[Any],
    masks: Sequence[Any],
    predictions: Mapping[str, Sequence[Any]] | Sequence[Any],
    *,
    titles: Sequence[str] | None = None,
    alpha: float = 0.5,
) -> Figure:
    """Predictions beside the ground truth: one row per frame, one column per model.

    ``predictions`` is either a mapping ``{"FCN-32s": [...], "FCN-8s": [...]}`` (one sequence of label
    maps or score maps per model) or a single sequence (one model, titled ``titles[0]`` or "prediction").
    The first two columns show the frame and the ground truth over it.
    """
    if isinstance(predictions, Mapping):
        names, columns = list(predictions), list(predictions.values())
    else:
        names, columns = [titles[0] if titles else "prediction"], [predictions]
    if titles is not None and isinstance(predictions, Mapping):
        if len(titles) != len(names):
            raise ValueError(f"got {len(titles)} titles for {len(names)} models")
        names = list(titles)
    for name, column in zip(names, columns):
        if len(column) != len(images):
            raise ValueError(f"{name}: {len(column)} predictions for {len(images)} images")
    if len(masks) != len(images):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks")
    rows, cols = len(images), 2 + len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=fit_figsize(2.4 * cols, 2.2 * rows), dpi=DPI, squeeze=False)
    for row, (image, mask) in enumerate(zip(images, masks)):
        axes[row, 0].imshow(to_image_array(image))
        axes[row, 1].imshow(overlay(image, mask, alpha=alpha))
        for col, prediction in enumerate(columns, start=2):
            axes[row, col].imshow(overlay(image, prediction[row], alpha=alpha))
    for col, name in enumerate(["frame", "ground truth", *names]):
        axes[0, col].set_title(name)
    _hide_axes(axes)
    fig.tight_layout()
    return fig


def show_confusion(confusion: Any, class_names: Sequence[str] | None = None, *, normalize: bool = True) -> Figure:
    """A confusion matrix (rows: truth, columns: prediction) as a heat map with its counts or shares."""
    table = (
        confusion.detach().cpu().double().numpy()
        if isinstance(confusion, torch.Tensor)
        else np.asarray(confusion, dtype=np.float64)
    )
    n = table.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    shown = table / np.maximum(table.sum(axis=1, keepdims=True), 1) if normalize else table
    fig, axis = plt.subplots(figsize=fit_figsize(1.6 * n + 2, 1.4 * n + 1), dpi=DPI)
    axis.imshow(shown, cmap="Blues", vmin=0)
    for i in range(n):
        for j in range(n):
            text = f"{shown[i, j]:.1%}" if normalize else f"{int(table[i, j])}"
            axis.text(
                j, i, text, ha="center", va="center", color="white" if shown[i, j] > 0.6 * shown.max() else "black"
            )
    axis.set_xticks(range(n), names)
    axis.set_yticks(range(n), names)
    axis.set_xlabel("prediction")
    axis.set_ylabel("truth")
    fig.tight_layout()
    return fig

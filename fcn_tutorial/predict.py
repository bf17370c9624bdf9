"""Segmenting new images: ``predict``, ``predict_files`` and ``fcn-tutorial predict``.

::

    fcn-tutorial predict runs/fcn8s/best.pt frames/ --out predictions/

writes, for every image, ``<name>_mask.png`` (the class of each pixel; for two classes 0 is
background and 255 polyp) and ``<name>_overlay.png`` (the image with the predicted classes painted
as in the book's figures, :func:`fcn_tutorial.plotting.overlay`). Any image size works: each frame is
preprocessed exactly as in training (:func:`fcn_tutorial.scoring.preprocess`: the run's ``--resize``
with antialiasing, and its normalisation) and the scores are resized back to the frame, so the masks
are the argmax of the very scores that ``fcn-tutorial evaluate`` counts, when both run in the same
precision: ``--amp none`` gives exactly those fp32 masks (it also turns channels-last off). By default
``predict`` takes the fast path of the machine (``--amp auto``: bf16 where the CPU or GPU has it
natively, and channels-last), which may move a few pixels along the edges; ``benchmarks/predict.py``
measures the gain. ``--tta`` averages the frame with its flips (four network passes per frame). The
command reports frames per second, reading and writing included.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .data import IMAGE_SUFFIXES, read_image  # one reader and one list of suffixes for training and prediction
from .device import resolve_device
from .evaluate import load_model
from .files import atomic_write
from .precision import AMP_CHOICES, precision_plan
from .progress import progress_bar
from .scoring import predict

__all__ = ["IMAGE_SUFFIXES", "predict", "predict_files", "read_image", "find_images", "mask_to_png", "register"]


def find_images(paths: Iterable[str | Path]) -> list[Path]:
    """The image files among ``paths``; a folder stands for the images directly inside it, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not inside:
                raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"image or folder {path} does not exist")
    return found


def mask_to_png(mask: torch.Tensor, n_classes: int) -> Image.Image:
    """A grey-level PNG of the classes, spread over 0..255 (two classes: 0 and 255)."""
    step = 255 // max(1, n_classes - 1)
    return Image.fromarray((mask * step).to(torch.uint8).numpy())  # 2-D uint8: mode "L"


def overlay_png(image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.45) -> Image.Image:
    """``image`` with the predicted classes painted over it (:func:`fcn_tutorial.plotting.overlay`), as a PIL image."""
    from .plotting import overlay as paint

    return Image.fromarray((paint(image, mask, alpha=alpha) * 255).round().astype(np.uint8))


def overlay(image: torch.Tensor, mask: torch.Tensor, n_classes: int | None = None, alpha: float = 0.45) -> Image.Image:
    """Deprecated: use :func:`fcn_tutorial.plotting.overlay` (an array) or :func:`overlay_png` (a PIL image)."""
    warnings.warn(
        "fcn_tutorial.predict.overlay is deprecated: use fcn_tutorial.plotting.overlay",
        DeprecationWarning,
        stacklevel=2,
    )
    return overlay_png(image, mask, alpha)


def _save_png(picture: Image.Image, path: Path) -> None:
    atomic_write(path, lambda file: picture.save(file, format="PNG"))


def predict_files(
    checkpoint_or_model: str | Path | nn.Module,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    size: int | str | None = "train",
    n_classes: int | None = None,
    normalize: bool | None = None,
    device: str = "auto",
    amp: str = "none",
    channels_last: bool = False,
    tta: bool = False,
    progress: bool | None = None,
) -> list[tuple[Path, Path]]:
    """Write ``<name>_mask.png`` and ``<name>_overlay.png`` into ``out`` for each image; return their paths.

    ``checkpoint_or_model`` is a checkpoint file (its run decides ``size="train"``, the normalisation and
    the number of classes) or a model (give ``n_classes`` and ``normalize``; ``size="train"`` then means
    full size). ``amp`` (see :func:`fcn_tutorial.precision.precision_plan`), ``channels_last`` and ``tta``
    (flip averaging) are passed to :func:`fcn_tutorial.scoring.predict`.
    """
    target_device = resolve_device(device)
    amp_dtype, _ = precision_plan(target_device.type, amp)
    if isinstance(checkpoint_or_model, nn.Module):
        model, train_size = checkpoint_or_model.to(target_device), None
        n_classes, normalize = n_classes or 2, bool(normalize)
    else:
        model, config = load_model(checkpoint_or_model, target_device)
        train_size, n_classes = config.resize, config.n_classes
        normalize = config.normalize if normalize is None else normalize
    run_size = train_size if size == "train" else None if size in (None, "full") else int(size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    files = find_images(images)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in progress_bar(files, progress=progress, desc="predicting", unit="image"):
        image = read_image(path)
        mask = predict(
            model, image, size=run_size, normalize=normalize, amp_dtype=amp_dtype, channels_last=channels_last, tta=tta
        )
        mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        _save_png(mask_to_png(mask, n_classes), mask_path)
        _save_png(overlay_png(image, mask), overlay_path)
        written.append((mask_path, overlay_path))
    return written


def _run(args: argparse.Namespace) -> int:
    size = args.resize if args.resize in ("train", "full") else int(args.resize)
    started = time.perf_counter()
    written = predict_files(
        args.checkpoint,
        args.images,
        args.out,
        size=size,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last if args.channels_last is not None else args.amp != "none",
        tta=args.tta,
        progress=False if args.no_progress else None,
    )
    seconds = time.perf_counter() - started
    print(
        f"wrote {len(written)} masks and overlays to {args.out}: {len(written) / seconds:.2f} frames/s "
        f"({seconds:.1f} s, reading and writing included{', 4 flips per frame' if args.tta else ''})"
    )
    return 0


def register(subparsers) -> None:
    """Add ``fcn-tutorial predict`` to the command line."""
    parser = subparsers.add_parser(
        "predict",
        help="segment images with a checkpoint",
        description="Write a mask PNG and an overlay PNG for every image (any size).",
    )
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--out", required=True, help="folder for <name>_mask.png and <name>_overlay.png")
    parser.add_argument(
        "--resize", default="train", help="network input: 'train' (the run's --resize, default), 'full', or pixels"
    )
    parser.add_argument("--device", default="auto", help="auto (default) | cpu | cuda | cuda:N | mps")
    parser.add_argument(
        "--amp",
        default="auto",
        choices=AMP_CHOICES,
        help="precision: auto (default: bf16 where native, as fast as it gets), or none for the exact fp32 masks "
        "that evaluate scores",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format (default: on, except with --amp none)",
    )
    parser.add_argument("--tta", action="store_true", help="average the frame and its flips (4 passes per frame)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

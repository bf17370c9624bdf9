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

What it guarantees:

* **no overwrite**: a file that exists before the run is never replaced (the run stops before writing
  anything), unless ``--overwrite`` is given; an input image is never replaced, even then
  (:class:`fcn_tutorial.files.OutputClaims`). So ``--out`` may be the input folder: a ground-truth
  ``a_mask.png`` beside ``a.jpg`` survives, and is not taken for a frame (:func:`find_images`).
* **no collision**: outputs are named after the input's stem; inputs that share a stem (``x.jpg`` and
  ``x.png``) are named after their whole file name (``x.jpg_mask.png``, ``x.png_mask.png``), and inputs
  that share a file name in different folders after their folder too (:func:`output_names`).
* **bounded memory**: the network never sees more than ``max_input_pixels`` pixels (default 4 million,
  about 2000 x 2000; ``--max-input-pixels`` or ``$FCN_TUTORIAL_MAX_INPUT_PIXELS``). A larger frame is
  downscaled for the network, with a message, and its scores are resized back to its full size. A
  full-size FCN-8s on a 10000 x 10000 frame would need more than 9 GB; the mask and overlay of a frame
  take about 20 bytes per pixel, and frames over ``$FCN_TUTORIAL_MAX_PIXELS`` are refused when read.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .data import IMAGE_SUFFIXES, read_image  # one reader and one list of suffixes for training and prediction
from .device import resolve_device
from .evaluate import load_model
from .files import OutputClaims, atomic_write
from .precision import AMP_CHOICES, precision_plan
from .progress import progress_bar
from .scoring import check_threshold, predict

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_INPUT_PIXELS_ENV",
    "predict",
    "predict_files",
    "read_image",
    "UnreadableImages",
    "find_images",
    "NOT_FRAMES",
    "output_names",
    "network_input_size",
    "max_input_pixels",
    "mask_to_png",
    "register",
]

MAX_INPUT_PIXELS_ENV = "FCN_TUTORIAL_MAX_INPUT_PIXELS"
DEFAULT_MAX_INPUT_PIXELS = 4_000_000  # about 2000 x 2000: a full-width FCN-8s needs about 3 GB for it


NOT_FRAMES = ("_mask", "_overlay")  # what predict writes, and how ground-truth masks beside frames are often named


def find_images(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """The image files among ``paths``, each once; a folder stands for the images directly inside it, sorted.

    In a folder, files whose stem ends in ``_mask`` or ``_overlay`` are masks or this command's own outputs,
    not frames: they are left out (and added to ``skipped`` when it is given), so that predicting twice into
    the input folder does not segment the first run's masks. A file named on its own is always taken.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not inside:
                raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            frames, not_frames = [], []
            for p in inside:
                (not_frames if p.stem.lower().endswith(NOT_FRAMES) else frames).append(p)
            if not frames:
                raise ValueError(
                    f"folder {path} holds only masks or overlays (names ending in _mask or _overlay), no frames; "
                    f"name a file on its own to segment it anyway"
                )
            if skipped is not None:
                skipped.extend(not_frames)
            found.extend(frames)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"image or folder {path} does not exist")
    unique = {path.resolve(): path for path in reversed(found)}  # a file given twice (alone and in its folder)
    return [path for path in found if unique[path.resolve()] is path]


def output_names(files: Sequence[Path]) -> list[str]:
    """The name each input's outputs start with: unique among ``files``, compared without case.

    The stem where no other input shares it; else the file name; else the folder and the file name;
    else a number in front.

    >>> output_names([Path("a/x.jpg"), Path("a/x.png"), Path("a/y.jpg"), Path("b/y.jpg")])
    ['x.jpg', 'x.png', 'a_y.jpg', 'b_y.jpg']
    """
    fallbacks = (
        lambda i, p: p.name,
        lambda i, p: f"{p.parent.name}_{p.name}",
        lambda i, p: f"{i + 1}_{p.parent.name}_{p.name}",
    )
    names = [path.stem for path in files]
    for fallback in fallbacks:
        taken = Counter(name.lower() for name in names)
        names = [fallback(i, p) if taken[n.lower()] > 1 else n for i, (n, p) in enumerate(zip(names, files))]
    return names


def max_input_pixels() -> int:
    """``$FCN_TUTORIAL_MAX_INPUT_PIXELS``, else 4,000,000: the most pixels the network sees of one frame."""
    text = os.environ.get(MAX_INPUT_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INPUT_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_INPUT_PIXELS_ENV} must be a positive number of pixels, got {text!r}")
    return value


def network_input_size(height: int, width: int, size: int | None, max_pixels: int) -> tuple[int | None, bool]:
    """The ``size`` to give :func:`~fcn_tutorial.scoring.predict` for a ``height x width`` frame, and whether
    it was lowered so that the network sees at most ``max_pixels`` pixels (shorter side, or ``None``: full size).

    >>> network_input_size(10_000, 10_000, None, 4_000_000)
    (2000, True)
    >>> network_input_size(480, 640, 256, 4_000_000)
    (256, False)
    """
    shorter, longer = min(height, width), max(height, width)
    side = shorter if size is None else size
    if side * (side * longer / shorter) <= max_pixels:
        return size, False
    return max(1, math.floor(math.sqrt(max_pixels * shorter / longer))), True


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
    threshold: float | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    max_pixels: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[tuple[Path, Path]]:
    """Write ``<name>_mask.png`` and ``<name>_overlay.png`` into ``out`` for each image; return their paths.

    ``checkpoint_or_model`` is a checkpoint file (its run decides ``size="train"``, the normalisation and
    the number of classes) or a model (give ``n_classes`` and ``normalize``; ``size="train"`` then means
    full size). ``<name>`` is from :func:`output_names`. Every output is claimed before the first image is
    read: an existing file stops the run with ``FileExistsError`` unless ``overwrite``, and inputs are never
    overwritten. Frames over ``max_pixels`` (default :func:`max_input_pixels`) at the network's input are
    downscaled for it, and ``log`` (default: ``warnings.warn``) says so. ``amp`` (see
    :func:`fcn_tutorial.precision.precision_plan`), ``channels_last``, ``tta`` (flip averaging) and ``threshold``
    (polyp above this probability instead of the argmax) are passed to :func:`fcn_tutorial.scoring.predict`.
    An image that cannot be read (truncated, not an image) is skipped, ``log`` says so, and once every other
    image is written :class:`UnreadableImages` names the skipped ones.
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
    check_threshold(threshold, n_classes)
    run_size = train_size if size == "train" else None if size in (None, "full") else int(size)
    if run_size is not None and run_size < 1:
        raise ValueError(f"size must be 'train', 'full' or a positive number of pixels, got {size!r}")
    max_pixels = max_input_pixels() if max_pixels is None else max_pixels
    log = log or (lambda line: warnings.warn(line, stacklevel=3))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    skipped: list[Path] = []
    files = find_images(images, skipped)
    if skipped:
        log(
            f"left out {len(skipped)} file(s) named like masks or overlays (e.g. {skipped[0]}); name a file on its "
            f"own to segment it anyway"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder for the masks and overlays")
    claims, inputs = OutputClaims(overwrite=overwrite), {path.resolve() for path in files + skipped}
    planned = []
    for path, name in zip(files, output_names(files)):
        pair = (out / f"{name}_mask.png", out / f"{name}_overlay.png")
        for target in pair:
            claims.claim(target)
            if target.resolve() in inputs:  # even with --overwrite
                raise ValueError(f"{target} is one of the input images or a mask beside them; choose another --out")
        planned.append((path, pair))
    out.mkdir(parents=True, exist_ok=True)
    written, unreadable = [], []
    for path, (mask_path, overlay_path) in progress_bar(planned, progress=progress, desc="predicting", unit="image"):
        try:
            image = read_image(path)
        except (ValueError, OSError) as error:  # a truncated or broken frame: the others still get their masks
            unreadable.append(str(error))
            log(f"skipped: {error}")
            continue
        height, width = image.shape[-2:]
        frame_size, lowered = network_input_size(height, width, run_size, max_pixels)
        if lowered:
            log(
                f"{path} is {width}x{height}: over the limit of {max_pixels:,} pixels at the network's input, so the "
                f"network sees it with a shorter side of {frame_size} px and the mask is resized to full size "
                f"(raise --max-input-pixels if the device has the memory)"
            )
        mask = predict(
            model,
            image,
            size=frame_size,
            normalize=normalize,
            amp_dtype=amp_dtype,
            channels_last=channels_last,
            tta=tta,
            threshold=threshold,
        )
        _save_png(mask_to_png(mask, n_classes), mask_path)
        _save_png(overlay_png(image, mask), overlay_path)
        written.append((mask_path, overlay_path))
    if unreadable:
        raise UnreadableImages(written, unreadable, out)
    return written


class UnreadableImages(ValueError):
    """Some images could not be read; every other one was written (``written``, as :func:`predict_files` returns)."""

    def __init__(self, written: list[tuple[Path, Path]], problems: list[str], out: Path):
        self.written, self.problems = written, problems
        more = f" and {len(problems) - 1} more (listed above)" if len(problems) > 1 else ""
        super().__init__(
            f"{len(problems)} image(s) could not be read and have no mask: {problems[0]}{more}; the other "
            f"{len(written)} were written to {out}"
        )


def _run(args: argparse.Namespace) -> int:
    size = args.resize
    if size not in ("train", "full"):
        size = _positive_int(size, "--resize must be 'train', 'full' or a positive number of pixels")
    max_pixels = args.max_input_pixels
    if max_pixels is not None:
        max_pixels = _positive_int(max_pixels, "--max-input-pixels must be a positive whole number")
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
        threshold=args.threshold,
        progress=False if args.no_progress else None,
        overwrite=args.overwrite,
        max_pixels=max_pixels,
        log=lambda line: print(f"fcn-tutorial predict: {line}", file=sys.stderr),
    )
    seconds = time.perf_counter() - started
    print(
        f"wrote {len(written)} masks and overlays to {args.out}: {len(written) / seconds:.2f} frames/s "
        f"({seconds:.1f} s, reading and writing included{', 4 flips per frame' if args.tta else ''})"
    )
    return 0


def _positive_int(text: str, rule: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{rule}, got {text!r}")
    return value


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
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input image)")
    parser.add_argument(
        "--resize", default="train", help="network input: 'train' (the run's --resize, default), 'full', or pixels"
    )
    parser.add_argument(
        "--max-input-pixels",
        help=f"downscale larger frames for the network (default: ${MAX_INPUT_PIXELS_ENV} or "
        f"{DEFAULT_MAX_INPUT_PIXELS:,}); masks stay at full size",
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
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="two classes: call a pixel polyp above this probability (default: argmax, i.e. 0.5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

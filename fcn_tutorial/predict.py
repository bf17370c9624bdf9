"""Segmenting new images: ``predict``, ``predict_files`` and ``fcn-tutorial predict``.

::

    fcn-tutorial predict runs/fcn8s/best.pt frames/ --out predictions/

writes, for every image, ``<name>_mask.png`` (the class of each pixel; for two classes 0 is
background and 255 polyp) and ``<name>_overlay.png`` (the image with the predicted polyp tinted).
Any image size works: the network runs on the frame resized to its training size and the scores
are resized back, or on the full frame when the run used no ``--resize``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable, Sequence

import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import draw_segmentation_masks
from tqdm.auto import tqdm

from .data import read_image  # one reader for training and prediction: errors name the file
from .evaluate import ResizedInput, load_model

__all__ = ["IMAGE_SUFFIXES", "predict", "predict_files", "read_image", "find_images", "register"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
OVERLAY_COLORS = ["#00000000", "#ff2020", "#20c0ff", "#ffd020", "#40ff40"]  # class 0 stays untinted


@torch.no_grad()
def predict(model: nn.Module, image: torch.Tensor, *, size: int | None = None) -> torch.Tensor:
    """The class of every pixel of ``image`` (float ``3 x H x W`` in [0, 1]): an int64 ``H x W`` mask.

    ``size``: run the network on the image resized so that its shorter side is ``size``, and resize
    its scores back.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image of shape 3 x H x W, got {tuple(image.shape)}")
    network = ResizedInput(model, size) if size else model
    network.eval()
    device = next(model.parameters()).device
    logits = network(image.unsqueeze(0).to(device))
    return logits.argmax(dim=1)[0].cpu()


def find_images(paths: Iterable[str | Path]) -> list[Path]:
    """The image files among ``paths``; a folder stands for the images directly inside it, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
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


def overlay(image: torch.Tensor, mask: torch.Tensor, n_classes: int, alpha: float = 0.45) -> Image.Image:
    """``image`` with every class but the background tinted (torchvision's ``draw_segmentation_masks``)."""
    image_u8 = TF.to_dtype(image, torch.uint8, scale=True)
    classes = torch.stack([mask == c for c in range(1, n_classes)])
    colors = [OVERLAY_COLORS[1 + (c % (len(OVERLAY_COLORS) - 1))] for c in range(n_classes - 1)]
    drawn = draw_segmentation_masks(image_u8, classes, alpha=alpha, colors=colors)
    return TF.to_pil_image(drawn)


def predict_files(
    checkpoint_or_model: str | Path | nn.Module,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    size: int | str | None = "train",
    n_classes: int | None = None,
    device: str = "cpu",
    progress: bool | None = None,
) -> list[tuple[Path, Path]]:
    """Write ``<name>_mask.png`` and ``<name>_overlay.png`` into ``out`` for each image; return their paths.

    ``checkpoint_or_model`` is a checkpoint file (its run decides ``size="train"`` and the number of
    classes) or a model (give ``n_classes``; ``size="train"`` then means full size).
    """
    if isinstance(checkpoint_or_model, nn.Module):
        model, train_size = checkpoint_or_model.to(device), None
        n_classes = n_classes or 2
    else:
        model, config = load_model(checkpoint_or_model, device)
        train_size, n_classes = config.resize, config.n_classes
    run_size = train_size if size == "train" else None if size in (None, "full") else int(size)
    files = find_images(images)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in tqdm(files, desc="predicting", unit="image", disable=None if progress is None else not progress):
        image = read_image(path)
        mask = predict(model, image, size=run_size)
        mask_path, overlay_path = out / f"{path.stem}_mask.png", out / f"{path.stem}_overlay.png"
        mask_to_png(mask, n_classes).save(mask_path)
        overlay(image, mask, n_classes).save(overlay_path)
        written.append((mask_path, overlay_path))
    return written


def _run(args: argparse.Namespace) -> int:
    size = args.resize if args.resize in ("train", "full") else int(args.resize)
    written = predict_files(args.checkpoint, args.images, args.out, size=size, device=args.device,
                            progress=False if args.no_progress else None)
    print(f"wrote {len(written)} masks and overlays to {args.out}")
    return 0


def register(subparsers) -> None:
    """Add ``fcn-tutorial predict`` to the command line."""
    parser = subparsers.add_parser(
        "predict", help="segment images with a checkpoint",
        description="Write a mask PNG and an overlay PNG for every image (any size).",
    )
    parser.add_argument("checkpoint", help="best.pt or last.pt of a training run")
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--out", required=True, help="folder for <name>_mask.png and <name>_overlay.png")
    parser.add_argument("--resize", default="train",
                        help="network input: 'train' (the run's --resize, default), 'full', or pixels")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"])
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)

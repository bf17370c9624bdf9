"""Joint image and mask transforms, built on ``torchvision.transforms.v2``.

Wrapped as ``tv_tensors.Image`` and ``tv_tensors.Mask``, an image and its mask go through the same
random crop, flip, rotation and scaling; masks are resized with nearest-neighbour interpolation
(labels stay labels), pixels brought in from outside the frame are 0 in the image and
:data:`~fcn_tutorial.data.VOID` in the mask, and colour changes touch the image only.

Like torchvision's ``references/segmentation/presets.py``, two functions build the pipelines with
keyword-only options: :func:`train_transforms` and :func:`eval_transforms`. :func:`original_preset`
reproduces the 2017 tutorial (224 x 224 random crops, a horizontal flip, batches of 10 / 1 / 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from .datasets import VOID

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "JointTransform",
    "RandomZoomCrop",
    "RandomTranspose",
    "DataPreset",
    "train_transforms",
    "eval_transforms",
    "original_preset",
    "standard_preset",
    "PRESETS",
    "get_preset",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FILL = {tv_tensors.Image: 0.0, tv_tensors.Mask: VOID}  # what pixels from outside the frame become


class JointTransform:
    """``transform(image, mask) -> (image, mask)``: ``steps`` applied to both with the same randomness.

    Plain tensors are accepted too: the image (``3 x H x W``) and the mask (``H x W``) are wrapped as
    ``tv_tensors.Image`` and ``tv_tensors.Mask`` first, so that each step knows which is which.
    """

    def __init__(self, steps: list):
        self.steps = v2.Compose(steps) if steps else v2.Identity()

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        return self.steps(tv_tensors.Image(image), tv_tensors.Mask(mask))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.steps!r})"


def _size(size: int | tuple[int, int]) -> list[int]:
    return [size, size] if isinstance(size, int) else list(size)


class RandomZoomCrop(v2.Transform):
    """Zoom by a random factor in ``scale``, then cut a random ``size`` crop: in one resize of the crop only.

    Zooming the whole frame and then cropping (``RandomAffine`` + ``RandomCrop``) resamples every pixel
    of the frame, most of which the crop throws away. Here a window of ``size / zoom`` pixels is cut
    first (padded with 0 / VOID where it leaves the frame) and only that window is resized to ``size``:
    antialiased for the image, nearest-neighbour for the mask. Zoom 1.2 shows a 187-pixel window of the
    frame at 224 pixels; zoom 0.8 a 280-pixel one.
    """

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float], fill=FILL):
        super().__init__()
        self.size, self.scale, self.fill = _size(size), tuple(scale), fill

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        zoom = float(torch.empty(1).uniform_(*self.scale))
        window = [max(1, round(side / zoom)) for side in self.size]
        # where the window starts: anywhere in the frame, or anywhere around it when it is larger
        top = int(torch.randint(min(0, height - window[0]), max(0, height - window[0]) + 1, ()))
        left = int(torch.randint(min(0, width - window[1]), max(0, width - window[1]) + 1, ()))
        return {"top": top, "left": left, "window": window}

    def transform(self, inpt, params: dict):
        (top, left), (h, w) = (params["top"], params["left"]), params["window"]
        height, width = inpt.shape[-2:]
        padding = [max(0, -left), max(0, -top), max(0, left + w - width), max(0, top + h - height)]
        if any(padding):
            fill = self.fill[type(inpt)] if isinstance(self.fill, dict) else self.fill
            inpt = v2.functional.pad(inpt, padding, fill=fill)
            top, left = top + padding[1], left + padding[0]
        inpt = v2.functional.crop(inpt, top, left, h, w)
        return v2.functional.resize(inpt, self.size, antialias=True)  # masks: nearest neighbour


class RandomTranspose(v2.Transform):
    """Swap rows and columns (a mirror across the main diagonal) with probability ``p``.

    A polyp has no up, down, left or right. Flips give four of a square's eight orientations; a transpose
    after them gives the other four (a quarter turn is a transpose and a flip), all equally likely when
    every probability is 0.5. It costs nothing but a view. An ``H x W`` frame becomes ``W x H``, so use
    it with square crops (or :func:`~fcn_tutorial.data.pad_collate`, which pads frames of different sizes).
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs: list) -> dict:
        return {"apply": bool(torch.rand(()) < self.p)}

    def transform(self, inpt, params: dict):
        if not params["apply"]:
            return inpt
        return (
            tv_tensors.wrap(inpt.transpose(-2, -1), like=inpt)
            if isinstance(inpt, tv_tensors.TVTensor)
            else inpt.transpose(-2, -1)
        )


def train_transforms(
    *,
    crop_size: int | tuple[int, int] | None = 224,
    hflip: float = 0.5,
    vflip: float = 0.0,
    transpose: float = 0.0,
    rotation: float = 0.0,
    scale: tuple[float, float] | None = None,
    color_jitter: float = 0.0,
    resize: int | tuple[int, int] | None = None,
    normalize: bool = False,
) -> JointTransform:
    """Training augmentation, in order: resize, rotate, zoom and random crop (:class:`RandomZoomCrop`), flips,
    transpose (:class:`RandomTranspose`), colour jitter, normalise.

    ``resize``: an ``(h, w)`` size, or an int for the shorter side (None: keep the frame's size).
    ``rotation``: degrees, uniform in ``[-rotation, rotation]``. ``scale``: a zoom range such as
    ``(0.75, 1.25)``. ``crop_size``: random crops of this size (None: whole frames); smaller frames
    are padded with 0 (image) and VOID (mask). ``hflip``/``vflip``/``transpose``: their probabilities.
    ``color_jitter``: strength of random brightness, contrast and saturation changes (hue a quarter
    of it). ``normalize``: subtract the ImageNet mean and divide by its std, for a pretrained backbone.
    """
    steps: list = []
    if resize is not None:
        steps.append(v2.Resize(resize, antialias=True))
    if rotation:
        steps.append(v2.RandomRotation(rotation, fill=FILL))
    if scale is not None and crop_size is not None:
        steps.append(RandomZoomCrop(crop_size, scale))  # zoom only the part that the crop keeps
    elif scale is not None:
        steps.append(v2.RandomAffine(degrees=0, scale=scale, fill=FILL))
    elif crop_size is not None:
        steps.append(v2.RandomCrop(_size(crop_size), pad_if_needed=True, fill=FILL))
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    if vflip > 0:
        steps.append(v2.RandomVerticalFlip(p=vflip))
    if transpose > 0:
        steps.append(RandomTranspose(p=transpose))
    if color_jitter > 0:
        steps.append(
            v2.ColorJitter(
                brightness=color_jitter, contrast=color_jitter, saturation=color_jitter, hue=min(color_jitter / 4, 0.5)
            )
        )
    if normalize:
        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return JointTransform(steps)


def eval_transforms(*, resize: int | tuple[int, int] | None = None, normalize: bool = False) -> JointTransform:
    """Evaluation: optionally resize (masks by nearest neighbour) and normalise; nothing random."""
    steps: list = []
    if resize is not None:
        steps.append(v2.Resize(resize, antialias=True))
    if normalize:
        steps.append(v2.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return JointTransform(steps)


@dataclass(frozen=True)
class DataPreset:
    """A data recipe: the transforms of each split and the batch sizes."""

    name: str
    train_transform: JointTransform
    eval_transform: JointTransform
    batch_size: int
    eval_batch_size: int


def original_preset(*, hflip: float = 1.0, normalize: bool = False) -> DataPreset:
    """The 2017 tutorial: random 224 x 224 crops, a horizontal flip, [0, 1] inputs, batches 10 / 1 / 1.

    The original passed its flip flag as a probability of 1.0, so every training crop was mirrored;
    ``hflip`` lets you choose. Validation and test frames are full size, one at a time.
    """
    return DataPreset(
        "original",
        train_transforms(crop_size=224, hflip=hflip, normalize=normalize),
        eval_transforms(normalize=normalize),
        batch_size=10,
        eval_batch_size=1,
    )


def standard_preset(*, crop_size: int = 224, normalize: bool = True) -> DataPreset:
    """A modern recipe for a pretrained backbone: crops, both flips, mild rotation, scaling and colour jitter."""
    return DataPreset(
        "standard",
        train_transforms(
            crop_size=crop_size,
            hflip=0.5,
            vflip=0.5,
            rotation=15,
            scale=(0.75, 1.25),
            color_jitter=0.2,
            normalize=normalize,
        ),
        eval_transforms(normalize=normalize),
        batch_size=10,
        eval_batch_size=1,
    )


PRESETS = {"original": original_preset, "standard": standard_preset}


def get_preset(name: str, **options) -> DataPreset:
    """A named preset (``"original"`` or ``"standard"``), with ``options`` passed to its function."""
    if name not in PRESETS:
        raise ValueError(f"unknown data preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name](**options)

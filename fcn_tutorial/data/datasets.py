"""Polyp segmentation data sets: pairs of files, decoded into an image and a mask.

Every data set here is a :class:`SegmentationPairs`: a list of ``(image_path, mask_path)`` pairs,
a rule that turns the raw values of a mask file into class indices, and an optional joint transform.
An item is ``(image, mask)``:

* ``image``: a ``tv_tensors.Image``, ``float32``, ``3 x H x W``, values in ``[0, 1]`` (grayscale and
  RGBA files are converted to RGB);
* ``mask``: a ``tv_tensors.Mask``, ``int64``, ``H x W``, class indices ``0 .. n_classes - 1`` and
  :data:`VOID` (255) for pixels that the loss and the metrics ignore.

The three data sets differ only in where their pairs come from:

* :class:`Polyps912`: CVC-912, the set of the 2017 tutorial (``train/valid/test`` folders, BMP frames,
  TIFF masks whose value 2 is void);
* :class:`KvasirSEG`: Kvasir-SEG (JPEG frames and JPEG masks thresholded at 128) with a
  deterministic train/val/test split;
* :class:`SegmentationFolder`: any folder of images and masks paired by file name.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ..files import atomic_write_bytes
from .decode import display_path, load_labels, load_rgb
from .download import cache_home, data_home, download_kvasir_seg, polyps912_instructions

__all__ = [
    "VOID",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "SegmentationPairs",
    "Polyps912",
    "KvasirSEG",
    "SegmentationFolder",
    "MASK_VALUES_FILE",
    "declared_mask_values",
    "find_pairs",
    "hash_split",
    "read_image",
    "read_mask",
]

VOID = 255  # the label of pixels that the loss and the metrics ignore
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_JPEG_SUFFIXES = (".jpg", ".jpeg")


def canonical_split(split: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` (``"valid"`` and ``"validation"`` mean ``"val"``)."""
    try:
        return _SPLIT_ALIASES[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} ('valid' means 'val')") from None


# --------------------------------------------------------------------------------------------
# Decoding files


def read_image(path: str | os.PathLike) -> tv_tensors.Image:
    """An image file as a ``float32`` RGB tensor ``3 x H x W`` in ``[0, 1]``.

    Decoded by :func:`fcn_tutorial.data.decode.load_rgb`: any bit depth (a 16-bit PNG too), grey,
    palette and RGBA files become RGB, and a file over the pixel limit (``$FCN_TUTORIAL_MAX_PIXELS``)
    is refused before it is decoded. A missing, unreadable or truncated file raises an error naming it.
    """
    return tv_tensors.Image(load_rgb(path))


def read_raw_mask(path: str | os.PathLike) -> np.ndarray:
    """The raw values of a mask file as an integer ``H x W`` array (palette PNGs give their palette indices).

    See :func:`fcn_tutorial.data.decode.load_labels`: a colour mask is an error, not a grey one.
    """
    return load_labels(path)


MASK_VALUES_FILE = "mask_values.json"


def declared_mask_values(images_dir: str | os.PathLike) -> dict:
    """What the ``mask_values.json`` serving ``images_dir`` says, as keyword arguments of :func:`mask_lookup`.

    A data folder whose masks are not 0 (background) and 255 (polyp) says so in that file, beside
    ``images/`` or one folder up (above ``train/``, ``val/``, ``test/``), and every command that reads the
    folder follows it: ``{"values": {"0": 0, "128": "void", "255": 1}}`` maps each raw value to a class or
    to void, ``{"threshold": 128}`` calls every value from 128 up class 1. No file: ``{}``.
    """
    images_dir = Path(images_dir)
    path = next(
        (
            folder / MASK_VALUES_FILE
            for folder in (images_dir.parent, images_dir.parent.parent)
            if (folder / MASK_VALUES_FILE).is_file()
        ),
        None,
    )
    if path is None:
        return {}
    import json

    try:
        declared = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{display_path(path)} is not readable JSON ({error})") from None
    example = '{"values": {"0": 0, "128": "void", "255": 1}} or {"threshold": 128}'
    if not isinstance(declared, dict) or len(declared) != 1 or not {"values", "threshold"} & declared.keys():
        raise ValueError(f"{display_path(path)} must hold one of {example}, not {declared!r}")
    if "threshold" in declared:
        threshold = declared["threshold"]
        if not isinstance(threshold, int) or isinstance(threshold, bool) or not 0 < threshold <= 255:
            raise ValueError(f"{display_path(path)}: the threshold must be a whole number 1..255, not {threshold!r}")
        return {"threshold": threshold}
    values = declared["values"]
    wrong = not isinstance(values, dict) or any(
        not str(raw).isdigit() or int(raw) > 255 or not (label == "void" or _is_class(label))
        for raw, label in values.items()
    )
    if wrong:
        raise ValueError(
            f'{display_path(path)}: "values" maps raw mask values 0..255 to a class (0, 1, ...) or "void", '
            f"e.g. {example}; got {values!r}"
        )
    return {"value_to_class": {int(raw): VOID if label == "void" else label for raw, label in values.items()}}


def _is_class(label) -> bool:
    return isinstance(label, int) and not isinstance(label, bool) and 0 <= label < VOID


def mask_lookup(value_to_class: Mapping[int, int] | None = None, threshold: int | None = None) -> torch.Tensor:
    """A 256-entry table from raw mask value to class index; -1 marks values outside the mapping.

    ``threshold``: raw values ``>= threshold`` are class 1 and the others class 0 (for JPEG masks,
    whose compression noise blurs 0 and 255 into neighbouring values). Otherwise ``value_to_class``
    maps each expected raw value to a class or to :data:`VOID` (default ``{0: 0, 255: 1}``).
    """
    table = torch.full((256,), -1, dtype=torch.int64)
    if threshold is not None:
        if not 0 < threshold <= 255:
            raise ValueError(f"threshold must lie in 1..255, not {threshold}")
        table[:threshold] = 0
        table[threshold:] = 1
        return table
    for value, label in (value_to_class or {0: 0, 255: 1}).items():
        if not 0 <= int(value) <= 255:
            raise ValueError(f"mask values are 8-bit (0..255); cannot map {value}")
        table[int(value)] = int(label)
    return table


def folder_mask_lookup(
    images_dir: str | os.PathLike,
    mask_paths: Sequence[Path],
    value_to_class: Mapping[int, int] | None = None,
    threshold: int | None = None,
) -> torch.Tensor:
    """The :func:`mask_lookup` that a folder's masks are read with, by the first rule that applies:
    the ``value_to_class`` or ``threshold`` given; the folder's ``mask_values.json``
    (:func:`declared_mask_values`); a threshold of 128 when every mask is a JPEG file (compression blurs 0
    and 255 into nearby values); else ``{0: 0, 255: 1}``. :class:`SegmentationFolder` and
    :func:`~fcn_tutorial.data.check_folder` both read folders this way."""
    if value_to_class is None and threshold is None:
        declared = declared_mask_values(images_dir)
        value_to_class, threshold = declared.get("value_to_class"), declared.get("threshold")
    if value_to_class is None and threshold is None and all(p.suffix.lower() in _JPEG_SUFFIXES for p in mask_paths):
        threshold = 128
    return mask_lookup(value_to_class, threshold)


def read_mask(
    path: str | os.PathLike,
    lookup: torch.Tensor,
    *,
    size: tuple[int, int] | None = None,
    image_path: str | os.PathLike | None = None,
) -> tv_tensors.Mask:
    """A mask file as an ``int64`` ``H x W`` tensor of class indices and :data:`VOID`.

    ``lookup`` comes from :func:`mask_lookup`. ``size`` (height, width) is its image's size: a mask of
    another size, or with values outside the mapping, raises ``ValueError`` naming the file.
    """
    raw = read_raw_mask(path)
    if size is not None and tuple(raw.shape) != tuple(size):
        (height, width), (image_height, image_width) = raw.shape, size
        image = f" {display_path(image_path)}" if image_path is not None else ""
        raise ValueError(
            f"mask {display_path(path)} is {width}x{height} but its image{image} is {image_width}x{image_height}"
        )
    values = torch.from_numpy(raw.astype(np.int64))
    in_table = (values >= 0) & (values < len(lookup))  # 16-bit masks may hold values beyond the 8-bit table
    mask = torch.where(in_table, lookup[values.clamp(0, len(lookup) - 1)], -1)
    if (mask < 0).any():
        unexpected = values[mask < 0].unique()
        expected = (lookup >= 0).nonzero().flatten()
        raise ValueError(
            f"mask {display_path(path)} has values {_short_list(unexpected.tolist())} outside the "
            f"mapping (expected {_short_list(expected.tolist())}); if they mean a class or void, say so in a "
            f'{MASK_VALUES_FILE} beside images/, e.g. {{"values": {{"0": 0, "128": "void", "255": 1}}}}'
        )
    return tv_tensors.Mask(mask)


# --------------------------------------------------------------------------------------------
# Pairing files


def find_pairs(
    images_dir: str | os.PathLike,
    masks_dir: str | os.PathLike,
    *,
    mask_suffix: str | None = None,
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair the files of two folders by name stem: ``(name, image_path, mask_path)`` sorted by name.

    Returns the pairs and a list of problems (a missing folder, no images, an image without a mask, a
    mask without an image, two files of one name with different extensions), every problem at once.
    ``mask_suffix`` is added to an image's stem to name its mask (``"_mask"``: ``x.jpg`` <-> ``x_mask.png``).
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    problems = [
        f"folder {display_path(folder)} does not exist" for folder in (images_dir, masks_dir) if not folder.is_dir()
    ]
    if problems:
        return [], problems
    images, image_problems = _files_by_stem(images_dir, "image")
    masks, mask_problems = _files_by_stem(masks_dir, "mask")
    problems += image_problems + mask_problems
    if mask_suffix:
        masks = {stem[: -len(mask_suffix)]: path for stem, path in masks.items() if stem.endswith(mask_suffix)}
    if not images and not image_problems:
        problems.append(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {display_path(images_dir)}")
    for name in sorted(set(images) - set(masks)):
        expected = display_path(masks_dir / f"{name}{mask_suffix or ''}.*")
        problems.append(f"image {display_path(images[name])} has no mask (expected {expected})")
    for name in sorted(set(masks) - set(images)):
        problems.append(f"mask {display_path(masks[name])} has no image in {display_path(images_dir)}")
    pairs = [(name, images[name], masks[name]) for name in sorted(set(images) & set(masks))]
    return pairs, problems


def _files_by_stem(folder: Path, kind: str) -> tuple[dict[str, Path], list[str]]:
    files: dict[str, Path] = {}
    problems = []
    try:
        paths = sorted(folder.iterdir())
    except OSError as error:  # e.g. a folder without read permission
        return files, [f"cannot list the {kind} folder {display_path(folder)}: {error.strerror or error}"]
    for path in paths:
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in files:
            problems.append(
                f"two {kind}s named {display_path(path.stem)!r} in {display_path(folder)}: "
                f"{display_path(files[path.stem].name)} and {display_path(path.name)}"
            )
            continue
        files[path.stem] = path
    return files, problems


def hash_split(name: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a file name: ``"train"``, ``"val"`` or ``"test"``, from a hash of the name alone.

    ``sha256(name)``, read as a number, modulo 1000, falls in ``[0, 800)`` for train, ``[800, 900)``
    for val and ``[900, 1000)`` for test. Each name is assigned on its own, so the split of a frame
    does not change when other frames are added or removed (e.g. a partial copy of the data set).
    """
    bucket = int(hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest(), 16) % 1000
    train_end = round(1000 * fractions[0])
    return "train" if bucket < train_end else "val" if bucket < train_end + round(1000 * fractions[1]) else "test"


# --------------------------------------------------------------------------------------------
# The data sets


def _check_classes(lookup: torch.Tensor, n_classes: int, root: Path | None) -> None:
    """Refuse a mask mapping whose classes and ``n_classes`` disagree: a class no mask value gives would score
    NaN for ever, and a class index of ``n_classes`` or more would break the loss."""
    reachable = sorted({int(label) for label in lookup.tolist() if 0 <= label != VOID})
    if reachable == list(range(n_classes)):
        return
    where = f"the masks of {display_path(root)}" if root is not None else "the masks"
    values = ", ".join(f"class {c}" for c in reachable)
    hint = 'say which mask value is which class in mask_values.json, e.g. {"values": {"0": 0, "128": 1, "255": 2}}'
    if any(label >= n_classes for label in reachable):
        raise ValueError(f"{where} give {values}, more than n_classes={n_classes} allows: raise --n-classes, or {hint}")
    missing = ", ".join(str(c) for c in range(n_classes) if c not in reachable)
    raise ValueError(
        f"{where} give only {values}: with n_classes={n_classes}, class {missing} could never appear. "
        f"Use --n-classes {len(reachable)}, or {hint}"
    )


class SegmentationPairs(Dataset):
    """Image/mask pairs: the base of every data set in :mod:`fcn_tutorial.data`.

    ``pairs``: ``(name, image_path, mask_path)`` triples. ``lookup``: raw mask value to class
    (:func:`mask_lookup`). ``transform(image, mask) -> (image, mask)``: a joint transform, e.g.
    :func:`fcn_tutorial.data.transforms.train_transforms`. ``dataset[i]`` is the transformed pair,
    ``dataset.raw(i)`` the pair as decoded from disk.
    """

    def __init__(
        self,
        pairs: Iterable[tuple[str, Path, Path]],
        *,
        lookup: torch.Tensor,
        class_names: tuple[str, ...],
        transform: Callable | None = None,
        root: Path | None = None,
    ):
        pairs = list(pairs)
        _check_classes(lookup, len(class_names), root)
        self.names = [name for name, _, _ in pairs]
        self.image_paths = [Path(image) for _, image, _ in pairs]
        self.mask_paths = [Path(mask) for _, _, mask in pairs]
        self.lookup = lookup
        self.class_names = tuple(class_names)
        self.transform = transform
        self.root = root

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.names)

    def raw(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """The pair ``index`` as decoded from disk, without the transform."""
        image = read_image(self.image_paths[index])
        mask = read_mask(
            self.mask_paths[index], self.lookup, size=tuple(image.shape[-2:]), image_path=self.image_paths[index]
        )
        return image, mask

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        image, mask = self.raw(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask

    def __repr__(self) -> str:
        where = f", root={str(self.root)!r}" if self.root is not None else ""
        return f"{type(self).__name__}({len(self)} pairs, classes={self.class_names}{where})"


def _check_pairs(pairs, problems, what: str):
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more problems"] if len(problems) > 10 else [])
        raise (FileNotFoundError if "does not exist" in problems[0] else ValueError)(
            f"{what}: " + "; ".join(shown) + " (run `fcn-tutorial data check` to list every problem)"
        )
    return pairs


class SegmentationFolder(SegmentationPairs):
    """Your own folder: images and masks paired by file name stem.

    ``SegmentationFolder("my-polyps")`` reads ``my-polyps/images`` and ``my-polyps/masks``;
    ``SegmentationFolder(images_dir, masks_dir)`` any two folders. Masks are grayscale or palette
    PNG, TIFF, BMP or JPEG files. ``value_to_class`` maps raw mask values to classes or to
    :data:`VOID` (default ``{0: 0, 255: 1}``). ``threshold``: raw values ``>= threshold`` are class 1,
    the others 0; JPEG masks get ``threshold=128`` when neither is given, since JPEG compression
    turns 0 and 255 into nearby values. Given neither, a ``mask_values.json`` beside ``images/`` (or one
    folder up, above split folders) decides (:func:`declared_mask_values`). ``split`` (``"train"``,
    ``"val"``, ``"test"``) keeps the names that :func:`hash_split` assigns to it. Files named ``x.jpg``
    and ``x.png`` in one folder are an error, as are an image without a mask and a mask without an image.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        masks_dir: str | os.PathLike | None = None,
        *,
        value_to_class: Mapping[int, int] | None = None,
        n_classes: int = 2,
        threshold: int | None = None,
        transform: Callable | None = None,
        mask_suffix: str | None = None,
        split: str | None = None,
        class_names: tuple[str, ...] | None = None,
    ):
        images_dir = Path(images_dir)
        if masks_dir is None:
            images_dir, masks_dir = images_dir / "images", images_dir / "masks"
        masks_dir = Path(masks_dir)
        pairs, problems = find_pairs(images_dir, masks_dir, mask_suffix=mask_suffix)
        _check_pairs(pairs, problems, f"cannot pair {display_path(images_dir)} with {display_path(masks_dir)}")
        if split is not None:
            split = canonical_split(split)
            pairs = [pair for pair in pairs if hash_split(pair[0]) == split]
        lookup = folder_mask_lookup(images_dir, [mask for _, _, mask in pairs], value_to_class, threshold)
        self.images_dir, self.masks_dir, self.split = images_dir, masks_dir, split
        super().__init__(
            pairs,
            lookup=lookup,
            transform=transform,
            class_names=class_names or _class_names(n_classes),
            root=images_dir.parent,
        )


class KvasirSEG(SegmentationFolder):
    """Kvasir-SEG (Jha et al., MMM 2020): 1,000 polyp frames with masks drawn by doctors.

    Layout, as in the official archive: ``root/images/<id>.jpg`` and ``root/masks/<id>.jpg``. The
    masks are JPEG files, so they are thresholded at 128 (white: polyp, class 1).

    Kvasir-SEG has no official split. Each id goes to train, val or test (80/10/10) by a hash of the
    id alone (:func:`hash_split`): the same on every machine, and unchanged for the remaining ids when
    some are missing. The ids of each split, sorted, are written to ``split_dir/{train,val,test}.txt``
    so that you can read them; ``split_dir`` defaults to ``<cache>/kvasir-seg-splits``, where
    ``<cache>`` is ``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial`` (never the data folder, which
    may be read-only or shared). ``split_dir=False`` writes nothing.

    ``root`` defaults to ``<data>/kvasir-seg``, ``<data>`` being ``$FCN_TUTORIAL_DATA`` or
    ``~/.cache/fcn-tutorial``. ``download=True`` fetches the official archive
    (https://datasets.simula.no/downloads/kvasir-seg.zip) there when the folder is missing; see
    :func:`fcn_tutorial.data.download.download_kvasir_seg`. Terms: free for research and education
    with a citation of the paper; commercial use needs the authors' permission.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        download: bool = False,
        transform: Callable | None = None,
        *,
        split_dir: str | os.PathLike | bool | None = None,
    ):
        root = Path(root) if root is not None else data_home() / "kvasir-seg"
        split = canonical_split(split)
        if not (root / "images").is_dir() or not (root / "masks").is_dir():
            if not download:
                raise FileNotFoundError(
                    f"Kvasir-SEG not found: {root} has no images/ and masks/ folders. Pass download=True "
                    f"(or run `fcn-tutorial data download kvasir-seg`), or download "
                    f"https://datasets.simula.no/downloads/kvasir-seg.zip yourself and unpack it so that "
                    f"{root}/images and {root}/masks hold the .jpg files"
                )
            download_kvasir_seg(root)
        super().__init__(root / "images", root / "masks", threshold=128, transform=transform, split=split)
        if split_dir is not False:
            self.split_dir = Path(split_dir) if split_dir not in (None, True) else cache_home() / "kvasir-seg-splits"
            self._write_split_files(root)

    def _write_split_files(self, root: Path) -> None:
        """Write the sorted ids of every split (best effort: a read-only cache only gives a warning)."""
        names = sorted(_files_by_stem(root / "images", "image")[0])
        try:
            self.split_dir.mkdir(parents=True, exist_ok=True)
            for split in SPLITS:
                ids = [name for name in names if hash_split(name) == split]
                text = (
                    f"# Kvasir-SEG {split} split: {len(ids)} ids of {display_path(root)}, one per line, "
                    f"sorted.\n# Rule: sha256(id) mod 1000 < 800 train, < 900 val, else test "
                    f"(fcn_tutorial.data.hash_split).\n" + "".join(f"{name}\n" for name in ids)
                )
                data = text.encode("utf-8", "surrogateescape")  # ids are file names, whatever their bytes
                path = self.split_dir / f"{split}.txt"
                if not path.exists() or path.read_bytes() != data:
                    atomic_write_bytes(path, data)
        except OSError as error:
            warnings.warn(f"could not write the Kvasir-SEG split files to {self.split_dir}: {error}", stacklevel=3)


_POLYPS912_CLASSES = {
    2: ("background", "polyp"),
    3: ("background", "polyp", "lumen"),
    4: ("background", "polyp", "lumen", "specularity"),
}


class Polyps912(SegmentationPairs):
    """CVC-912: the 912 colonoscopy frames of the 2017 tutorial (``polyps_split7.zip``).

    Split by patient: train 547 frames (20 patients), valid 183 (8), test 182 (8). Layout::

        root/{train,valid,test}/images/<name>.bmp     e.g. CVC-612_026.bmp (384x288), CVC-300_273.bmp (574x500)
        root/{train,valid,test}/masks2/<name>.tif     0 background, 1 polyp, 2 void (the dark border)
                                masks3/, masks4/      3- and 4-class versions

    ``n_classes`` picks ``masks<n_classes>``; value ``n_classes`` is void in each (as 2 is in
    ``masks2``) and becomes :data:`VOID`. Only ``masks2`` was used by the tutorial; the class names
    of ``masks3``/``masks4`` (lumen, specularity) follow the early loaders, so check your copy with
    ``fcn-tutorial data check``. ``split`` is ``"train"``, ``"valid"`` (or ``"val"``) or ``"test"``.

    ``root`` defaults to ``<data>/polyps912`` (``<data>``: ``$FCN_TUTORIAL_DATA`` or
    ``~/.cache/fcn-tutorial``). Getting the archive: the tutorial's authors share it from Google
    Drive, and ``fcn-tutorial data download polyps912`` fetches it with the id that the 2017 set-up
    script names (needs ``pip install 'fcn-tutorial[gdrive]'``; see
    :func:`fcn_tutorial.data.download.download_polyps912`). By hand: download ``polyps_split7.zip``,
    unzip it, and move the folder that holds ``train/``, ``valid/`` and ``test/`` to ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        n_classes: int = 2,
        transform: Callable | None = None,
    ):
        root = Path(root) if root is not None else data_home() / "polyps912"
        if n_classes not in _POLYPS912_CLASSES:
            raise ValueError(f"CVC-912 has masks for 2, 3 or 4 classes (masks2/, masks3/, masks4/), not {n_classes}")
        folder = "valid" if canonical_split(split) == "val" else canonical_split(split)
        if not (root / folder / "images").is_dir():
            raise FileNotFoundError(
                f"CVC-912 not found: {root / folder / 'images'} does not exist. " + polyps912_instructions(root)
            )
        pairs, problems = find_pairs(root / folder / "images", root / folder / f"masks{n_classes}")
        _check_pairs(pairs, problems, f"CVC-912 {folder} split in {root}")
        lookup = mask_lookup({**{value: value for value in range(n_classes)}, n_classes: VOID})
        self.split = folder
        super().__init__(
            pairs, lookup=lookup, class_names=_POLYPS912_CLASSES[n_classes], transform=transform, root=root
        )


def _class_names(n_classes: int) -> tuple[str, ...]:
    if n_classes == 2:
        return ("background", "polyp")
    return ("background",) + tuple(f"class {index}" for index in range(1, n_classes))


def _short_list(values: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"

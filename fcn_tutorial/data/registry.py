"""Finding a data set by name or folder: :func:`get_dataset`, and :func:`load_polyp_data` for the book.

Names: ``"kvasir-seg"`` (:class:`~fcn_tutorial.data.KvasirSEG`, in ``<data>/kvasir-seg``),
``"polyps912"`` (:class:`~fcn_tutorial.data.Polyps912`, in ``<data>/polyps912``) and ``"synthetic"``
(generated once into ``<cache>/synthetic``, unless ``<data>/synthetic`` exists). Any other string is a
folder, read according to its layout:

* ``train/images`` + ``train/masks2`` (and ``valid/``, ``test/``): the CVC-912 layout;
* ``train/images`` + ``train/masks`` (and ``val/`` or ``valid/``, ``test/``): pairs split by folder;
* ``images/`` + ``masks/``: the Kvasir-SEG layout, split by a hash of each name (80/10/10).

``<data>`` is ``$FCN_TUTORIAL_DATA`` or ``~/.cache/fcn-tutorial``; ``<cache>`` is
``$FCN_TUTORIAL_CACHE`` or ``~/.cache/fcn-tutorial``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .datasets import KvasirSEG, Polyps912, SegmentationFolder, SegmentationPairs, canonical_split
from .download import cache_home, data_home, download_polyps912
from .synthetic import make_synthetic_polyps

__all__ = ["NAMES", "detect_layout", "get_dataset", "synthetic_root", "PolypData", "load_polyp_data"]

NAMES = ("kvasir-seg", "polyps912", "synthetic")


def detect_layout(path: str | os.PathLike) -> str | None:
    """``"cvc912"``, ``"split-folders"``, ``"images-masks"``, or None when ``path`` has no known layout."""
    path = Path(path)
    if (path / "train" / "images").is_dir():
        if any((path / "train" / f"masks{n}").is_dir() for n in (2, 3, 4)):
            return "cvc912"
        if (path / "train" / "masks").is_dir():
            return "split-folders"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "images-masks"
    return None


def synthetic_root(*, progress: bool | None = None) -> Path:
    """The synthetic set: ``<data>/synthetic`` if it exists, else ``<cache>/synthetic``, generated on first use."""
    shared = data_home() / "synthetic"
    if (shared / "train" / "images").is_dir():
        return shared
    root = cache_home() / "synthetic"
    if not (root / "train" / "images").is_dir():
        try:
            make_synthetic_polyps(root, progress=progress)
        except ValueError:
            if not (root / "train" / "images").is_dir():  # not a set that another process just finished
                raise
    return root


def get_dataset(
    name_or_path: str | os.PathLike,
    split: str,
    *,
    transform: Callable | None = None,
    download: bool = False,
    n_classes: int = 2,
    root: str | os.PathLike | None = None,
) -> SegmentationPairs:
    """The ``split`` (``"train"``, ``"val"``/``"valid"``, ``"test"``) of a named data set or of a folder.

    ``root`` overrides where a named data set lives. ``download=True`` fetches a missing named data set
    (Kvasir-SEG; CVC-912 from Google Drive, see :func:`~fcn_tutorial.data.download.download_polyps912`).
    """
    split = canonical_split(split)
    name = str(name_or_path)
    if name == "kvasir-seg":
        return KvasirSEG(root, split, download=download, transform=transform)
    if name == "polyps912":
        if download:
            download_polyps912(root=root)
        return Polyps912(root, split, n_classes=n_classes, transform=transform)
    if name == "synthetic":
        return Polyps912(root or synthetic_root(), split, n_classes=n_classes, transform=transform)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{name!r} is neither a data set name ({', '.join(NAMES)}) nor a folder")
    layout = detect_layout(path)
    if layout == "cvc912":
        return Polyps912(path, split, n_classes=n_classes, transform=transform)
    if layout == "split-folders":
        names = {"train": ["train"], "val": ["val", "valid", "validation"], "test": ["test"]}[split]
        folder = next((path / n for n in names if (path / n).is_dir()), path / names[0])
        return SegmentationFolder(folder / "images", folder / "masks", n_classes=n_classes, transform=transform)
    if layout == "images-masks":
        return SegmentationFolder(path, split=split, n_classes=n_classes, transform=transform)
    raise ValueError(
        f"{path} has no known layout: expected images/ + masks/, train/images/ + train/masks/, "
        f"or CVC-912's train/images/ + train/masks2/"
    )


@dataclass
class PolypData:
    """The three splits of the data the book uses, and which data set they come from."""

    name: str  # "kvasir-seg", "polyps912" or "synthetic"
    root: Path
    train: SegmentationPairs
    val: SegmentationPairs
    test: SegmentationPairs
    synthetic: bool  # True when the real data was not available
    reason: str  # why the synthetic set is used ("" otherwise)

    @property
    def valid(self) -> SegmentationPairs:
        return self.val


def load_polyp_data(
    prefer: str = "kvasir-seg",
    *,
    download: bool = True,
    train_transform: Callable | None = None,
    eval_transform: Callable | None = None,
    progress: bool | None = None,
) -> PolypData:
    """Real polyp data when available, else the synthetic set, saying which (for the book's chapters).

    Tries ``prefer`` (``"kvasir-seg"`` or ``"polyps912"``; with ``download=True`` a missing
    Kvasir-SEG is downloaded), and falls back to ``"synthetic"`` if that fails; ``reason`` then says why,
    so that a chapter can print a visible note.
    """
    if not isinstance(prefer, (str, os.PathLike)):
        raise TypeError(f"prefer is a data set name or a folder, not {type(prefer).__name__}")
    reason = ""
    if prefer != "synthetic":
        try:
            splits = [
                get_dataset(
                    prefer,
                    split,
                    download=download and split == "train",
                    transform=train_transform if split == "train" else eval_transform,
                )
                for split in ("train", "val", "test")
            ]
            return PolypData(prefer, splits[0].root, *splits, synthetic=False, reason="")
        except (OSError, ValueError) as error:
            reason = f"{prefer}: {error}"
    root = synthetic_root(progress=progress)
    splits = [
        Polyps912(root, split, transform=train_transform if split == "train" else eval_transform)
        for split in ("train", "val", "test")
    ]
    return PolypData("synthetic", root, *splits, synthetic=True, reason=reason or "the synthetic set was asked for")

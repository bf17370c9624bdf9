"""Checking a data folder: every problem at once, or statistics when all is well.

:func:`check_folder` reads every pair of a folder in any supported layout (see
:mod:`fcn_tutorial.data.registry`) and collects the problems (missing folders, unpaired or duplicate
files, unreadable, truncated or non-image files, files over the pixel limit, colour masks that are not
grey-level label maps, masks whose size differs from their image, mask values outside the mapping)
instead of stopping at the first; every file is decoded by :mod:`fcn_tutorial.data.decode`.
``fcn-tutorial data check PATH`` prints its report.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .datasets import VOID, find_pairs, folder_mask_lookup, mask_lookup, read_image, read_mask
from .decode import display_path, max_pixels
from .registry import detect_layout

__all__ = ["FolderReport", "check_folder"]


@dataclass
class FolderReport:
    """What :func:`check_folder` found: problems, and counts, sizes and polyp areas of the good pairs."""

    path: Path
    layout: str | None
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # good pairs per group (split or folder)
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> number of frames
    polyp_fractions: list[float] = field(default_factory=list)  # polyp share of the non-void pixels, per frame

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if not self.ok:
            count = f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
            lines = [f"{count} in {display_path(self.path)}:"]
            return "\n".join(lines + [f"  {problem}" for problem in self.problems])
        total = sum(self.counts.values())
        groups = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.sizes.most_common(5))
        more = f" and {len(self.sizes) - 5} more" if len(self.sizes) > 5 else ""
        fractions = np.array(self.polyp_fractions) * 100
        return "\n".join(
            [
                f"{display_path(self.path)}: {total} image/mask pairs, no problems (layout: {self.layout})",
                f"  pairs:      {groups}",
                f"  sizes:      {sizes}{more}",
                f"  polyp area: mean {fractions.mean():.1f}%, median {np.median(fractions):.1f}%, "
                f"min {fractions.min():.1f}%, max {fractions.max():.1f}% of the non-void pixels; "
                f"{int((fractions == 0).sum())} frames without polyp",
            ]
        )


def _groups(path: Path, layout: str, n_classes: int) -> list[tuple[str, Path, Path]]:
    """(group name, images folder, masks folder) to check for a layout."""
    if layout == "images-masks":
        return [("all", path / "images", path / "masks")]
    masks = f"masks{n_classes}" if layout == "cvc912" else "masks"
    return [
        (split.name, split / "images", split / masks) for split in sorted(path.iterdir()) if (split / "images").is_dir()
    ]


def check_folder(
    path: str | os.PathLike,
    *,
    value_to_class: dict[int, int] | None = None,
    threshold: int | None = None,
    n_classes: int = 2,
    progress: bool | None = None,
) -> FolderReport:
    """Check every pair of the data folder ``path`` and return a :class:`FolderReport`.

    Masks are decoded as the data sets do: CVC-912's ``masks2`` with 0, 1 and 2 (void); other
    folders with ``value_to_class`` (default 0 -> 0, 255 -> 1) or ``threshold`` (JPEG masks: 128), else
    with what the folder's ``mask_values.json`` declares (:func:`~fcn_tutorial.data.declared_mask_values`).
    """
    path = Path(path)
    max_pixels()  # a bad $FCN_TUTORIAL_MAX_PIXELS is one error, not one problem per file
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        return FolderReport(path, None, [f"folder {display_path(path)} {problem}"])
    layout = detect_layout(path)
    report = FolderReport(path, layout)
    if layout is None:
        report.problems.append(
            f"{display_path(path)} has no known layout: expected images/ + masks/, train/images/ + "
            f"train/masks/, or CVC-912's train/images/ + train/masks2/"
        )
        return report
    for group, images_dir, masks_dir in _groups(path, layout, n_classes):
        pairs, problems = find_pairs(images_dir, masks_dir)
        report.problems += problems
        if layout == "cvc912":
            lookup = mask_lookup({**{value: value for value in range(n_classes)}, n_classes: VOID})
        else:
            try:  # as SegmentationFolder reads the folder, mask_values.json included
                lookup = folder_mask_lookup(images_dir, [mask for _, _, mask in pairs], value_to_class, threshold)
            except ValueError as error:
                if str(error) not in report.problems:  # one file above the split folders: said once
                    report.problems.append(str(error))
                continue
        good = 0
        for _, image_path, mask_path in tqdm(
            pairs, desc=f"checking {group}", unit="pair", disable=None if progress is None else not progress
        ):
            try:
                image = read_image(image_path)
                mask = read_mask(mask_path, lookup, size=tuple(image.shape[-2:]), image_path=image_path)
            except (ValueError, FileNotFoundError) as error:
                report.problems.append(str(error))
                continue
            good += 1
            report.sizes[(image.shape[-1], image.shape[-2])] += 1
            valid = int((mask != VOID).sum())
            report.polyp_fractions.append(int((mask == 1).sum()) / valid if valid else 0.0)
        report.counts[group] = good
    return report

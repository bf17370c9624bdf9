"""Polyp data: data sets, a synthetic set, joint augmentation, loaders, downloads and checks.

Every data set returns ``(image, mask)``: a ``float32`` ``3 x H x W`` image in ``[0, 1]`` and an
``int64`` ``H x W`` mask of class indices, with :data:`VOID` (255) for pixels to ignore.

    from fcn_tutorial.data import KvasirSEG, get_dataset
    from fcn_tutorial.data.transforms import train_transforms
    train = KvasirSEG(split="train", download=True, transform=train_transforms(crop_size=224))
"""

from .check import FolderReport, check_folder
from .datasets import (
    IMAGE_SUFFIXES,
    MASK_VALUES_FILE,
    VOID,
    KvasirSEG,
    Polyps912,
    SegmentationFolder,
    SegmentationPairs,
    declared_mask_values,
    find_pairs,
    folder_mask_lookup,
    hash_split,
    read_image,
    read_mask,
)
from .download import cache_home, data_home, download_kvasir_seg, download_polyps912
from .loaders import Loaders, make_loaders, pad_collate
from .registry import PolypData, detect_layout, get_dataset, load_polyp_data
from .synthetic import make_synthetic_polyps
from .transforms import eval_transforms, original_preset, train_transforms

__all__ = [
    "VOID",
    "IMAGE_SUFFIXES",
    "SegmentationPairs",
    "Polyps912",
    "KvasirSEG",
    "SegmentationFolder",
    "MASK_VALUES_FILE",
    "declared_mask_values",
    "find_pairs",
    "folder_mask_lookup",
    "hash_split",
    "read_image",
    "read_mask",
    "make_synthetic_polyps",
    "train_transforms",
    "eval_transforms",
    "original_preset",
    "make_loaders",
    "pad_collate",
    "Loaders",
    "get_dataset",
    "load_polyp_data",
    "PolypData",
    "detect_layout",
    "check_folder",
    "FolderReport",
    "data_home",
    "cache_home",
    "download_kvasir_seg",
    "download_polyps912",
]

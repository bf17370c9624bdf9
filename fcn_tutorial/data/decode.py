"""Decoding image and mask files: one reader, with limits, whose errors name the file.

Every image and mask the package reads goes through :func:`load_rgb` or :func:`load_labels`, which
open the file with Pillow (JPEG, PNG, BMP, TIFF) and guarantee:

* **a pixel limit**: the width and height are read from the file's header and checked against
  :func:`max_pixels` *before* anything is decoded, so a small file that claims 20000 x 20000 pixels
  is refused instead of filling the memory. The limit is ``$FCN_TUTORIAL_MAX_PIXELS`` or
  :data:`DEFAULT_MAX_PIXELS` (40 megapixels, twenty times the largest Kvasir-SEG frame);
* **every bit depth**: 1-, 8- and 16-bit files come out as the same ``[0, 1]`` image
  (a 16-bit PNG is divided by 65535, not 255). A mask's values are labels whatever their depth;
* **grey-level masks**: a mask must be a label map (grey levels or palette indices). A colour mask,
  e.g. a red polyp saved as JPEG, is an error, never quietly turned into background;
* **clean errors**: a missing, unreadable, truncated or non-image file raises ``FileNotFoundError``
  or ``ValueError`` whose one-line message names the file (printable even when its name is not
  UTF-8) and says what to do, never a decoder's internal message.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV", "max_pixels", "display_path", "load_rgb", "load_labels"]

DEFAULT_MAX_PIXELS = 40_000_000
MAX_PIXELS_ENV = "FCN_TUTORIAL_MAX_PIXELS"
FORMATS = ("JPEG", "PNG", "BMP", "TIFF")  # the formats that are decoded; others are refused
JPEG_CHROMA_TOLERANCE = 24  # JPEG noise moves the colour of a grey pixel by a few levels; red moves it by ~120


def max_pixels() -> int:
    """The largest image (width x height) that will be decoded: ``$FCN_TUTORIAL_MAX_PIXELS`` or 40 million."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(
            f"{MAX_PIXELS_ENV}={value!r} is not a positive whole number of pixels; "
            f"set it to e.g. 100000000 (default {DEFAULT_MAX_PIXELS})"
        )
    return limit


def display_path(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes that are not UTF-8 are shown as ``\\xe9`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def load_rgb(path: str | os.PathLike) -> torch.Tensor:
    """An image file as a ``float32`` tensor ``3 x H x W`` in ``[0, 1]``, whatever its bit depth.

    Grey, palette and RGBA files become RGB; 16-bit grey files are divided by 65535 and float
    (32-bit TIFF) files must already lie in ``[0, 1]``.
    """
    with _open(path, "image") as file:
        mode = file.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            grey = np.asarray(file).astype(np.float32)
            if grey.size and (grey.min() < 0 or grey.max() > 65535):
                raise ValueError(
                    f"image {display_path(path)} is a 32-bit integer image with values outside "
                    f"0..65535; save it as an 8- or 16-bit image"
                )
            return torch.from_numpy(grey / 65535).expand(3, *grey.shape).contiguous()
        if mode == "F":
            grey = np.asarray(file, dtype=np.float32)
            if not np.isfinite(grey).all() or (grey.size and (grey.min() < 0 or grey.max() > 1)):
                raise ValueError(
                    f"image {display_path(path)} is a float image with values outside [0, 1]; "
                    f"save it as an 8- or 16-bit image"
                )
            return torch.from_numpy(grey.copy()).expand(3, *grey.shape).contiguous()
        rgb = np.asarray(file if mode == "RGB" else file.convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).to(torch.float32).div_(255)


def load_labels(path: str | os.PathLike) -> np.ndarray:
    """The values of a mask file as an integer ``H x W`` array: grey levels, or palette indices.

    16-bit and 32-bit grey files keep their values (labels, not intensities); float files must hold
    whole numbers. A colour mask (an RGB file whose channels differ, or a JPEG whose colour departs
    from grey by more than :data:`JPEG_CHROMA_TOLERANCE` levels) raises ``ValueError``.
    """
    with _open(path, "mask", jpeg_mode="YCbCr") as file:
        mode = file.mode
        if mode in ("L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I"):
            values = np.asarray(file)
            return values.astype(values.dtype.newbyteorder("="), copy=False)
        if mode == "1":
            return np.asarray(file.convert("L"))
        if mode in ("LA", "PA"):
            return np.asarray(file.getchannel(0))
        if mode == "F":
            values = np.asarray(file)
            if not np.isfinite(values).all() or (values != np.round(values)).any():
                raise ValueError(
                    f"mask {display_path(path)} is a float image whose values are not whole numbers; "
                    f"save it as an 8-bit grey-level image of class values"
                )
            return values.astype(np.int64)
        if mode == "YCbCr":  # a colour-coded JPEG, decoded as luma and chroma
            return _jpeg_grey(file, path)
        rgb = np.asarray(file if mode == "RGB" else file.convert("RGB"))
        coloured = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])
        _refuse_colour(path, rgb, coloured)
        return rgb[..., 0]


def _jpeg_grey(file: Image.Image, path) -> np.ndarray:
    """The grey levels of a colour-coded JPEG mask: its luma, refused if its chroma is not grey.

    Luma is what a grey-scale JPEG decoder returns; chroma (Cb, Cr) is 128 wherever the mask is grey.
    """
    ycbcr = np.asarray(file)
    chroma = np.abs(ycbcr[..., 1:].astype(np.int16) - 128).max(axis=-1)
    coloured = chroma > JPEG_CHROMA_TOLERANCE
    if coloured.any():
        file = Image.fromarray(ycbcr, "YCbCr").convert("RGB")
        _refuse_colour(path, np.asarray(file), coloured)
    return ycbcr[..., 0].copy()


def _refuse_colour(path, rgb: np.ndarray, coloured: np.ndarray) -> None:
    if not coloured.any():
        return
    y, x = (int(i[0]) for i in np.nonzero(coloured))
    share = 100 * coloured.mean()
    raise ValueError(
        f"mask {display_path(path)} is a colour image, not a grey-level label map ({share:.1f}% of its "
        f"pixels are coloured, e.g. RGB {tuple(int(v) for v in rgb[y, x])} at x={x}, y={y}); save the "
        f"classes as grey levels (e.g. 0 background, 255 polyp) in a grayscale PNG"
    )


@contextmanager
def _open(path: str | os.PathLike, kind: str, *, jpeg_mode: str | None = None) -> Iterator[Image.Image]:
    """``with _open(path, "image") as file``: a decoded Pillow image, or one clean error naming the file.

    ``jpeg_mode="YCbCr"`` decodes a colour JPEG to luma and chroma instead of RGB.
    """
    file = _decode(Path(path), f"{kind} {display_path(path)}", jpeg_mode)
    try:
        yield file
    finally:
        file.close()


def _decode(path: Path, what: str, jpeg_mode: str | None) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"{what} does not exist")
    if not path.is_file():
        raise ValueError(f"{what} is not a file")
    limit = max_pixels()
    file = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit
            file = Image.open(path, formats=FORMATS)  # reads the header only
            width, height = file.size
            if width * height > limit:
                raise _TooLarge(
                    f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
                    f"{limit:,}; shrink it, or raise the limit with {MAX_PIXELS_ENV}"
                )
            if jpeg_mode and file.format in ("JPEG", "MPO") and file.mode == "RGB":
                file.draft(jpeg_mode, file.size)  # before load: the decoder then outputs that mode
            file.load()
    except _TooLarge as error:
        problem = str(error)
    except Image.DecompressionBombError as error:  # Pillow's own check, in Image.open, for > 179 megapixels
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        if pixels and int(pixels[1]) > limit:
            problem = (
                f"{what} is {int(pixels[1]):,} pixels, more than the limit of {limit:,}; shrink it, or "
                f"raise the limit with {MAX_PIXELS_ENV}"
            )
        else:
            problem = (
                f"{what} has more pixels than Pillow decodes ({_reason(error)}); shrink it, or raise "
                f"PIL.Image.MAX_IMAGE_PIXELS too"
            )
    except UnidentifiedImageError:
        problem = f"{what} is unreadable or truncated (not a JPEG, PNG, BMP or TIFF image); check the file or remove it"
    except PermissionError:
        problem = f"{what} cannot be read: permission denied; check its permissions"
    except Exception as error:  # noqa: BLE001 - a decoder's many ways to fail on a broken file become one message
        problem = f"{what} is unreadable or truncated ({_reason(error)}); check the file or remove it"
    else:
        return file
    if file is not None:
        file.close()
    raise ValueError(problem)


class _TooLarge(Exception):
    pass


def _reason(error: Exception) -> str:
    """The first line of a decoder's message, without file paths, e.g. 'image file is truncated'."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if not text or "/" in text or "\\" in text:  # a message that quotes a path (perhaps the library's own)
        return type(error).__name__
    return text[:200]

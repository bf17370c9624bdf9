"""fcn_tutorial.data.decode: every bit depth, grey-level masks, the pixel limit, and errors that name the file.

Every malformed file is made on the fly: 16-bit PNGs, colour masks, truncated files of each format,
headers that claim 20000 x 20000 pixels, file names that are not UTF-8.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from fcn_tutorial.cli import main
from fcn_tutorial.data import SegmentationFolder, check_folder, hash_split, read_image, read_mask
from fcn_tutorial.data.datasets import KvasirSEG, mask_lookup
from fcn_tutorial.data.decode import DEFAULT_MAX_PIXELS, display_path, load_labels, max_pixels

BINARY = mask_lookup({0: 0, 255: 1})


def png(array: np.ndarray, bit_depth: int) -> bytes:
    """A PNG file of an ``H x W`` (grey) or ``H x W x 3`` (RGB) array, any bit depth (Pillow writes no 16-bit RGB)."""
    height, width = array.shape[:2]
    colour_type = 2 if array.ndim == 3 else 0
    dtype = ">u2" if bit_depth == 16 else ">u1"
    rows = b"".join(b"\0" + row.astype(dtype).tobytes() for row in array.reshape(height, -1))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def claiming(format: str, width: int, height: int) -> bytes:
    """A small valid file of ``format`` whose header is patched to claim ``width x height`` pixels."""
    data = bytearray(encoded(Image.new("RGB", (16, 12), (120, 60, 40)), format))
    if format == "JPEG":
        at = data.index(b"\xff\xc0") + 5  # SOF0: length (2), precision (1), height (2), width (2)
        data[at : at + 4] = struct.pack(">HH", height, width)
    elif format == "PNG":
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif format == "BMP":
        data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def pair_folder(root: Path, n: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.new("RGB", (30, 20), (150, 60, 50)).save(root / "images" / f"f{i}.png")
        mask = np.zeros((20, 30), np.uint8)
        mask[5:15, 5:20] = 255
        Image.fromarray(mask).save(root / "masks" / f"f{i}.png")
    return root


# --------------------------------------------------------------------------------------------
# Every bit depth


def test_16_bit_grey_png_image_lies_in_0_1(tmp_path):
    values = np.linspace(0, 65535, 20 * 30).reshape(20, 30).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"  # really a 16-bit file
    image = read_image(tmp_path / "deep.png")
    assert image.dtype == torch.float32 and image.shape == (3, 20, 30)
    assert image.min() == 0 and image.max() == 1
    assert torch.allclose(image[1], torch.from_numpy(values / 65535).float())


def test_16_bit_rgb_png_image_lies_in_0_1(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (12, 16, 3)).astype(np.uint16)
    (tmp_path / "deep-rgb.png").write_bytes(png(values, 16))
    image = read_image(tmp_path / "deep-rgb.png")
    assert image.shape == (3, 12, 16) and 0 <= image.min() and image.max() <= 1
    expected = torch.from_numpy(values / 65535).permute(2, 0, 1).float()
    assert (image - expected).abs().max() < 1 / 255  # Pillow keeps the 8 high bits


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "RGBA", "CMYK"])
def test_other_modes_become_rgb_in_0_1(tmp_path, mode):
    Image.new("RGB", (30, 20), (255, 255, 255)).convert(mode).save(tmp_path / "x.tif")
    image = read_image(tmp_path / "x.tif")
    assert image.shape == (3, 20, 30) and torch.allclose(image, torch.ones_like(image), atol=0.02)


def test_float_images_must_lie_in_0_1(tmp_path):
    Image.fromarray(np.full((4, 5), 0.25, np.float32)).save(tmp_path / "ok.tif")
    assert torch.allclose(read_image(tmp_path / "ok.tif"), torch.full((3, 4, 5), 0.25))
    Image.fromarray(np.full((4, 5), 200.0, np.float32)).save(tmp_path / "bright.tif")
    with pytest.raises(ValueError, match=r"image .*bright.tif is a float image with values outside \[0, 1\]"):
        read_image(tmp_path / "bright.tif")


def test_16_bit_masks_are_labels_not_intensities(tmp_path):
    labels = np.zeros((20, 30), np.uint16)
    labels[5:10] = 1
    labels[10:12] = 2
    Image.fromarray(labels).save(tmp_path / "labels16.png")
    assert Image.open(tmp_path / "labels16.png").mode == "I;16"
    mask = read_mask(tmp_path / "labels16.png", mask_lookup({0: 0, 1: 1, 2: 255}))
    assert mask.dtype == torch.int64 and mask.unique().tolist() == [0, 1, 255]
    assert int((mask == 1).sum()) == 5 * 30
    Image.fromarray((labels > 0).astype(np.uint16) * 65535).save(tmp_path / "binary16.png")
    with pytest.raises(ValueError, match=r"mask .*binary16.png has values \[65535\] outside the mapping"):
        read_mask(tmp_path / "binary16.png", BINARY)


# --------------------------------------------------------------------------------------------
# Masks must be grey-level label maps


@pytest.mark.parametrize("name, quality", [("red.jpg", 90), ("red.png", None), ("red.bmp", None)])
def test_colour_masks_are_reported_not_read_as_background(tmp_path, name, quality):
    mask = Image.new("RGB", (30, 20))
    mask.paste((255, 0, 0), (5, 5, 20, 15))  # a red polyp on black: its grey level (76) is below 128
    mask.save(tmp_path / name, **({"quality": quality} if quality else {}))
    with pytest.raises(ValueError, match=rf"mask .*{name} is a colour image, not a grey-level label map .*RGB \("):
        load_labels(tmp_path / name)


def test_grey_masks_in_colour_jpegs_read_as_before(tmp_path):
    """Kvasir-SEG's masks are colour-coded JPEGs of grey pixels: their luma, as a grey-scale decoder gives it."""
    grey = np.zeros((20, 30), np.uint8)
    grey[5:15, 5:20] = 255
    Image.fromarray(grey).convert("RGB").save(tmp_path / "grey.jpg", quality=30)
    with Image.open(tmp_path / "grey.jpg") as file:
        assert file.mode == "RGB"
        expected = np.asarray(file.convert("L"))
    labels = load_labels(tmp_path / "grey.jpg")
    assert labels.shape == (20, 30) and np.abs(labels.astype(int) - expected).max() <= 1
    mask = read_mask(tmp_path / "grey.jpg", mask_lookup(threshold=128))
    assert int(mask.sum()) == 10 * 15


def test_real_kvasir_masks_are_grey(kvasir_root):
    for path in sorted((kvasir_root / "masks").glob("*.jpg"))[:40]:
        assert set(np.unique(load_labels(path) >= 128)) <= {False, True}


# --------------------------------------------------------------------------------------------
# The pixel limit, checked from the header


@pytest.mark.parametrize("format", ["JPEG", "PNG", "BMP"])
@pytest.mark.parametrize("width, height", [(20000, 20000), (8000, 8000)])  # above and below Pillow's own limit
def test_a_huge_header_is_refused_before_decoding(tmp_path, monkeypatch, format, width, height):
    path = tmp_path / f"bomb.{format.lower()}"
    path.write_bytes(claiming(format, width, height))
    assert path.stat().st_size < 2000
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded a pixel bomb"))
    for read in (read_image, lambda p: read_mask(p, BINARY)):
        with pytest.raises(
            ValueError,
            match=rf"bomb.{format.lower()} is (\d+x\d+ = )?{width * height:,} pixels, "
            rf"more than the limit of 40,000,000; .*FCN_TUTORIAL_MAX_PIXELS",
        ):
            read(path)


def test_a_small_tiff_of_14000x14000_pixels_is_one_problem_of_data_check(tmp_path):
    root = pair_folder(tmp_path / "data")
    Image.new("1", (14000, 14000)).save(root / "images" / "f0.tif", compression="group4")
    (root / "images" / "f0.png").unlink()
    assert (root / "images" / "f0.tif").stat().st_size < 300_000
    report = check_folder(root)
    assert len(report.problems) == 1 and report.counts == {"all": 1}
    assert "f0.tif is 196,000,000 pixels, more than the limit of 40,000,000" in report.problems[0]


def test_the_pixel_limit_can_be_raised_or_lowered(tmp_path, monkeypatch):
    Image.new("RGB", (30, 20)).save(tmp_path / "x.png")
    assert max_pixels() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv("FCN_TUTORIAL_MAX_PIXELS", "599")
    with pytest.raises(ValueError, match="30x20 = 600 pixels, more than the limit of 599"):
        read_image(tmp_path / "x.png")
    monkeypatch.setenv("FCN_TUTORIAL_MAX_PIXELS", "600")
    assert read_image(tmp_path / "x.png").shape == (3, 20, 30)
    for bad in ("lots", "-5", "0", "1.5"):
        monkeypatch.setenv("FCN_TUTORIAL_MAX_PIXELS", bad)
        with pytest.raises(ValueError, match=f"FCN_TUTORIAL_MAX_PIXELS='{bad}' is not a positive whole number"):
            read_image(tmp_path / "x.png")


# --------------------------------------------------------------------------------------------
# Broken files: one line that names the file, never a decoder's message


def _broken_files(folder: Path) -> dict[str, bytes]:
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 50, 3), np.uint8))
    files = {
        f"cut.{ext}": encoded(picture, format)[: len(encoded(picture, format)) // 2]
        for ext, format in (("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("tif", "TIFF"))
    }
    files.update(
        {
            "empty.png": b"",
            "text.jpg": b"just some notes\n",
            "gif.png": encoded(picture, "GIF"),
            "header-only.jpg": encoded(picture, "JPEG")[:200],
        }
    )
    return files


@pytest.mark.parametrize("name", sorted(_broken_files(Path())))
def test_broken_files_name_the_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(_broken_files(tmp_path)[name])
    for read in (read_image, lambda p: read_mask(p, BINARY)):
        with pytest.raises(ValueError) as error:
            read(path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message
        assert "unreadable or truncated" in message and "check the file or remove it" in message
        assert not any(word in message for word in (".cpp", ".c:", "torchvision", "Traceback", "decoder error"))


def test_a_folder_and_a_missing_file(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match=r"image .*folder.png is not a file"):
        read_image(tmp_path / "folder.png")
    with pytest.raises(FileNotFoundError, match=r"mask .*gone.png does not exist"):
        read_mask(tmp_path / "gone.png", BINARY)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_without_read_permission(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "locked.png")
    (tmp_path / "locked.png").chmod(0)
    with pytest.raises(ValueError, match=r"image .*locked.png cannot be read: permission denied"):
        read_image(tmp_path / "locked.png")


def test_file_names_that_are_not_utf8(tmp_path, capsys):
    root = pair_folder(tmp_path / "data", n=1)
    odd = os.fsdecode(b"caf\xe9")
    os.replace(root / "images" / "f0.png", root / "images" / f"{odd}.png")
    os.replace(root / "masks" / "f0.png", root / "masks" / f"{odd}.png")
    dataset = SegmentationFolder(root)
    assert dataset.names == [odd] and dataset[0][1].shape == (20, 30)
    assert hash_split(odd) in ("train", "val", "test")
    assert display_path(root / "images" / f"{odd}.png").endswith("caf\\xe9.png")
    KvasirSEG(root, "train", split_dir=tmp_path / "splits")  # writes the split files, name and all
    assert b"caf\xe9\n" in b"".join((tmp_path / "splits" / f"{s}.txt").read_bytes() for s in ("train", "val", "test"))

    (root / "images" / os.fsdecode(b"bad\xff.png")).write_bytes(b"not a picture")
    Image.new("RGB", (30, 20), (255, 0, 0)).save(root / "masks" / os.fsdecode(b"bad\xff.png"))
    report = check_folder(root)
    text = str(report)
    text.encode("utf-8")  # printable: no lone surrogates
    assert "bad\\xff.png is unreadable or truncated" in text and report.counts == {"all": 1}
    assert main(["data", "check", str(root)]) == 1
    assert "bad\\xff.png" in capsys.readouterr().out


def test_data_check_reports_every_kind_at_once(tmp_path):
    root = pair_folder(tmp_path / "data", n=6)
    (root / "images" / "f0.png").write_bytes(claiming("PNG", 20000, 20000))  # a pixel bomb
    (root / "images" / "f1.png").write_bytes(b"")  # an empty file
    red = Image.new("RGB", (30, 20))
    red.paste((200, 0, 0), (5, 5, 20, 15))
    red.save(root / "masks" / "f2.png")  # a colour mask
    Image.fromarray(np.full((20, 30), 65535, np.uint16)).save(root / "masks" / "f3.png")  # 16-bit, not 0/255
    values = np.linspace(0, 65535, 600).reshape(20, 30).astype(np.uint16)
    Image.fromarray(values).save(root / "images" / "f4.png")  # a 16-bit image: fine
    report = check_folder(root)
    assert report.counts == {"all": 2}, report.problems
    expected = [
        "f0.png is 400,000,000 pixels",
        "f1.png is unreadable",
        "f2.png is a colour image",
        "f3.png has values [65535] outside the mapping",
    ]
    assert len(report.problems) == 4
    for problem, text in zip(report.problems, expected):
        assert text in problem

"""The data sets: CVC-912 layout (on the synthetic set), Kvasir-SEG (on the real folder), any folder, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from fcn_tutorial.data import VOID, KvasirSEG, Polyps912, SegmentationFolder, hash_split, make_synthetic_polyps


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_synthetic_polyps(tmp_path_factory.mktemp("data") / "synthetic", 6, 2, 2, size=(96, 128), seed=0)


# --------------------------------------------------------------------------------------------
# The synthetic set and Polyps912


def test_synthetic_set_is_in_the_cvc912_layout_and_deterministic(synthetic, tmp_path):
    again = make_synthetic_polyps(tmp_path / "again", 6, 2, 2, size=(96, 128), seed=0)
    other = make_synthetic_polyps(tmp_path / "other", 6, 2, 2, size=(96, 128), seed=1)
    files = sorted(path.relative_to(synthetic) for path in synthetic.rglob("*.*"))
    assert len(files) == 2 * (6 + 2 + 2)
    assert Path("train/images/synthetic-train_000.bmp") in files
    assert Path("valid/masks2/synthetic-valid_001.tif") in files
    for name in files:
        assert (again / name).read_bytes() == (synthetic / name).read_bytes()
    assert (other / files[0]).read_bytes() != (synthetic / files[0]).read_bytes()
    with pytest.raises(ValueError, match="not empty"):
        make_synthetic_polyps(synthetic)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_synthetic_polyps_are_not_separable_by_colour(synthetic):
    dataset = Polyps912(synthetic, "train")
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    masks = torch.stack([dataset[i][1] for i in range(len(dataset))])
    valid, polyp = masks != VOID, masks == 1
    assert polyp.any() and (~valid).any() and (valid & ~polyp).any()
    best = 0.0
    for channel in range(3):
        for threshold in torch.linspace(0, 1, 41):
            for guess in (images[:, channel] > threshold, images[:, channel] < threshold):
                best = max(best, float((guess & polyp & valid).sum() / ((guess | polyp) & valid).sum()))
    assert best < 0.35  # no single colour threshold finds the polyps


def test_polyps912_items(synthetic):
    dataset = Polyps912(synthetic, "train")
    assert len(dataset) == 6 and dataset.names[0] == "synthetic-train_000"
    assert dataset.class_names == ("background", "polyp") and dataset.n_classes == 2
    image, mask = dataset[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32 and image.shape == (3, 96, 128)
    assert 0 <= image.min() and image.max() <= 1
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (96, 128)
    raw = np.asarray(Image.open(dataset.mask_paths[0]))
    assert torch.equal(mask, torch.from_numpy(np.where(raw == 2, VOID, raw)).long())  # 2 (void) -> 255
    assert len(Polyps912(synthetic, "val")) == len(Polyps912(synthetic, "valid")) == 2


def test_polyps912_transform_and_raw(synthetic):
    flipped = Polyps912(synthetic, "test", transform=lambda image, mask: (image.flip(-1), mask.flip(-1)))
    image, mask = flipped[1]
    raw_image, raw_mask = flipped.raw(1)
    assert torch.equal(image, raw_image.flip(-1)) and torch.equal(mask, raw_mask.flip(-1))


def test_polyps912_missing_root_explains_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="polyps_split7.zip") as error:
        Polyps912(tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere") in str(error.value)
    with pytest.raises(ValueError, match="2, 3 or 4"):
        Polyps912(tmp_path, "train", n_classes=5)


def test_polyps912_missing_masks_folder(synthetic):
    with pytest.raises(FileNotFoundError, match="masks3"):
        Polyps912(synthetic, "train", n_classes=3)


# --------------------------------------------------------------------------------------------
# Kvasir-SEG on the real folder


def test_kvasir_split_is_deterministic_disjoint_and_per_id(kvasir_root, tmp_path):
    before = sorted(os.listdir(kvasir_root))
    splits = {split: KvasirSEG(kvasir_root, split, split_dir=tmp_path) for split in ("train", "val", "test")}
    assert sum(len(s) for s in splits.values()) == len(os.listdir(kvasir_root / "images")) == 801
    assert set(splits["train"].names).isdisjoint(splits["val"].names + splits["test"].names)
    assert 0.75 < len(splits["train"]) / 801 < 0.85 and len(splits["val"]) > 50 and len(splits["test"]) > 50
    assert splits["val"].names == sorted(splits["val"].names)
    for split, dataset in splits.items():  # the files a reader can inspect
        lines = (tmp_path / f"{split}.txt").read_text().splitlines()
        assert [line for line in lines if not line.startswith("#")] == dataset.names
        assert all(hash_split(name) == split for name in dataset.names)  # one id at a time
    assert sorted(os.listdir(kvasir_root)) == before  # nothing written into the data folder
    assert len(KvasirSEG(kvasir_root, "valid", split_dir=False)) == len(splits["val"])


def test_kvasir_item(kvasir_root):
    dataset = KvasirSEG(kvasir_root, "val", split_dir=False)
    image, mask = dataset[0]
    assert image.dtype == torch.float32 and image.shape[0] == 3 and mask.dtype == torch.int64
    assert mask.shape == image.shape[1:] and set(mask.unique().tolist()) == {0, 1}
    raw = np.asarray(Image.open(dataset.mask_paths[0]).convert("L"))
    assert torch.equal(mask, torch.from_numpy(raw >= 128).long())  # JPEG masks thresholded at 128


def test_kvasir_missing_root_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True.*kvasir-seg.zip"):
        KvasirSEG(tmp_path / "kvasir-seg", "train")


# --------------------------------------------------------------------------------------------
# Any folder


def _pair_folder(root: Path, names=("a", "b"), size=(20, 30), mask_format="png", image_mode="RGB") -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        mask = np.zeros(size, np.uint8)
        mask[5:12, 8:20] = 255
        pixels = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        Image.fromarray(pixels).convert(image_mode).save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks" / f"{name}.{mask_format}")
    return root


@pytest.mark.parametrize("mask_format", ["png", "tif", "bmp", "jpg"])
def test_folder_mask_formats(tmp_path, mask_format):
    dataset = SegmentationFolder(_pair_folder(tmp_path / "f", mask_format=mask_format))
    image, mask = dataset[0]
    assert image.shape == (3, 20, 30) and mask.shape == (20, 30)
    assert int(mask.sum()) == 7 * 12 and set(mask.unique().tolist()) == {0, 1}


def test_folder_value_mapping_palette_and_suffix(tmp_path):
    root = tmp_path / "f"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (8, 4), (10, 20, 30)).save(root / "images" / "x.jpg")
    palette = Image.fromarray(np.array([[0, 1, 2, 0, 0, 0, 0, 0]] * 4, np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 255, 255, 255])
    palette.save(root / "labels" / "x_mask.png")
    dataset = SegmentationFolder(
        root / "images", root / "labels", mask_suffix="_mask", value_to_class={0: 0, 1: 1, 2: VOID}
    )
    assert dataset.names == ["x"]
    assert dataset[0][1][0].tolist() == [0, 1, VOID, 0, 0, 0, 0, 0]  # palette indices, not colours


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_grayscale_and_rgba_images_become_rgb(tmp_path, mode):
    dataset = SegmentationFolder(_pair_folder(tmp_path / "f", image_mode=mode))
    image, _ = dataset[0]
    assert image.shape == (3, 20, 30)
    expected = np.asarray(Image.open(dataset.image_paths[0]).convert("RGB"))
    assert torch.allclose(image, torch.from_numpy(expected).permute(2, 0, 1).float() / 255)


def test_folder_split_follows_the_hash(tmp_path):
    names = [f"frame{i:02d}" for i in range(30)]
    root = _pair_folder(tmp_path / "f", names=names, size=(4, 4))
    parts = [SegmentationFolder(root, split=split).names for split in ("train", "val", "test")]
    assert sorted(sum(parts, [])) == names
    assert parts[1] == [name for name in names if hash_split(name) == "val"]


# --------------------------------------------------------------------------------------------
# Bad input: at construction


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"folder {tmp_path / 'nope' / 'images'} does not exist"):
        SegmentationFolder(tmp_path / "nope")


def test_no_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="no images"):
        SegmentationFolder(tmp_path)


def test_unpaired_and_duplicate_files_are_all_named(tmp_path):
    root = _pair_folder(tmp_path / "f", names=("a", "b", "c"))
    (root / "masks" / "b.png").unlink()
    Image.new("L", (30, 20)).save(root / "masks" / "orphan.png")
    Image.new("RGB", (30, 20)).save(root / "images" / "c.jpg")
    with pytest.raises(ValueError) as error:
        SegmentationFolder(root)
    message = str(error.value)
    assert f"image {root / 'images' / 'b.png'} has no mask" in message
    assert f"mask {root / 'masks' / 'orphan.png'} has no image" in message
    assert "two images named 'c'" in message and "c.jpg and c.png" in message


# --------------------------------------------------------------------------------------------
# Bad input: on load


def test_truncated_image_names_the_file(tmp_path):
    root = _pair_folder(tmp_path / "f")
    Image.new("RGB", (30, 20), (200, 0, 0)).save(root / "images" / "a.jpg")
    (root / "images" / "a.png").unlink()
    data = (root / "images" / "a.jpg").read_bytes()
    (root / "images" / "a.jpg").write_bytes(data[: len(data) // 2])
    (root / "images" / "b.png").write_bytes(b"not an image")
    dataset = SegmentationFolder(root)
    for index, name in enumerate(["a.jpg", "b.png"]):
        with pytest.raises(ValueError, match=f"image {root / 'images' / name} is unreadable or truncated"):
            dataset[index]


def test_mask_of_another_size(tmp_path):
    root = _pair_folder(tmp_path / "f")
    Image.new("L", (30, 19)).save(root / "masks" / "a.png")
    with pytest.raises(ValueError, match=f"mask {root / 'masks' / 'a.png'} is 30x19 but its image .* is 30x20"):
        SegmentationFolder(root)[0]


def test_mask_values_outside_the_mapping(tmp_path):
    root = _pair_folder(tmp_path / "f")
    Image.fromarray(np.full((20, 30), 7, np.uint8)).save(root / "masks" / "a.png")
    with pytest.raises(ValueError, match=r"mask .*a.png has values \[7\] outside the mapping \(expected \[0, 255\]\)"):
        SegmentationFolder(root)[0]
    with pytest.raises(ValueError, match="colour"):
        Image.new("RGB", (30, 20), (255, 0, 0)).save(root / "masks" / "b.png")
        SegmentationFolder(root)[1]


def test_a_file_removed_after_construction(tmp_path):
    root = _pair_folder(tmp_path / "f")
    dataset = SegmentationFolder(root)
    (root / "masks" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"mask {root / 'masks' / 'b.png'} does not exist"):
        dataset[1]


def undecided_folder(root: Path, n: int = 12) -> Path:
    """``n`` pairs whose masks hold 0 (background), 255 (polyp) and 128 (a band nobody could decide on)."""
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for index in range(n):
        mask = np.zeros((24, 32), np.uint8)
        mask[6:18, 8 + index % 8 : 20 + index % 8] = 255
        mask[5, :] = 128
        Image.fromarray(np.full((24, 32, 3), 90 + index, np.uint8)).save(root / "images" / f"f{index:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"f{index:02d}.png")
    return root


def test_a_folder_says_what_its_mask_values_mean_in_mask_values_json(tmp_path):
    import json

    from fcn_tutorial import cli
    from fcn_tutorial.data import check_folder, get_dataset

    root = undecided_folder(tmp_path / "mine", n=40)  # enough for every split of the hash split
    with pytest.raises(ValueError, match=r"values \[128\] outside the mapping .* say so in a mask_values.json"):
        SegmentationFolder(root)[0]
    (root / "mask_values.json").write_text(json.dumps({"values": {"0": 0, "128": "void", "255": 1}}))
    assert SegmentationFolder(root)[0][1].unique().tolist() == [0, 1, VOID]
    assert check_folder(root, progress=False).ok
    assert get_dataset(str(root), "train")[0][1].unique().tolist() == [0, 1, VOID]
    # a split-folders layout: one file at the top serves every split
    split_root = tmp_path / "split"
    undecided_folder(split_root / "train")
    (split_root / "mask_values.json").write_text(json.dumps({"threshold": 200}))  # 128 -> background
    assert get_dataset(str(split_root), "train")[0][1].unique().tolist() == [0, 1]
    # every command that reads the folder follows it: train, then evaluate
    out = tmp_path / "run"
    arguments = ["--model", "fcn8s", "--preset", "compact", "--width", "0.0625", "--crop-size", "16", "--epochs", "1"]
    assert cli.main(["train", "--data", str(root), "--out", str(out), *arguments, "--no-progress", "--no-test"]) == 0
    assert cli.main(["evaluate", str(out / "best.pt"), "--split", "val", "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not readable JSON"),
        ('{"values": {"0": 0, "255": "polyp"}}', r'"values" maps raw mask values 0..255 to a class'),
        ('{"values": {"300": 1}}', r'"values" maps raw mask values'),
        ('{"threshold": 0}', "the threshold must be a whole number 1..255"),
        ('{"classes": 2}', "must hold one of"),
    ],
)
def test_a_wrong_mask_values_json_is_an_error_naming_it(tmp_path, text, message):
    from fcn_tutorial.data import check_folder

    root = undecided_folder(tmp_path / "mine", n=2)
    (root / "mask_values.json").write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        SegmentationFolder(root)
    assert "mask_values.json" in str(error.value)
    assert [str(error.value)] == check_folder(root, progress=False).problems  # data check says the same


def test_n_classes_must_match_the_classes_the_mask_values_give(tmp_path, capsys):
    import json

    from fcn_tutorial import cli

    root = undecided_folder(tmp_path / "mine", n=2)
    (root / "mask_values.json").write_text(json.dumps({"values": {"0": 0, "128": "void", "255": 1}}))
    with pytest.raises(ValueError, match=r"give only class 0, class 1: with n_classes=3, class 2 could never appear"):
        SegmentationFolder(root, n_classes=3)
    (root / "mask_values.json").write_text(json.dumps({"values": {"0": 0, "128": 1, "255": 2}}))
    assert SegmentationFolder(root, n_classes=3)[0][1].unique().tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"give class 0, class 1, class 2, more than n_classes=2 allows"):
        SegmentationFolder(root)
    with pytest.raises(ValueError, match=r"class 1 could never appear"):  # a gap in the classes
        SegmentationFolder(root, value_to_class={0: 0, 255: 2}, n_classes=3)
    # the command line says it in one line, before any training
    argv = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--n-classes", "4", "--no-progress"]
    assert cli.main(argv) == 2
    assert "with n_classes=4, class 3 could never appear. Use --n-classes 3" in capsys.readouterr().err

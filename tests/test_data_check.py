"""`check_folder` and `fcn-tutorial data check|synthetic`, and finding data sets by name or folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fcn_tutorial.cli import main
from fcn_tutorial.data import (
    KvasirSEG,
    Polyps912,
    SegmentationFolder,
    check_folder,
    detect_layout,
    get_dataset,
    load_polyp_data,
    make_synthetic_polyps,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_synthetic_polyps(tmp_path_factory.mktemp("data") / "synthetic", 4, 2, 2, size=(64, 80), seed=3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Empty data and cache folders for this module (the synthetic set is generated once into the cache)."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FCN_TUTORIAL_DATA", str(folder / "data"))
        patch.setenv("FCN_TUTORIAL_CACHE", str(folder / "cache"))
        yield folder


def pairs_folder(root: Path, n: int = 4) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        Image.new("RGB", (30, 20), (150, 60, 50)).save(root / "images" / f"f{i}.jpg")
        mask = np.zeros((20, 30), np.uint8)
        mask[: 5 + i] = 255
        Image.fromarray(mask).save(root / "masks" / f"f{i}.png")
    return root


def test_check_clean_folder_reports_statistics(synthetic):
    report = check_folder(synthetic)
    assert report.ok and report.layout == "cvc912"
    assert report.counts == {"test": 2, "train": 4, "valid": 2}
    assert report.sizes == {(80, 64): 8}
    text = str(report)
    assert "8 image/mask pairs, no problems" in text and "80x64 (8)" in text and "polyp area: mean" in text


def test_check_reports_every_problem_at_once(tmp_path):
    root = pairs_folder(tmp_path / "mine", n=6)
    (root / "masks" / "f0.png").unlink()  # an image without a mask
    Image.new("L", (30, 19)).save(root / "masks" / "f1.png")  # a mask of the wrong size
    (root / "images" / "f2.jpg").write_bytes((root / "images" / "f2.jpg").read_bytes()[:100])  # truncated
    Image.fromarray(np.full((20, 30), 9, np.uint8)).save(root / "masks" / "f3.png")  # an unexpected value
    Image.new("L", (30, 20)).save(root / "masks" / "stray.png")  # a mask without an image
    report = check_folder(root)
    assert not report.ok and len(report.problems) == 5
    text = str(report)
    for expected in [
        "f0.jpg has no mask",
        "f1.png is 30x19 but its image",
        "f2.jpg is unreadable or truncated",
        "f3.png has values [9] outside the mapping",
        "stray.png has no image",
    ]:
        assert expected in text
    assert report.counts == {"all": 2}


def test_check_missing_or_unknown_folder(tmp_path):
    assert check_folder(tmp_path / "nope").problems == [f"folder {tmp_path / 'nope'} does not exist"]
    assert "no known layout" in check_folder(tmp_path).problems[0]


def test_cli_check_exit_codes(synthetic, tmp_path, capsys):
    assert main(["data", "check", str(synthetic)]) == 0
    assert "no problems" in capsys.readouterr().out
    root = pairs_folder(tmp_path / "broken")
    (root / "masks" / "f0.png").unlink()
    (root / "masks" / "f1.png").unlink()
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "2 problems" in out and "f0.jpg has no mask" in out and "f1.jpg has no mask" in out


def test_cli_synthetic(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "data",
                "synthetic",
                str(out),
                "--train",
                "2",
                "--valid",
                "1",
                "--test",
                "1",
                "--size",
                "48",
                "64",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    assert len(Polyps912(out, "train")) == 2 and Polyps912(out, "test")[0][0].shape == (3, 48, 64)
    assert main(["data", "synthetic", str(out)]) == 2  # refuses to overwrite
    assert "not empty" in capsys.readouterr().err


def test_get_dataset_by_name_and_by_folder(synthetic, tmp_path, cache):
    assert detect_layout(synthetic) == "cvc912"
    assert isinstance(get_dataset(synthetic, "valid"), Polyps912)
    pairs = pairs_folder(tmp_path / "pairs", n=20)
    assert detect_layout(pairs) == "images-masks"
    assert sum(len(get_dataset(pairs, split)) for split in ("train", "val", "test")) == 20
    split_root = tmp_path / "split"
    for split in ("train", "valid"):
        shutil.copytree(pairs, split_root / split)
    assert detect_layout(split_root) == "split-folders"
    assert isinstance(get_dataset(split_root, "val"), SegmentationFolder)
    with pytest.raises(FileNotFoundError, match="neither a data set name"):
        get_dataset(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="unknown split"):
        get_dataset(synthetic, "training")


def test_get_dataset_synthetic_is_generated_once_into_the_cache(cache):
    train = get_dataset("synthetic", "train")
    assert train.root == cache / "cache" / "synthetic" and len(train) == 80
    stamp = (train.root / "train" / "images" / f"{train.names[0]}.bmp").stat().st_mtime_ns
    assert get_dataset("synthetic", "test").root == train.root
    assert (train.root / "train" / "images" / f"{train.names[0]}.bmp").stat().st_mtime_ns == stamp
    assert not (cache / "data").exists()  # nothing written to the data folder


def test_load_polyp_data_falls_back_to_synthetic(cache):
    data = load_polyp_data(download=False)
    assert data.synthetic and data.name == "synthetic" and "kvasir-seg" in data.reason
    assert len(data.train) == 80 and len(data.valid) == len(data.test) == 20


def test_load_polyp_data_prefers_real_data(kvasir_root, cache, monkeypatch):
    monkeypatch.setenv("FCN_TUTORIAL_DATA", str(kvasir_root.parent))  # as the book and CI do
    data = load_polyp_data()
    assert not data.synthetic and data.name == "kvasir-seg" and data.root == kvasir_root
    assert isinstance(data.train, KvasirSEG) and len(data.train) + len(data.val) + len(data.test) == 801
    assert (cache / "cache" / "kvasir-seg-splits" / "test.txt").is_file()


def test_cli_synthetic_refuses_bad_sizes_counts_and_seeds(tmp_path, capsys):
    out = tmp_path / "syn"
    for arguments, message in [
        (["--size", "100000", "100000"], "more than the limit of 40,000,000 pixels"),
        (["--train", "-2"], "number of train frames must be a whole number >= 0, not -2"),
        (["--train", "0", "--valid", "0", "--test", "0"], "at least one frame"),
        (["--seed", "-1"], "seed must be a whole number >= 0"),
    ]:
        assert main(["data", "synthetic", str(out), *arguments]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_check_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert check_folder(tmp_path / "notes.txt").problems == [f"folder {tmp_path / 'notes.txt'} is a file, not a folder"]

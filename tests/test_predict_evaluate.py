"""evaluate_checkpoint, load_model, predict and predict_files, and their commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_tutorial import cli
from fcn_tutorial.data import make_synthetic_polyps
from fcn_tutorial.evaluate import evaluate_checkpoint, load_model
from fcn_tutorial.history import read_history
from fcn_tutorial.predict import predict, predict_files, read_image
from fcn_tutorial.train import TrainConfig, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-epoch run on 48 x 48 synthetic frames."""
    root = tmp_path_factory.mktemp("work")
    data = make_synthetic_polyps(root / "data", n_train=12, n_valid=5, n_test=4, size=(48, 64), progress=False)
    config = TrainConfig(data=str(data), out=str(root / "run"), model="fcn8s", preset="compact", width=0.0625,
                         crop_size=32, batch_size=4, epochs=2, lr=1e-3, progress=False)
    train(config)
    return root / "run", data


def test_load_model_restores_the_best_weights(run):
    run_dir, data = run
    model, config = load_model(run_dir / "best.pt")
    assert not model.training and config.width == 0.0625
    logits = model(torch.rand(1, 3, 50, 70))
    assert logits.shape == (1, 2, 50, 70)


def test_evaluate_checkpoint_matches_the_validation_row_of_the_best_epoch(run):
    run_dir, data = run
    result = evaluate_checkpoint(run_dir / "best.pt", split="val", progress=False)  # the run's own data set
    best = max(read_history(run_dir / "history.csv"), key=lambda row: row["val_jaccard_mean"])
    assert result["images"] == 5 and result["split"] == "val"
    assert result["pixel_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-12)
    assert result["mean_jaccard"] == pytest.approx(best["val_jaccard_mean"], abs=1e-12, nan_ok=True)
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-6)
    assert len(result["per_image_jaccard"]) == 2
    assert 0 <= result["per_image_jaccard"][0] <= 1
    kept = [v for v in result["per_image_jaccard"] if not math.isnan(v)]
    assert result["per_image_mean_jaccard"] == pytest.approx(sum(kept) / len(kept))


def test_evaluate_at_another_input_size_scores_full_size_masks(run):
    run_dir, data = run
    result = evaluate_checkpoint(run_dir / "best.pt", str(data), "test", resize=40, progress=False)
    assert result["input_size"] == 40 and result["images"] == 4
    assert 0 <= result["pixel_accuracy"] <= 1


def test_evaluate_command_prints_json(run, capsys):
    run_dir, data = run
    assert cli.main(["evaluate", str(run_dir / "best.pt"), "--data", str(data), "--split", "test", "--json",
                     "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"pixel_accuracy", "jaccard", "mean_jaccard", "per_image_jaccard", "per_image_mean_jaccard"} <= set(result)
    assert cli.main(["evaluate", str(run_dir / "missing.pt")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err


def test_predict_returns_a_mask_of_the_image_size(run):
    model, _ = load_model(run[0] / "best.pt")
    image = torch.rand(3, 37, 53)
    mask = predict(model, image)
    assert mask.shape == (37, 53) and mask.dtype == torch.int64 and set(mask.unique().tolist()) <= {0, 1}
    assert predict(model, image, size=32).shape == (37, 53)
    with pytest.raises(ValueError, match="3 x H x W"):
        predict(model, torch.rand(37, 53))


def test_predict_files_and_command_write_masks_and_overlays(run, tmp_path, capsys):
    run_dir, data = run
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (91, 45), (200, 90, 80)).save(frames / "wide.png")
    Image.new("RGB", (33, 70), (120, 40, 40)).save(frames / "tall.jpg")
    written = predict_files(run_dir / "best.pt", [frames], tmp_path / "out", progress=False)
    assert [(m.name, o.name) for m, o in written] == [("tall_mask.png", "tall_overlay.png"),
                                                       ("wide_mask.png", "wide_overlay.png")]
    with Image.open(tmp_path / "out" / "wide_mask.png") as mask, Image.open(tmp_path / "out" / "wide_overlay.png") as over:
        assert mask.size == over.size == (91, 45) and mask.mode == "L" and over.mode == "RGB"
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
    assert cli.main(["predict", str(run_dir / "best.pt"), str(frames / "wide.png"), "--out", str(tmp_path / "cli"),
                     "--no-progress"]) == 0
    assert (tmp_path / "cli" / "wide_overlay.png").exists()


def test_unreadable_images_are_named(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_image(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_image(tmp_path / "nowhere.png")

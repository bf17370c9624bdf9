"""evaluate_checkpoint, load_model, predict and predict_files, and their commands."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_tutorial import cli
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.config import TrainConfig, build_model_for
from fcn_tutorial.data import VOID, make_synthetic_polyps
from fcn_tutorial.data.registry import get_dataset
from fcn_tutorial.data.transforms import eval_transforms
from fcn_tutorial.evaluate import evaluate_checkpoint, load_model
from fcn_tutorial.history import read_history
from fcn_tutorial.metrics import ConfusionMatrix
from fcn_tutorial.predict import predict, predict_files, read_image
from fcn_tutorial.run import train
from fcn_tutorial.scoring import predict_logits, preprocess

from tiny import tiny_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-epoch run on 48 x 48 synthetic frames."""
    root = tmp_path_factory.mktemp("work")
    data = make_synthetic_polyps(root / "data", n_train=12, n_valid=5, n_test=4, size=(48, 64), progress=False)
    train(tiny_config(data, root / "run"))
    return root / "run", data


@pytest.fixture(scope="module")
def resized_runs(run, tmp_path_factory):
    """Two finished runs on frames resized to 40 px: one with ImageNet normalisation, one without."""
    _, data = run
    root = tmp_path_factory.mktemp("resized")
    runs = {}
    for normalize in (False, True):
        config = tiny_config(data, root / f"normalize-{normalize}", resize=40, lr=1e-2, normalize=normalize)
        train(config)
        runs[normalize] = Path(config.out)
    return runs, data


def mixed_checkpoint(checkpoint: Path) -> Path:
    """``checkpoint`` with random, large pool3 scores, so that its masks mix both classes and depend on every input
    pixel: a tiny run trained for two epochs predicts background everywhere, which would hide preprocessing bugs."""
    state = load_checkpoint(checkpoint)
    generator = torch.Generator().manual_seed(0)
    weight = state["model"]["score_pool3.weight"]
    state["model"]["score_pool3.weight"] = torch.randn(weight.shape, generator=generator) * 5
    mixed = checkpoint.with_name("mixed.pt")
    torch.save(state, mixed)
    return mixed


def manual_prediction(checkpoint, image, size, normalize):
    """Independently of the package's scoring: training's own eval transform, the network, bilinear upsampling."""
    model, _ = load_model(checkpoint, "cpu")
    frame, _ = eval_transforms(resize=size, normalize=normalize)(image, torch.zeros(image.shape[-2:], dtype=torch.long))
    with torch.no_grad():
        logits = model(frame.as_subclass(torch.Tensor)[None])
    logits = torch.nn.functional.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(dim=1)[0]


def test_load_model_restores_the_best_weights(run):
    run_dir, data = run
    model, config = load_model(run_dir / "best.pt")
    stored = load_checkpoint(run_dir / "best.pt")
    assert not model.training and config == TrainConfig.from_dict(stored["config"]) and config.width == 0.0625
    state = model.state_dict()
    assert state.keys() == stored["model"].keys()
    assert all(torch.equal(state[k], stored["model"][k]) for k in state)  # every tensor, not just the shapes
    image = torch.rand(1, 3, 50, 70)
    logits = model(image)
    assert logits.shape == (1, 2, 50, 70)
    fresh = build_model_for(config)
    fresh.load_state_dict(stored["model"])
    assert torch.equal(logits, fresh.eval()(image))


def test_evaluate_checkpoint_matches_the_validation_row_of_the_best_epoch(run):
    run_dir, data = run
    # the run's own data set, in the run's precision and memory format (its defaults: --amp auto, channels-last)
    result = evaluate_checkpoint(run_dir / "best.pt", split="val", amp="auto", channels_last=True, progress=False)
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
    """Exact scores against a manual path: resize to 40 px, logits, upsample to the frame, argmax, count."""
    run_dir, data = run
    checkpoint = mixed_checkpoint(run_dir / "best.pt")
    result = evaluate_checkpoint(checkpoint, str(data), "test", resize=40, progress=False)
    assert result["input_size"] == 40 and result["images"] == 4
    confusion, loss_sum, pixels = ConfusionMatrix(2, ignore_index=VOID), 0.0, 0
    model, _ = load_model(checkpoint, "cpu")
    for image, mask in get_dataset(str(data), "test", n_classes=2):
        image, mask = image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
        frame, _ = eval_transforms(resize=40)(image, torch.zeros(mask.shape, dtype=torch.long))
        with torch.no_grad():
            logits = model(frame.as_subclass(torch.Tensor)[None])
        logits = torch.nn.functional.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)
        confusion.update(logits.argmax(dim=1), mask[None])
        loss_sum += torch.nn.functional.cross_entropy(logits, mask[None], ignore_index=VOID, reduction="sum").item()
        pixels += int((mask != VOID).sum())
    assert pixels == 4 * 48 * 64 - sum(
        int((m.as_subclass(torch.Tensor) == VOID).sum()) for _, m in get_dataset(str(data), "test", n_classes=2)
    )
    assert int(confusion.confusion.sum()) == pixels  # every full-size pixel counted once, void left out
    expected = confusion.compute()
    assert 0 < expected.jaccard[1] < 1  # both classes predicted: a wrong preprocessing would change the counts
    assert result["pixel_accuracy"] == expected.pixel_accuracy
    assert result["jaccard"] == list(expected.jaccard)
    assert result["loss"] == pytest.approx(loss_sum / pixels, rel=1e-6)


def test_evaluate_command_prints_json(run, capsys):
    run_dir, data = run
    assert (
        cli.main(
            ["evaluate", str(run_dir / "best.pt"), "--data", str(data), "--split", "test", "--json", "--no-progress"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"pixel_accuracy", "jaccard", "mean_jaccard", "per_image_jaccard", "per_image_mean_jaccard"} <= set(result)
    assert cli.main(["evaluate", str(run_dir / "missing.pt")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err


def test_predict_returns_the_argmax_of_the_network_at_the_image_size(run):
    checkpoint = mixed_checkpoint(run[0] / "best.pt")
    model, _ = load_model(checkpoint, "cpu")
    image = torch.rand(3, 37, 53)
    for size in (None, 32):
        mask = predict(model, image, size=size)
        assert mask.shape == (37, 53) and mask.dtype == torch.int64
        assert torch.equal(mask, manual_prediction(checkpoint, image, size, False))
        assert 0 < mask.sum() < mask.numel()  # both classes: the comparison means something
    with pytest.raises(ValueError, match="3 x H x W"):
        predict(model, torch.rand(37, 53))


def test_predict_files_and_command_write_masks_and_overlays(run, tmp_path, capsys):
    run_dir, data = run
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (91, 45), (200, 90, 80)).save(frames / "wide.png")
    Image.new("RGB", (33, 70), (120, 40, 40)).save(frames / "tall.jpg")
    written = predict_files(run_dir / "best.pt", [frames], tmp_path / "out", progress=False)
    assert [(m.name, o.name) for m, o in written] == [
        ("tall_mask.png", "tall_overlay.png"),
        ("wide_mask.png", "wide_overlay.png"),
    ]
    out = tmp_path / "out"
    with Image.open(out / "wide_mask.png") as mask, Image.open(out / "wide_overlay.png") as over:
        assert mask.size == over.size == (91, 45) and mask.mode == "L" and over.mode == "RGB"
        model, _ = load_model(run_dir / "best.pt", "cpu")
        expected = predict(model, read_image(frames / "wide.png"))  # best.pt has no --resize: full size
        assert torch.equal(torch.from_numpy(np.asarray(mask).astype(np.int64)), expected * 255)
    assert (
        cli.main(
            [
                "predict",
                str(run_dir / "best.pt"),
                str(frames / "wide.png"),
                "--out",
                str(tmp_path / "cli"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "cli" / "wide_overlay.png").exists()


def test_unreadable_images_are_named(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_image(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_image(tmp_path / "nowhere.png")


def test_test_json_equals_the_evaluate_command_for_the_best_checkpoint(run, capsys):
    run_dir, data = run
    stored = json.loads((run_dir / "test.json").read_text())
    assert cli.main(["evaluate", str(run_dir / "best.pt"), "--split", "test", "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert stored.pop("epoch") == load_checkpoint(run_dir / "best.pt")["epoch"]
    assert stored == printed  # every figure, bit for bit: one scoring path
    assert printed["scored_at"] == "full size" and printed["images"] == 4


def test_resized_runs_score_the_best_epoch_at_full_size(resized_runs, capsys):
    runs, data = resized_runs
    for run_dir in runs.values():
        history = read_history(run_dir / "history.csv")
        assert {row["val_size"] for row in history} == {40}  # per-epoch validation at the training size, labelled
        assert all(
            line.endswith("(val at 40 px)")
            for line in (run_dir / "train.log").read_text().splitlines()
            if line.startswith("EPOCH")
        )
        for split in ("val", "test"):
            stored = json.loads((run_dir / f"{split}.json").read_text())
            stored.pop("epoch")
            assert cli.main(["evaluate", str(run_dir / "best.pt"), "--split", split, "--json", "--no-progress"]) == 0
            assert stored == json.loads(capsys.readouterr().out)
            assert stored["input_size"] == 40


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("size", ["train", "full"])
def test_predict_gives_the_argmax_that_scoring_counts(resized_runs, tmp_path, normalize, size, capsys):
    runs, data = resized_runs
    checkpoint = mixed_checkpoint(runs[normalize] / "best.pt")
    folder = tmp_path / "one"  # one frame and its mask, scored with --split all (no hash split)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    name = sorted((data / "test" / "images").iterdir())[0].name
    (folder / "images" / name).write_bytes((data / "test" / "images" / name).read_bytes())
    mask_file = next((data / "test").glob(f"masks*/{Path(name).stem}.*"))
    Image.open(mask_file).point(lambda v: 255 if v else 0).save(folder / "masks" / f"{Path(name).stem}.png")

    assert (
        cli.main(
            [
                "predict",
                str(checkpoint),
                str(folder / "images"),
                "--out",
                str(tmp_path / "out"),
                "--resize",
                size,
                "--amp",
                "none",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    with Image.open(tmp_path / "out" / f"{Path(name).stem}_mask.png") as png:
        predicted = torch.from_numpy(np.asarray(png).astype(np.int64)) // 255
    image = read_image(folder / "images" / name)
    expected = manual_prediction(checkpoint, image, 40 if size == "train" else None, normalize)
    assert 0.05 < expected.float().mean() < 0.95  # both classes: a wrong preprocessing changes pixels
    assert torch.equal(predicted, expected)

    truth = torch.from_numpy((np.asarray(Image.open(folder / "masks" / f"{Path(name).stem}.png")) > 0).astype(np.int64))
    confusion = ConfusionMatrix(2)
    confusion.update(predicted, truth)
    assert (
        cli.main(
            [
                "evaluate",
                str(checkpoint),
                "--data",
                str(folder),
                "--split",
                "all",
                "--resize",
                size,
                "--json",
                "--no-progress",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out)
    assert scored["images"] == 1 and scored["split"] == "all"
    assert scored["pixel_accuracy"] == confusion.compute().pixel_accuracy
    assert scored["jaccard"] == pytest.approx(confusion.compute().jaccard, nan_ok=True, abs=0)


def test_predict_without_normalisation_would_differ(resized_runs):
    """The old bug: a normalised run predicted on unnormalised frames. The two must not agree by accident."""
    runs, data = resized_runs
    image = read_image(sorted((data / "test" / "images").iterdir())[0])
    model, config = load_model(mixed_checkpoint(runs[True] / "best.pt"))
    assert config.normalize
    logits_right = predict_logits(model, [image], size=40, normalize=True)[0]
    logits_wrong = predict_logits(model, [image], size=40, normalize=False)[0]
    assert not torch.equal(logits_right.argmax(0), logits_wrong.argmax(0))
    assert torch.equal(predict(model, image, size=40, normalize=True), logits_right.argmax(0))


def test_preprocess_is_training_s_eval_transform():
    image = torch.rand(3, 45, 61)
    for size, normalize in [(None, False), (32, False), (32, True), ((20, 30), True)]:
        expected, _ = eval_transforms(resize=size, normalize=normalize)(image, torch.zeros(45, 61, dtype=torch.long))
        assert torch.equal(preprocess(image, size=size, normalize=normalize), expected.as_subclass(torch.Tensor))


def test_batched_scoring_of_frames_of_different_sizes_equals_one_at_a_time(run):
    run_dir, data = run
    one = evaluate_checkpoint(run_dir / "best.pt", str(data), "val", batch_size=1, progress=False)
    many = evaluate_checkpoint(run_dir / "best.pt", str(data), "val", batch_size=3, resize=30, progress=False)
    again = evaluate_checkpoint(run_dir / "best.pt", str(data), "val", batch_size=1, resize=30, progress=False)
    assert one["images"] == many["images"] == 5
    assert many["jaccard"] == pytest.approx(again["jaccard"], abs=1e-9)
    assert many["loss"] == pytest.approx(again["loss"], rel=1e-5)


def test_a_checkpoint_in_the_previous_format_still_loads(run, tmp_path):
    """best.pt as written before the trainer was split: a config without recipe / val_full_size, num_workers 0."""
    run_dir, data = run
    state = load_checkpoint(run_dir / "best.pt")
    old_config = {k: v for k, v in state["config"].items() if k not in {"recipe", "val_full_size"}}
    old_config["num_workers"] = 0
    old_row = {k: v for k, v in state["scores"].items() if k != "val_size"}
    torch.save(
        {"model": state["model"], "config": old_config, "epoch": state["epoch"], "scores": old_row}, tmp_path / "old.pt"
    )
    model, config = load_model(tmp_path / "old.pt")
    assert config.recipe is None and config.val_full_size is False and config.num_workers == 0
    new, _ = load_model(run_dir / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), new.state_dict().values()))
    result = evaluate_checkpoint(tmp_path / "old.pt", str(data), "test", progress=False)
    assert result["jaccard"] == json.loads((run_dir / "test.json").read_text())["jaccard"]


def test_inference_does_not_import_the_trainer():
    code = (
        "import sys, fcn_tutorial.evaluate, fcn_tutorial.predict, fcn_tutorial.scoring; "
        "print(sorted(m for m in ('fcn_tutorial.train', 'fcn_tutorial.run', 'fcn_tutorial.engine') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

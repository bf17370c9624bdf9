"""Training runs in process on tiny synthetic data: the run folder, resuming, NaN, early stopping, limits."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from fcn_tutorial import engine
from fcn_tutorial import run as run_module
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.data import make_synthetic_polyps
from fcn_tutorial.history import read_history
from fcn_tutorial.train import NonFiniteLossError, TrainConfig, train

from tiny import tiny_config as shared_tiny_config


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_polyps(root, n_train=12, n_valid=5, n_test=4, size=(48, 48), seed=0, progress=False)
    return root


def tiny_config(root, out, **options) -> TrainConfig:
    """The shared tiny run, validated two frames at a time."""
    return shared_tiny_config(root, out, **{"eval_batch_size": 2, **options})


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.fixture(scope="module")
def finished_run(synthetic_root, tmp_path_factory):
    """A three-epoch run with augmentation and a cosine schedule: (config, history)."""
    config = tiny_config(
        synthetic_root,
        tmp_path_factory.mktemp("runs") / "straight",
        epochs=3,
        schedule="cosine",
        rotation=10,
        vflip=0.5,
    )
    return config, train(config)


def test_a_run_folder_holds_everything(finished_run):
    config, history = finished_run
    run = Path(config.out)
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["config.json", "history.csv", "curves.png", "train.log", "best.pt", "last.pt", "val.json", "test.json"]
    )
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == config
    assert read_history(run / "history.csv") == history and len(history) == 3
    assert list(history[0]) == [
        "epoch",
        "lr",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_jaccard_0",
        "val_jaccard_1",
        "val_jaccard_mean",
        "val_size",
        "seconds",
    ]
    assert all(row["val_size"] == 0 for row in history)  # no --resize: validation at full size
    assert history[2]["lr"] < history[1]["lr"] < history[0]["lr"]  # cosine schedule
    log = (run / "train.log").read_text()
    epoch_lines = re.findall(
        r"^EPOCH \d+: Avg epoch training cost train [\d.]+, cost val [\d.]+, acc val [\d.]+, "
        r"jacc val class 0 [\d.]+, jacc val class 1 [\d.]+, jacc val [\d.]+ took [\d.]+ s$",
        log,
        re.M,
    )
    assert len(epoch_lines) == 3
    assert re.search(
        r"^FINAL MODEL: err test [\d.]+, acc test [\d.]+, jacc test class 0 [\d.]+, "
        r"jacc test class 1 [\d.]+, jacc test [\d.]+$",
        log,
        re.M,
    )
    last = load_checkpoint(run / "last.pt")  # weights_only=True: only tensors and plain values
    assert last["epoch"] == 3 and set(last) >= {"model", "optimizer", "scheduler", "rng", "history", "config"}
    best = load_checkpoint(run / "best.pt")
    best_row = max(history, key=lambda row: row["val_jaccard_mean"])
    assert best["epoch"] == best_row["epoch"] and best["scores"] == best_row
    assert json.loads((run / "test.json").read_text())["epoch"] == best_row["epoch"]


def test_an_interrupted_run_resumes_to_the_same_result(finished_run, tmp_path, monkeypatch):
    config, straight = finished_run
    interrupted = dataclasses.replace(config, out=str(tmp_path / "resumed"))
    real_epoch = engine.train_one_epoch

    def ctrl_c_in_epoch_2(*args, epoch, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, epoch=epoch, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", ctrl_c_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.setattr(engine, "train_one_epoch", real_epoch)
    assert len(read_history(tmp_path / "resumed" / "history.csv")) == 1
    resumed = train(interrupted, resume=True)
    assert without_seconds(resumed) == without_seconds(straight)
    for name in ("last.pt", "best.pt"):
        a, b = (load_checkpoint(Path(run) / name)["model"] for run in (config.out, interrupted.out))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(finished_run, tmp_path, monkeypatch):
    config, history = finished_run
    run = tmp_path / "run"
    shutil.copytree(config.out, run)
    good = (run / "last.pt").read_bytes()
    real_loss = engine.segmentation_loss
    calls = []

    def poisoned(logits, target, weight=None, **options):
        calls.append(1)
        loss = real_loss(logits, target, weight, **options)
        return loss * math.nan if len(calls) == 2 else loss  # the second batch of epoch 4

    monkeypatch.setattr(engine, "segmentation_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 4, batch 2"):
        train(dataclasses.replace(config, out=str(run), epochs=5), resume=True)
    assert (run / "last.pt").read_bytes() == good
    assert read_history(run / "history.csv") == history


def test_val_every_skips_validation_but_never_changes_the_training(finished_run, tmp_path):
    config, history = finished_run
    sparse = dataclasses.replace(config, out=str(tmp_path / "sparse"), val_every=2)
    skipped = train(sparse)
    assert [row["train_loss"] for row in skipped] == [row["train_loss"] for row in history]
    assert math.isnan(skipped[0]["val_loss"]) and math.isnan(skipped[0]["val_jaccard_mean"])
    for epoch in (2, 3):  # every 2nd epoch, and the last one
        assert without_seconds(skipped)[epoch - 1] == without_seconds(history)[epoch - 1]
    straight = load_checkpoint(Path(config.out) / "last.pt")["model"]
    assert all(
        torch.equal(value, straight[name])
        for name, value in load_checkpoint(tmp_path / "sparse" / "last.pt")["model"].items()
    )
    best_of_validated = max((2, 3), key=lambda epoch: history[epoch - 1]["val_jaccard_mean"])
    assert load_checkpoint(tmp_path / "sparse" / "best.pt")["epoch"] == best_of_validated
    assert math.isnan(read_history(tmp_path / "sparse" / "history.csv")[0]["val_accuracy"])
    epoch_lines = [line for line in (tmp_path / "sparse" / "train.log").read_text().splitlines() if "EPOCH" in line]
    assert "not validated" in epoch_lines[0] and "not validated" not in epoch_lines[1]
    assert (tmp_path / "sparse" / "curves.png").stat().st_size > 0


def test_an_absurd_learning_rate_is_caught(synthetic_root, tmp_path):
    with pytest.raises(NonFiniteLossError, match="lower --lr"):
        train(tiny_config(synthetic_root, tmp_path / "run", optimizer="sgd", lr=1e30, epochs=3))


def test_early_stopping_and_time_limit(synthetic_root, tmp_path):
    frozen = train(tiny_config(synthetic_root, tmp_path / "frozen", lr=0.0, epochs=6, patience=1, test=False))
    assert len(frozen) == 2  # best at epoch 1, then 1 epoch without improvement
    assert "no improvement for 1 epochs" in (tmp_path / "frozen" / "train.log").read_text()
    limited = train(tiny_config(synthetic_root, tmp_path / "limited", epochs=6, time_limit=1e-6, test=False))
    assert len(limited) == 1
    assert "time limit" in (tmp_path / "limited" / "train.log").read_text()


def test_a_finished_run_is_never_overwritten(finished_run):
    config, _ = finished_run
    with pytest.raises(ValueError, match="already holds a run"):
        train(config)


def test_cache_and_channels_last_and_class_weights(synthetic_root, tmp_path):
    config = tiny_config(
        synthetic_root,
        tmp_path / "run",
        cache=True,
        resize=40,
        channels_last=True,
        class_weights=[0.5, 2.0],
        monitor="1",
        n_train=8,
        n_eval=3,
        epochs=1,
        test=False,
    )
    history = train(config)
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])
    assert load_checkpoint(tmp_path / "run" / "best.pt")["config"] == dataclasses.asdict(config)


def test_cached_frames_train_exactly_like_frames_read_every_epoch(synthetic_root, tmp_path):
    """Without --resize the cache holds the decoded 8-bit frames themselves: the same run, bit for bit."""
    options = dict(n_train=8, n_eval=3, epochs=2, rotation=10, test=False)
    read = train(tiny_config(synthetic_root, tmp_path / "read", **options))
    cached = train(tiny_config(synthetic_root, tmp_path / "cached", cache=True, **options))
    assert without_seconds(cached) == without_seconds(read)
    a, b = (load_checkpoint(tmp_path / name / "last.pt")["model"] for name in ("read", "cached"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_class_weights_change_the_training_loss_as_the_formula_says(synthetic_root, tmp_path, monkeypatch):
    """lr 0, no augmentation: epoch 1's loss is the mean over batches of sum(w_y * -log p_y) / sum(w_y)."""
    expected = []
    real_epoch = engine.train_one_epoch

    def formula_then_epoch(model, loader, *args, class_weights, **kwargs):
        weights = class_weights if class_weights is not None else torch.ones(2)
        rng = torch.get_rng_state()  # the same dropout masks as the training step below, which replays this state
        model.train()
        with torch.no_grad():
            losses = []
            for images, masks in loader:
                log_p = torch.log_softmax(model(images), dim=1)
                kept = masks != 255
                y = masks.clamp(max=1)
                w = weights[y]
                losses.append((-(w * log_p.gather(1, y[:, None])[:, 0])[kept].sum() / w[kept].sum()).item())
        expected.append(sum(losses) / len(losses))
        torch.set_rng_state(rng)
        return real_epoch(model, loader, *args, class_weights=class_weights, **kwargs)

    def network_with_random_scores(config, **options):
        """The compact preset starts its score layers at zero (every loss ln 2, whatever the weights): not here."""
        model = real_build(config, **options)
        with torch.no_grad():
            model.score_fr.weight.normal_(0.0, 0.5)
        return model

    real_build = run_module.build_model_for
    monkeypatch.setattr(run_module, "build_model_for", network_with_random_scores)
    monkeypatch.setattr(engine, "train_one_epoch", formula_then_epoch)
    options = dict(lr=0.0, crop_size=None, hflip=0.0, n_train=4, n_eval=1, epochs=1, test=False, amp="none")
    plain = train(tiny_config(synthetic_root, tmp_path / "plain", **options))
    weighted = train(tiny_config(synthetic_root, tmp_path / "weighted", class_weights=[0.5, 2.0], **options))
    doubled = train(tiny_config(synthetic_root, tmp_path / "doubled", class_weights=[2.0, 2.0], **options))
    assert plain[0]["train_loss"] == pytest.approx(expected[0], rel=1e-5)
    assert weighted[0]["train_loss"] == pytest.approx(expected[1], rel=1e-5)
    assert abs(weighted[0]["train_loss"] - plain[0]["train_loss"]) > 1e-3  # the weights did change the loss
    assert doubled[0]["train_loss"] == pytest.approx(plain[0]["train_loss"], rel=1e-6)  # equal weights cancel


def test_a_run_written_before_the_split_resumes(finished_run, tmp_path):
    """last.pt and config.json in the previous format: no recipe / val_full_size, history rows without val_size."""
    config, history = finished_run
    run = tmp_path / "old"
    shutil.copytree(config.out, run)
    last = load_checkpoint(run / "last.pt")
    last["config"] = {k: v for k, v in last["config"].items() if k not in {"recipe", "val_full_size"}}
    last["history"] = [{k: v for k, v in row.items() if k != "val_size"} for row in last["history"]]
    torch.save(last, run / "last.pt")
    (run / "config.json").write_text(json.dumps(last["config"]))
    (run / "test.json").unlink()
    resumed = train(dataclasses.replace(config, out=str(run), epochs=4), resume=True)
    assert len(resumed) == 4 and [row["val_size"] for row in resumed] == [0, 0, 0, 0]
    assert without_seconds(resumed[:3]) == without_seconds(history)
    assert list(read_history(run / "history.csv")[0]) == list(history[0])
    assert (run / "test.json").exists()

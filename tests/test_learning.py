"""Does training learn? Seeded tiny CPU runs on the synthetic set, and the checkpoints they leave.

Nothing else in the suite fails when training stops learning (a wrong loss, a frozen layer, a broken
augmentation that mismatches images and masks): these tests do. The runs are deterministic on the CPU
(seeded, deterministic kernels), and the thresholds sit well below what they reach.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fcn_tutorial import cli, engine, run
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.config import TrainConfig
from fcn_tutorial.data import VOID, make_synthetic_polyps
from fcn_tutorial.data.registry import get_dataset
from fcn_tutorial.evaluate import load_model
from fcn_tutorial.history import read_history
from fcn_tutorial.metrics import ConfusionMatrix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    return make_synthetic_polyps(root, n_train=24, n_valid=6, n_test=6, size=(64, 64), seed=0, progress=False)


def all_background_jaccard(data: Path, split: str = "test") -> list[float]:
    """The Jaccard of each class for a model that predicts background everywhere: the baseline to beat."""
    confusion = ConfusionMatrix(2, ignore_index=VOID)
    for _, mask in get_dataset(str(data), split, n_classes=2):
        mask = mask.as_subclass(torch.Tensor)
        confusion.update(torch.zeros_like(mask), mask)
    return list(confusion.compute().jaccard)


def train_capturing_weights(config: TrainConfig) -> tuple[list[dict], dict[int, dict[str, torch.Tensor]]]:
    """Train per ``config``; also return a copy of the weights at the end of every epoch, keyed by epoch."""
    captured: dict[int, dict[str, torch.Tensor]] = {}
    real_epoch = engine.train_one_epoch

    def recording_epoch(model, *args, epoch, **kwargs):
        loss = real_epoch(model, *args, epoch=epoch, **kwargs)
        captured[epoch] = {name: value.detach().clone() for name, value in model.state_dict().items()}
        return loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "train_one_epoch", recording_epoch)
        history = run.train(config)
    return history, captured


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@pytest.fixture(scope="module")
def learned(synthetic, tmp_path_factory):
    """Six epochs of a narrow FCN-8s with batch norm: (config, history, weights per epoch)."""
    config = TrainConfig(
        data=str(synthetic),
        out=str(tmp_path_factory.mktemp("runs") / "learned"),
        model="fcn8s",
        preset="compact",
        width=0.125,
        batch_norm=True,
        crop_size=None,
        batch_size=4,
        eval_batch_size=6,
        epochs=6,
        lr=1e-2,
        seed=0,
        num_workers=0,
        progress=False,
    )
    history, captured = train_capturing_weights(config)
    return config, history, captured


def test_the_training_loss_falls(learned):
    _, history, _ = learned
    losses = [row["train_loss"] for row in history]
    assert losses[-1] < 0.75 * losses[0], losses
    assert min(losses[3:]) < min(losses[:3]), losses  # still falling in the second half


def test_the_trained_model_beats_the_all_background_baseline_on_held_out_frames(learned, synthetic):
    config, _, _ = learned
    baseline = all_background_jaccard(synthetic, "test")
    assert baseline[1] == 0.0  # every test frame has a polyp: predicting none scores 0
    # (the untrained compact network is this baseline: its score layers start at zero, so it predicts background)
    scores = json.loads((Path(config.out) / "test.json").read_text())  # frames never trained on nor selected on
    assert scores["jaccard"][1] > baseline[1] + 0.15, scores["jaccard"]  # about 0.24 on the machine it was tuned on
    assert scores["per_image_jaccard"][1] > 0.1


def test_best_pt_restores_the_best_epoch_tensor_by_tensor(learned):
    config, history, captured = learned
    best_epoch = max(history, key=lambda row: row["val_jaccard_mean"])["epoch"]
    assert load_checkpoint(Path(config.out) / "best.pt")["epoch"] == best_epoch
    model, loaded_config = load_model(Path(config.out) / "best.pt", "cpu")
    assert loaded_config == config
    assert same_tensors(model.state_dict(), captured[best_epoch])  # running batch-norm statistics included
    last = load_checkpoint(Path(config.out) / "last.pt")
    assert same_tensors(last["model"], captured[len(history)])


def test_best_pt_and_last_pt_differ_when_their_epochs_differ(synthetic, tmp_path):
    """Three epochs whose validation figure is made to peak at epoch 1: best.pt is epoch 1, last.pt epoch 3."""
    config = TrainConfig(
        data=str(synthetic),
        out=str(tmp_path / "run"),
        model="fcn8s",
        preset="compact",
        width=0.0625,
        crop_size=32,
        n_train=8,
        n_eval=2,
        batch_size=4,
        epochs=3,
        lr=1e-3,
        seed=0,
        num_workers=0,
        progress=False,
        test=False,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "monitored_value", lambda row, monitor: -float(row["epoch"]))
        history, captured = train_capturing_weights(config)
    best, last = (load_checkpoint(Path(config.out) / name) for name in ("best.pt", "last.pt"))
    assert (best["epoch"], last["epoch"], len(history)) == (1, 3, 3)
    assert same_tensors(best["model"], captured[1]) and same_tensors(last["model"], captured[3])
    assert not same_tensors(best["model"], last["model"])
    assert same_tensors(load_model(Path(config.out) / "best.pt", "cpu")[0].state_dict(), captured[1])


def test_the_original_recipe_lowers_the_loss_through_the_command_line(synthetic, tmp_path, capsys):
    """``--preset original``: the 2017 recipe (Glorot init, Adam 1e-4, batches of 10, every crop mirrored).

    At lr 1e-4 the original needed hundreds of epochs to segment polyps; a CPU test can afford a few dozen
    steps, in which it learns the class prior: both losses fall every epoch, well below ln 2.
    """
    out = tmp_path / "original"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(synthetic),
                "--out",
                str(out),
                "--preset",
                "original",
                "--width",
                "0.125",
                "--crop-size",
                "48",
                "--n-eval",
                "3",
                "--epochs",
                "5",
                "--num-workers",
                "0",
                "--no-test",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    config = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    recipe = dataclasses.asdict(TrainConfig.for_recipe("original"))
    for option in ("optimizer", "lr", "batch_size", "hflip", "normalize", "schedule", "amp", "weight_decay"):
        assert getattr(config, option) == recipe[option], option
    assert config.preset == "original" and not config.batch_norm
    history = read_history(out / "history.csv")
    losses = [row["train_loss"] for row in history]
    val_losses = [row["val_loss"] for row in history]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert all(later < earlier for earlier, later in zip(val_losses, val_losses[1:])), val_losses
    assert val_losses[-1] < val_losses[0] - 0.003, val_losses  # about 0.005 on the machine it was tuned on

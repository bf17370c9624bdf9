"""The training and scoring options of issue 10: --loss, --ema, --tta, --init-from, and the fast defaults."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math

import pytest
import torch

from fcn_tutorial import cli
from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.config import RECIPES, TrainConfig, add_config_arguments, config_from_args
from fcn_tutorial.data import VOID, make_synthetic_polyps
from fcn_tutorial.engine import (
    LOSSES,
    build_ema,
    build_optimizer,
    build_scheduler,
    dice_loss,
    lovasz_loss,
    segmentation_loss,
    train_one_epoch,
)
from fcn_tutorial.evaluate import evaluate_checkpoint, load_model
from fcn_tutorial.history import read_history
from fcn_tutorial.models import build_model
from fcn_tutorial.precision import AMP_CHOICES
from fcn_tutorial.run import train
from fcn_tutorial.scoring import default_eval_batch_size, flip_averaged_logits, predict_logits

from tiny import tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_polyps(root, n_train=8, n_valid=4, n_test=3, size=(48, 48), seed=0, progress=False)


def parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(["--data", "synthetic", "--out", "o", *argv]))[0]


# --------------------------------------------------------------------------------------------
# --loss

# Four pixels: p(polyp) = 0.5, 0.5, (void), 0.75; the truth is polyp, background, void, polyp.
LOGITS = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 5.0, math.log(3)]]]])
TARGET = torch.tensor([[[1, 0, 255, 1]]])


def test_dice_loss_is_the_hand_computed_value_and_ignores_void():
    # sum(p t) = 0.5 + 0.75 = 1.25, sum(p) = 1.75, sum(t) = 2: Dice = (2 * 1.25 + 1) / (1.75 + 2 + 1) = 14 / 19
    assert dice_loss(LOGITS, TARGET).item() == pytest.approx(5 / 19, abs=1e-6)
    assert segmentation_loss(LOGITS, TARGET, loss="dice").item() == pytest.approx(5 / 19, abs=1e-6)
    relabelled = TARGET.clone()
    relabelled[0, 0, 2] = 1  # the void pixel, counted, would change the loss
    assert dice_loss(LOGITS, relabelled).item() != pytest.approx(5 / 19, abs=1e-3)


def test_ce_and_ce_plus_dice():
    ce = (2 * math.log(2) + math.log(4 / 3)) / 3  # -log p of the true class, averaged over the 3 non-void pixels
    assert segmentation_loss(LOGITS, TARGET).item() == pytest.approx(ce, abs=1e-6)
    assert segmentation_loss(LOGITS, TARGET, loss="ce+dice").item() == pytest.approx(ce + 5 / 19, abs=1e-6)
    with pytest.raises(ValueError, match="--loss must be one of ce, dice, ce\\+dice"):
        segmentation_loss(LOGITS, TARGET, loss="focal")


def test_a_run_with_ce_plus_dice(data, tmp_path):
    history = train(tiny_config(data, tmp_path / "run", loss="ce+dice", epochs=1))
    assert math.isfinite(history[0]["train_loss"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loss"] == "ce+dice"


# --------------------------------------------------------------------------------------------
# --ema


def test_ema_update_is_the_moving_average():
    model = torch.nn.Linear(2, 1)
    torch.nn.init.constant_(model.weight, 1.0)
    ema = build_ema(model, decay=0.75)
    ema.update_parameters(model)  # the first update copies
    torch.nn.init.constant_(model.weight, 5.0)
    ema.update_parameters(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.75 * 1.0 + 0.25 * 5.0))


def test_ema_every_k_steps_samples_the_weights_with_decay_to_the_k():
    torch.manual_seed(0)
    batches = [(torch.rand(2, 3, 8, 8), (torch.rand(2, 8, 8) > 0.5).long()) for _ in range(5)]
    model = torch.nn.Conv2d(3, 2, 1)
    copy = torch.nn.Conv2d(3, 2, 1)
    copy.load_state_dict(model.state_dict())
    config = TrainConfig(optimizer="sgd", lr=0.5)
    ema = build_ema(model, decay=0.9, every=2)
    train_one_epoch(model, batches, build_optimizer(model, config), torch.device("cpu"), ema=ema)
    # the same five steps one at a time, keeping the weights after steps 2 and 4
    optimizer, kept = build_optimizer(copy, config), {}
    for step, batch in enumerate(batches, start=1):
        train_one_epoch(copy, [batch], optimizer, torch.device("cpu"))
        kept[step] = copy.weight.detach().clone()
    assert torch.equal(copy.weight, model.weight)  # the average never changes the training itself
    assert int(ema.n_averaged) == 2  # after steps 2 and 4, not after the epoch's last, odd one
    expected = 0.9**2 * kept[2] + (1 - 0.9**2) * kept[4]  # the first update copies
    assert torch.allclose(ema.module.weight, expected, atol=1e-6)


@pytest.fixture(scope="module")
def ema_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ema") / "run"
    train(tiny_config(data, out, ema=0.9, epochs=3, lr=1e-2))
    return out


def test_ema_weights_are_saved_loaded_and_validated(ema_run, data):
    best = load_checkpoint(ema_run / "best.pt")
    assert set(best["ema"]) == set(best["model"])
    assert any(not torch.equal(best["ema"][k], best["model"][k]) for k in best["model"])
    model, _ = load_model(ema_run / "best.pt", "cpu")
    assert all(torch.equal(value, best["ema"][name]) for name, value in model.state_dict().items())
    # the validation row of the best epoch is the EMA's score (same precision and memory format as the run)
    row = next(r for r in read_history(ema_run / "history.csv") if r["epoch"] == best["epoch"])
    scored = evaluate_checkpoint(ema_run / "best.pt", split="val", amp="auto", channels_last=True, progress=False)
    assert scored["pixel_accuracy"] == pytest.approx(row["val_accuracy"], abs=1e-12)
    assert scored["loss"] == pytest.approx(row["val_loss"], rel=1e-6)


def test_resume_keeps_the_ema_exact(ema_run, data, tmp_path):
    config = tiny_config(data, tmp_path / "run", ema=0.9, epochs=2, lr=1e-2)
    train(config)
    train(dataclasses.replace(config, epochs=3), resume=True)
    resumed, straight = load_checkpoint(tmp_path / "run" / "last.pt"), load_checkpoint(ema_run / "last.pt")
    assert resumed["ema_steps"] == straight["ema_steps"] == 3 * 2  # 8 frames in batches of 4, 3 epochs
    assert all(torch.equal(resumed["ema"][name], value) for name, value in straight["ema"].items())


# --------------------------------------------------------------------------------------------
# --tta


def test_flip_averaging_is_flip_equivariant_and_a_probability():
    torch.manual_seed(0)
    model = build_model("fcn8s", 2, preset="compact", width=0.0625).eval()
    for module in model.modules():  # random score layers too (they start at zero): a network with opinions
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.3)
    image = torch.rand(3, 32, 40)
    with torch.no_grad():
        plain = predict_logits(model, [image])[0], predict_logits(model, [image.flip(-1)])[0].flip(-1)
        tta = predict_logits(model, [image], tta=True)[0], predict_logits(model, [image.flip(-1)], tta=True)[0].flip(-1)
        direct = flip_averaged_logits(model, image[None])[0]
    assert not torch.allclose(*plain, atol=1e-4)  # the network alone is not mirror-symmetric...
    torch.testing.assert_close(*tta, atol=1e-5, rtol=1e-5)  # ...its flip average is
    torch.testing.assert_close(tta[0], direct)
    torch.testing.assert_close(tta[0].exp().sum(0), torch.ones(32, 40))


def test_evaluate_and_predict_commands_with_tta(ema_run, data, tmp_path, capsys):
    assert cli.main(["evaluate", str(ema_run / "best.pt"), "--split", "val", "--tta", "--json", "--no-progress"]) == 0
    with_tta = json.loads(capsys.readouterr().out)
    assert with_tta["tta"] == "flips" and with_tta["images"] == 4
    without = evaluate_checkpoint(ema_run / "best.pt", split="val", progress=False)
    assert "tta" not in without and without["loss"] != with_tta["loss"]
    assert cli.main(["evaluate", str(ema_run / "best.pt"), "--split", "val", "--tta", "--no-progress"]) == 0
    assert "frames/s, flip TTA: 4 network passes per frame" in capsys.readouterr().out
    frames = str(data / "test" / "images")
    assert (
        cli.main(
            ["predict", str(ema_run / "best.pt"), frames, "--out", str(tmp_path / "out"), "--tta", "--no-progress"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "wrote 3 masks and overlays" in printed and "frames/s" in printed and "4 flips per frame" in printed


# --------------------------------------------------------------------------------------------
# --init-from


def test_init_from_starts_fcn16s_from_a_trained_fcn32s(data, tmp_path):
    train(tiny_config(data, tmp_path / "fcn32s", model="fcn32s", epochs=1, lr=1e-2))
    coarse = load_checkpoint(tmp_path / "fcn32s" / "best.pt")["model"]
    # lr 0: the weights after one epoch are the weights it started from
    train(
        tiny_config(
            data, tmp_path / "fcn16s", model="fcn16s", epochs=1, lr=0.0, init_from=str(tmp_path / "fcn32s" / "best.pt")
        )
    )
    fine = load_checkpoint(tmp_path / "fcn16s" / "last.pt")["model"]
    shared = [name for name in coarse if name in fine and not name.startswith("upscore")]
    assert "score_fr.weight" in shared and len(shared) > 20
    assert all(torch.equal(fine[name], coarse[name]) for name in shared)
    assert not fine["score_pool4.weight"].any() and not fine["score_pool4.bias"].any()
    assert "initialised from" in (tmp_path / "fcn16s" / "train.log").read_text()


def test_init_from_a_net_built_otherwise_names_the_checkpoint(data, tmp_path):
    train(tiny_config(data, tmp_path / "fcn32s", model="fcn32s", epochs=1))
    checkpoint = str(tmp_path / "fcn32s" / "best.pt")
    with pytest.raises(ValueError, match=r"--init-from .*best\.pt: .*same width"):
        train(tiny_config(data, tmp_path / "wide", model="fcn16s", width=0.125, init_from=checkpoint))


# --------------------------------------------------------------------------------------------
# The command line and the fast defaults


def test_options_on_the_command_line():
    config = parse("--loss", "ce+dice", "--ema", "0.998", "--init-from", "runs/fcn32s/best.pt", "--no-channels-last")
    assert (config.loss, config.ema, config.init_from, config.channels_last) == (
        "ce+dice",
        0.998,
        "runs/fcn32s/best.pt",
        False,
    )
    assert parse("--ema", "0").ema is None
    assert parse("--channels-last").channels_last is True  # the old switch still works
    with pytest.raises(ValueError, match=r"--ema must be in \(0, 1\]"):
        parse("--ema", "1.5")
    with pytest.raises(SystemExit):
        parse("--loss", "focal")


def test_the_config_offers_exactly_what_the_engine_implements():
    # config.py imports no torch, so it writes these names itself; they must match the code that uses them
    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(TrainConfig) if f.metadata["choices"]}
    assert choices["loss"] == LOSSES
    assert choices["amp"] == AMP_CHOICES
    logits, target = torch.randn(2, 2, 4, 4), torch.randint(0, 2, (2, 4, 4))
    for loss in choices["loss"]:
        assert math.isfinite(segmentation_loss(logits, target, loss=loss).item())
    model = torch.nn.Conv2d(1, 1, 1)
    for schedule in choices["schedule"]:
        for optimizer in choices["optimizer"]:
            config = TrainConfig(schedule=schedule, optimizer=optimizer)
            build_scheduler(build_optimizer(model, config), config, steps_per_epoch=3)


def test_fast_defaults_and_the_exact_2017_recipe():
    config = parse()
    fast = (config.amp, config.use_channels_last, config.eval_batch_size, config.loss, config.ema)
    assert fast == ("auto", True, None, "ce", None)
    assert parse("--amp", "none").use_channels_last is False  # --amp none: the exact fp32 path of 2017
    assert parse("--amp", "none", "--channels-last").use_channels_last is True
    assert default_eval_batch_size("cpu") == 8 and default_eval_batch_size("cuda") == 16
    for original in (parse("--recipe", "original"), parse("--preset", "original")):
        exact = (original.amp, original.use_channels_last, original.eval_batch_size, original.loss, original.ema)
        assert exact == ("none", False, 1, "ce", None)
    assert {"amp", "channels_last", "loss", "ema", "eval_batch_size"} <= set(RECIPES["original"])


def test_per_image_dice_averages_the_frames_that_show_a_polyp():
    # frame 0: the four pixels above (Dice 14 / 19); frame 1: one polyp pixel at p = 0.5, Dice (1 + 1) / (0.5 + 1 + 1);
    # frame 2 shows no polyp and is left out, however much polyp it is given
    logits = torch.zeros(3, 2, 1, 4)
    logits[0] = LOGITS[0]
    logits[2, 1] = 5.0
    target = torch.zeros(3, 1, 4, dtype=torch.long)
    target[0] = TARGET[0]
    target[1, 0, 1:] = VOID
    target[1, 0, 0] = 1
    expected = ((1 - 14 / 19) + (1 - 2 / 2.5)) / 2
    assert dice_loss(logits, target, per_image=True).item() == pytest.approx(expected, abs=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, target, ignore_index=VOID).item()
    combined = segmentation_loss(logits, target, loss="ce+dice-per-image").item()
    assert combined == pytest.approx(ce + expected, abs=1e-6)
    # over the batch, the large false polyp of frame 2 would count
    assert dice_loss(logits, target).item() > 0.5


@pytest.mark.parametrize(
    "per_frame_loss",
    [functools.partial(dice_loss, per_image=True), lovasz_loss],
    ids=["dice per frame", "lovasz"],
)
def test_a_per_frame_loss_of_a_batch_without_polyps_adds_nothing_and_keeps_the_graph(per_frame_loss):
    logits = torch.randn(2, 2, 3, 3, requires_grad=True)
    loss = per_frame_loss(logits, torch.zeros(2, 3, 3, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


@pytest.mark.parametrize("loss", ["ce+dice-per-image", "ce+lovasz"])
def test_a_run_with_a_per_frame_loss(data, tmp_path, loss):
    history = train(tiny_config(data, tmp_path / "run", loss=loss, epochs=1))
    assert math.isfinite(history[-1]["train_loss"])


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_lovasz_of_hard_masks_is_one_minus_each_frames_jaccard():
    # frame 0: polyp drawn on pixels 0 and 1, truth on 0 and 2: Jaccard 1 / 3; frame 1: polyp everywhere, truth
    # pixel 0 and void elsewhere: Jaccard 1; frame 2 shows no polyp and is left out, however much polyp it is given
    target = torch.tensor([[[1, 0, 1, 0]], [[1, VOID, VOID, VOID]], [[0, 0, 0, 0]]])
    drawn = torch.tensor([[[1, 1, 0, 0]], [[1, 1, 1, 1]], [[1, 1, 1, 1]]]).float()
    logits = torch.stack([-30 * (2 * drawn - 1), 30 * (2 * drawn - 1)], dim=1)  # p(polyp) is 0 or 1
    assert lovasz_loss(logits, target).item() == pytest.approx(((1 - 1 / 3) + 0) / 2, abs=1e-6)


def test_lovasz_weighs_each_error_by_the_jaccard_step_it_causes():
    # truth 1, 1, 0 with p = 0.9, 0.4, 0.3: errors 0.1, 0.6, 0.3, sorted 0.6 (polyp), 0.3 (background), 0.1 (polyp);
    # Jaccard loss after 1, 2, 3 of them: 1 - 1/2, 1 - 1/3, 1 - 0/3, so steps 1/2, 1/6, 1/3
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 1, 0] = torch.tensor([_logit(0.9), _logit(0.4), _logit(0.3)])
    target = torch.tensor([[[1, 1, 0]]])
    assert lovasz_loss(logits, target).item() == pytest.approx(0.6 / 2 + 0.3 / 6 + 0.1 / 3, abs=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, target).item()
    assert segmentation_loss(logits, target, loss="ce+lovasz").item() == pytest.approx(ce + 0.38333333, abs=1e-6)


def test_lovasz_matches_the_reference_implementation_frame_by_frame():
    def reference(logits, target):  # Berman et al.'s lovasz_softmax, one frame at a time, class 1, void left out
        losses = []
        for p, t in zip(logits.softmax(1)[:, 1], target):
            keep = t != VOID
            truth = (t[keep] == 1).float()
            if truth.sum() == 0:
                continue
            errors, order = (truth - p[keep]).abs().sort(descending=True)
            truth = truth[order]
            jaccard = 1 - (truth.sum() - truth.cumsum(0)) / (truth.sum() + (1 - truth).cumsum(0))
            jaccard[1:] = jaccard[1:] - jaccard[:-1]
            losses.append(torch.dot(errors, jaccard))
        return torch.stack(losses).mean()

    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        logits = torch.randn(4, 2, 9, 11, generator=generator)
        target = torch.randint(0, 2, (4, 9, 11), generator=generator)
        target[torch.rand(4, 9, 11, generator=generator) < 0.2] = VOID
        target[0] = 0  # a frame without polyp
        assert lovasz_loss(logits, target).item() == pytest.approx(reference(logits, target).item(), abs=1e-6)

"""The trainer's building blocks, without a training run: precision, optimiser, schedule, config, logs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from fcn_tutorial import cli
from fcn_tutorial.config import (
    RECIPES,
    TrainConfig,
    build_model_for,
    config_from_args,
    runs_home,
    train_command,
)
from fcn_tutorial.distributed import ShardSampler
from fcn_tutorial.engine import build_optimizer, build_scheduler, segmentation_loss
from fcn_tutorial.history import plot_history, read_history, write_history
from fcn_tutorial.precision import precision_plan
from fcn_tutorial.profiles import current_profile
from fcn_tutorial.run import epoch_line, epoch_seed


@pytest.mark.parametrize(
    ("device", "amp", "bf16", "expected"),
    [
        ("cuda", "none", True, (None, False)),
        ("cuda", "bf16", True, (torch.bfloat16, False)),  # bf16 has fp32's range: no loss scaling
        ("cuda", "fp16", True, (torch.float16, True)),  # fp16 underflows: GradScaler
        ("cuda", "auto", True, (torch.bfloat16, False)),  # Ampere and later
        ("cuda", "auto", False, (torch.float16, True)),  # Volta, Turing (e.g. Colab's T4)
        ("cpu", "auto", True, (torch.bfloat16, False)),  # CPUs with native bf16 (AVX512-BF16, AMX)
        ("cpu", "auto", False, (None, False)),
        ("cpu", "bf16", True, (torch.bfloat16, False)),
        ("cpu", "fp16", True, (torch.float16, True)),
        ("mps", "none", False, (None, False)),
    ],
)
def test_precision_plan(device, amp, bf16, expected):
    assert precision_plan(device, amp, bf16_supported=bf16) == expected


def test_precision_plan_refuses_bf16_without_hardware_support():
    with pytest.raises(ValueError, match="bfloat16"):
        precision_plan("cpu", "bf16", bf16_supported=False)
    with pytest.raises(ValueError, match="--amp"):
        precision_plan("cpu", "half", bf16_supported=True)


# The precision paths through the training loop itself (fp16 with a GradScaler, bf16, channels-last, skipped
# inf gradients) are tested on engine.train_one_epoch in tests/test_engine.py.


def test_loss_ignores_void_pixels():
    logits = torch.randn(1, 2, 4, 4)
    target = torch.randint(0, 2, (1, 4, 4))
    voided = target.clone()
    voided[0, :2] = 255
    logits_changed = logits.clone()
    logits_changed[..., :2, :] = 100.0  # wild scores on void pixels change nothing
    expected = nn.functional.cross_entropy(logits[..., 2:, :], target[:, 2:])
    assert torch.allclose(segmentation_loss(logits_changed, voided), expected)


def test_weight_decay_spares_biases_and_sgd_uses_momentum():
    model = nn.Conv2d(3, 2, 3)
    adam = build_optimizer(model, TrainConfig(weight_decay=1e-4))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 1e-4
    decayed = {id(p): g["weight_decay"] for g in adam.param_groups for p in g["params"]}
    assert decayed[id(model.weight)] == 1e-4 and decayed[id(model.bias)] == 0.0
    adamw = build_optimizer(model, TrainConfig(optimizer="adamw", weight_decay=0.05))
    assert type(adamw) is torch.optim.AdamW and [g["weight_decay"] for g in adamw.param_groups] == [0.05, 0.0]
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With a zero gradient, AdamW still shrinks each weight by lr x decay per step; Adam's L2 term moves it by ~lr."""
    for name, expected in (("adamw", 1.0 - 0.1 * 0.5), ("adam", 1.0 - 0.1)):
        model = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(model.weight)
        optimizer = build_optimizer(model, TrainConfig(optimizer=name, lr=0.1, weight_decay=0.5))
        model.weight.grad = torch.zeros_like(model.weight)
        optimizer.step()
        assert model.weight.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_schedules(schedule):
    model = nn.Conv2d(3, 2, 3)
    config = TrainConfig(schedule=schedule, epochs=4, lr=0.1)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=5)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    if schedule == "constant":
        assert scheduler is None and set(rates) == {0.1}
    elif schedule == "cosine":
        assert rates[0] == 0.1 and rates[-1] < 0.01 and rates == sorted(rates, reverse=True)
    else:
        assert rates[0] < 0.01 and max(rates) == pytest.approx(0.1) and rates[-1] < 0.001


def test_config_round_trips_through_json_and_the_original_recipe_sets_its_options():
    config = TrainConfig.for_recipe("original", data="polyps912", out="runs/x", epochs=5)
    assert config.preset == "original" and config.recipe == "original"
    assert config.hflip == 1.0 and config.lr == 1e-4 and config.batch_size == 10 and config.patience == 100
    assert config.epochs == 5  # explicit options win over the recipe
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"learning_rate": 1})
    assert RECIPES["original"]["crop_size"] == 224
    with pytest.warns(DeprecationWarning, match="for_recipe"):
        assert TrainConfig.for_preset("original", data="polyps912", out="runs/x", epochs=5) == config


def test_cli_options_map_onto_the_config():
    args = cli.build_parser().parse_args(
        [
            "train",
            "--data",
            "synthetic",
            "--model",
            "fcn8s",
            "--preset",
            "compact",
            "--width",
            "0.25",
            "--epochs",
            "3",
            "--out",
            "runs/a",
            "--scale",
            "0.75",
            "1.25",
            "--time-limit",
            "30",
            "--no-progress",
        ]
    )
    config, resume = config_from_args(args)
    assert not resume
    assert (config.preset, config.width, config.epochs) == ("compact", 0.25, 3)
    assert (config.scale, config.time_limit) == ([0.75, 1.25], 30.0)
    assert config.progress is False and config.hflip == 0.5 and config.lr == 1e-4
    with pytest.raises(ValueError, match="train needs --data"):
        config_from_args(cli.build_parser().parse_args(["train", "--epochs", "3"]))


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(data="kvasir-seg", out="runs/a"),
        TrainConfig.for_recipe("original", data="polyps912", out="runs/o", epochs=5, hflip=0.5),
        TrainConfig(
            data="d", out="o", crop_size=None, patience=None, channels_last=False, test=False, scale=[0.8, 1.2]
        ),
        TrainConfig(data="d", out="o", channels_last=True, class_weights=[1.0, 2.5], lr=0.123456789, time_limit=29.5),
        *(
            current_profile(name, device="cpu").stage_config(model, data="kvasir-seg", out=f"runs/{model}")
            for name in ("quick", "full")
            for model in ("fcn32s", "fcn16s", "fcn8s")
        ),
    ],
)
def test_train_command_gives_back_the_config_it_was_made_from(config):
    command = train_command(config, leave_out=())
    assert command.startswith("fcn-tutorial train ")
    args = cli.build_parser().parse_args(command.split()[1:])
    assert config_from_args(args)[0] == config
    wrapped = train_command(config, leave_out=(), width=60)
    assert wrapped.replace(" \\\n    ", " ") == command and all(len(line) <= 60 for line in wrapped.splitlines()[:-1])


def test_train_command_refuses_values_the_command_line_cannot_say():
    # the original recipe switches channels-last off; "automatic" (None) has no option that says it
    with pytest.raises(ValueError, match="channels_last=None"):
        train_command(TrainConfig.for_recipe("original", data="d", out="o", channels_last=None))


def test_epoch_seeds_differ_per_epoch_and_rank():
    seeds = {epoch_seed(0, e, r) for e in range(1, 50) for r in range(4)}
    assert len(seeds) == 49 * 4
    assert epoch_seed(1, 1) != epoch_seed(0, 1)


def test_log_line_matches_the_original_tutorial():
    row = {
        "epoch": 7,
        "train_loss": 0.5,
        "val_loss": 0.25,
        "val_accuracy": 0.9,
        "val_jaccard_0": 0.8,
        "val_jaccard_1": 0.4,
        "val_jaccard_mean": 0.6,
        "seconds": 56.0,
    }
    assert epoch_line(row, 2) == (
        "EPOCH 7: Avg epoch training cost train 0.500000, cost val 0.250000, acc val 0.900000, "
        "jacc val class 0 0.800000, jacc val class 1 0.400000, jacc val 0.600000 took 56.000000 s"
    )


def test_history_csv_round_trip_and_curves(tmp_path):
    history = [
        {
            "epoch": e,
            "lr": 1e-4,
            "train_loss": 1 / e,
            "val_loss": 1.1 / e,
            "val_accuracy": 0.9,
            "val_jaccard_0": 0.9,
            "val_jaccard_1": 0.1 * e,
            "val_jaccard_mean": 0.5 + 0.05 * e,
            "seconds": 1.5,
        }
        for e in range(1, 4)
    ]
    write_history(history, tmp_path / "history.csv")
    assert read_history(tmp_path / "history.csv") == history  # floats round-trip exactly
    plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.csv").write_text("epoch,lr\n1,fast\n")
    with pytest.raises(ValueError, match="bad.csv, line 2"):
        read_history(tmp_path / "bad.csv")


def test_shard_sampler_counts_every_item_once():
    shards = [list(ShardSampler(11, rank, 3)) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    assert [len(s) for s in shards] == [4, 4, 3]  # no padding, unlike DistributedSampler


def test_the_original_preset_on_the_command_line_and_resume_rules(tmp_path):
    args = cli.build_parser().parse_args(
        ["train", "--data", "polyps912", "--out", str(tmp_path / "run"), "--preset", "original", "--epochs", "2"]
    )
    config, _ = config_from_args(args)
    assert (config.preset, config.hflip, config.lr, config.batch_size, config.epochs) == ("original", 1.0, 1e-4, 10, 2)
    assert config.recipe == "original"
    args = cli.build_parser().parse_args(
        ["train", "--data", "polyps912", "--out", str(tmp_path / "run"), "--recipe", "original", "--preset", "compact"]
    )
    config, _ = config_from_args(args)
    assert (config.preset, config.hflip, config.batch_size) == ("compact", 1.0, 10)  # the recipe, another network
    run = tmp_path / "cosine"
    run.mkdir()
    (run / "config.json").write_text(TrainConfig(out=str(run), schedule="cosine", epochs=4).to_json())
    resumed, resume = config_from_args(cli.build_parser().parse_args(["train", "--resume", str(run), "--no-progress"]))
    assert resume and resumed.epochs == 4 and resumed.progress is False
    with pytest.raises(ValueError, match="cannot change --epochs"):
        config_from_args(cli.build_parser().parse_args(["train", "--resume", str(run), "--epochs", "9"]))
    with pytest.raises(ValueError, match="cannot change"):
        config_from_args(cli.build_parser().parse_args(["train", "--resume", str(run), "--lr", "0.1"]))


def test_batch_norm_on_the_command_line_builds_a_vgg16_bn_backbone():
    args = cli.build_parser().parse_args(
        ["train", "--data", "synthetic", "--out", "unused", "--preset", "compact", "--width", "0.0625", "--batch-norm"]
    )
    config, _ = config_from_args(args)
    assert config.batch_norm is True
    model = build_model_for(config)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 13
    assert TrainConfig.from_dict(json.loads(config.to_json())).batch_norm is True  # survives config.json


def test_every_config_field_is_a_command_line_option_with_its_help():
    parser = cli.build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    options = {action.dest: action for action in train_parser._actions}
    for spec in dataclasses.fields(TrainConfig):
        if spec.metadata["cli"]:
            assert spec.name in options, spec.name
            assert options[spec.name].help.startswith(spec.metadata["help"])
            assert options[spec.name].choices in (None, spec.metadata["choices"])
    assert "deterministic" not in options  # cli=False


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--width", "inf"], r"--width must be in \(0, 4\], got inf"),
        (["--resize", "0"], r"--resize must be in \[1, 8192\], got 0"),
        (["--n-train", "-2"], r"--n-train must be"),
        (["--class-weights", "1"], "one weight per class"),
        (["--monitor", "7"], "--monitor must be"),
    ],
)
def test_options_out_of_range_are_one_line_errors(arguments, message, capsys):
    assert cli.main(["train", "--data", "synthetic", "--out", "never-written", *arguments]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_a_stored_config_is_validated_when_loaded():
    with pytest.raises(ValueError, match="--width"):
        TrainConfig.from_dict({"width": 1000})
    with pytest.raises(ValueError, match="--lr must be a number"):
        TrainConfig.from_dict({"lr": "fast"})


def test_moved_names_still_import_from_train_with_a_deprecation_warning():
    import fcn_tutorial.train as old

    with pytest.warns(DeprecationWarning, match="fcn_tutorial.precision.precision_plan"):
        assert old.precision_plan is precision_plan
    with pytest.warns(DeprecationWarning, match="RECIPES"):
        assert old.PRESET_RECIPES is RECIPES
    assert old.TrainConfig is TrainConfig and old.train_one_epoch.__module__ == "fcn_tutorial.engine"
    assert old.evaluate.__module__ == "fcn_tutorial.scoring"
    with pytest.raises(AttributeError):
        _ = old.no_such_name


def test_runs_go_to_fcn_tutorial_runs_unless_out_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("FCN_TUTORIAL_RUNS", str(tmp_path / "drive" / "runs"))
    config, _ = config_from_args(cli.build_parser().parse_args(["train", "--data", "synthetic", "--model", "fcn16s"]))
    assert Path(config.out).parent == tmp_path / "drive" / "runs" and Path(config.out).name.startswith("fcn16s-")
    config, _ = config_from_args(cli.build_parser().parse_args(["train", "--data", "synthetic", "--out", "mine"]))
    assert config.out == "mine"  # --out as given, relative to the working folder
    monkeypatch.delenv("FCN_TUTORIAL_RUNS")
    assert runs_home() == Path("runs")


def test_a_data_folder_is_stored_as_an_absolute_path_and_a_name_as_it_is(tmp_path, monkeypatch):
    (tmp_path / "my-polyps").mkdir()
    (tmp_path / "kvasir-seg").mkdir()  # a folder named like a data set: the name wins, as get_dataset reads it
    monkeypatch.chdir(tmp_path)
    parse = cli.build_parser().parse_args
    config, _ = config_from_args(parse(["train", "--data", "my-polyps", "--out", "runs/a"]))
    assert config.data == str(tmp_path.resolve() / "my-polyps")
    config, _ = config_from_args(parse(["train", "--data", "kvasir-seg", "--out", "runs/a"]))
    assert config.data == "kvasir-seg"

"""The configuration of a training run: :class:`TrainConfig`, its recipes, and the command line it generates.

Every option is one field of :class:`TrainConfig`, declared once with :func:`option`: its default, a
one-line help, and where it applies its choices and range. ``fcn-tutorial train``'s arguments are
generated from these fields (:func:`add_config_arguments`), the same fields are checked when a config
is built or loaded from a checkpoint (:meth:`TrainConfig.validate`), and the whole config is saved as
``config.json`` in the run folder.

Three words, three meanings:

* a **preset** is the network variant (``paper``, ``original``, ``compact``; see ``fcn_tutorial.models``);
* a **recipe** is a named set of option overrides, e.g. ``RECIPES["original"]``, the 2017 tutorial's
  training recipe (``fcn-tutorial train --recipe original``; ``--preset original`` alone implies it);
* a **profile** sizes the book's runs for a laptop CPU or a GPU (:mod:`fcn_tutorial.profiles`); it too
  is a set of overrides (``Profile.training_options()``).

>>> config = TrainConfig.for_recipe("original", data="polyps912", out="runs/original")
>>> config.preset, config.hflip, config.patience
('original', 1.0, 100)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "RUNS_ENV_VAR",
    "runs_home",
    "TrainConfig",
    "RECIPES",
    "option",
    "add_config_arguments",
    "config_from_args",
    "train_command",
    "resumable_options",
    "build_model_for",
]


RUNS_ENV_VAR = "FCN_TUTORIAL_RUNS"


def runs_home() -> Path:
    """The folder that holds run folders: ``$FCN_TUTORIAL_RUNS``, else ``runs`` (relative to the working folder).

    ``fcn-tutorial train`` without ``--out`` starts a new run folder here. On Colab,
    ``FCN_TUTORIAL_RUNS=/content/drive/MyDrive/fcn-runs`` keeps the runs on a mounted Google Drive.
    """
    return Path(os.environ.get(RUNS_ENV_VAR) or "runs").expanduser()


def option(
    default: Any,
    help: str,
    *,
    choices: tuple | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    zero_means_none: bool = False,
    nargs: Any = None,
    metavar: Any = None,
    flag: str | None = None,
    resumable: bool = False,
    cli: bool = True,
    show_default: bool = True,
) -> Any:
    """A :class:`TrainConfig` field with what the command line and the checks need to know about it.

    ``choices``: the allowed values. ``low``/``high``: the allowed range (``low_open``: ``low`` itself is
    not allowed). ``zero_means_none``: on the command line ``0`` stands for ``None`` (e.g. ``--crop-size 0``:
    whole frames). ``flag``: a negative switch such as ``--no-test``. ``resumable``: may change when a
    run is resumed. ``cli=False``: not on the command line.
    """
    metadata = dict(
        help=help,
        choices=choices,
        low=low,
        high=high,
        low_open=low_open,
        zero_means_none=zero_means_none,
        nargs=nargs,
        metavar=metavar,
        flag=flag,
        resumable=resumable,
        cli=cli,
        show_default=show_default,
    )
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# Named sets of TrainConfig overrides; options given explicitly win.
RECIPES: dict[str, dict[str, Any]] = {
    # The 2017 tutorial end to end: the original network, Adam 1e-4, batches 10/1/1, 224 crops mirrored
    # every time, [0, 1] inputs, early stopping with patience 100 on the validation mean Jaccard, <= 750 epochs.
    "original": dict(
        preset="original",
        optimizer="adam",
        lr=1e-4,
        weight_decay=0.0,
        schedule="constant",
        batch_size=10,
        eval_batch_size=1,
        crop_size=224,
        hflip=1.0,
        vflip=0.0,
        transpose=0.0,
        rotation=0.0,
        scale=None,
        color_jitter=0.0,
        normalize=False,
        epochs=750,
        patience=100,
        monitor="mean",
        class_weights=None,
        loss="ce",
        ema=None,
        val_every=1,
        amp="none",
        channels_last=False,
    ),
}


@dataclass
class TrainConfig:
    """Every option of a training run. The defaults are the 2017 tutorial's recipe (see ``RECIPES``)."""

    # what to train on and where to write
    data: str = option(
        "synthetic", "a folder in any supported layout, or kvasir-seg | polyps912 | synthetic", show_default=False
    )
    out: str = option(
        "runs/fcn8s",
        "the run folder (config.json, history.csv, best.pt, last.pt, train.log, curves.png, val.json, test.json); "
        "default: a new folder <model>-<date>-<time> in $FCN_TUTORIAL_RUNS (default: runs/)",
        show_default=False,
    )
    download: bool = option(False, "download a named data set if it is missing")
    # the network
    model: str = option("fcn8s", "the FCN variant", choices=("fcn32s", "fcn16s", "fcn8s"))
    preset: str = option(
        "paper",
        "network variant (padding and layout); 'original' also implies --recipe original",
        choices=("paper", "original", "compact"),
    )
    recipe: str | None = option(
        None,
        "a named set of training options applied first (e.g. 'original': the 2017 "
        "recipe); options given explicitly win",
        choices=tuple(RECIPES),
    )
    width: float = option(
        1.0, "channel multiplier of the backbone (e.g. 0.25 for a quick CPU model)", low=0.0, high=4.0, low_open=True
    )
    pretrained_backbone: bool = option(False, "start from ImageNet VGG16 weights")
    batch_norm: bool = option(
        False, "batch norm after each VGG convolution (torchvision's vgg16_bn): trains faster from scratch"
    )
    n_classes: int = option(2, "number of classes, background included", low=2, high=255)
    # data and augmentation
    resize: int | None = option(
        None,
        "resize every frame first so that its shorter side has this many pixels (default: full size)",
        low=1,
        high=8192,
    )
    crop_size: int | None = option(
        224, "random training crops of this size in pixels (0: whole frames)", low=1, high=8192, zero_means_none=True
    )
    hflip: float = option(0.5, "probability of a horizontal flip", low=0.0, high=1.0)
    vflip: float = option(0.0, "probability of a vertical flip", low=0.0, high=1.0)
    transpose: float = option(
        0.0, "probability of swapping rows and columns (with both flips at 0.5: all 8 orientations)", low=0.0, high=1.0
    )
    rotation: float = option(0.0, "random rotation, degrees, uniform in [-rotation, rotation]", low=0.0, high=180.0)
    scale: list[float] | None = option(
        None, "random rescale range, e.g. 0.75 1.25", nargs=2, metavar=("MIN", "MAX"), low=0.0, high=10.0, low_open=True
    )
    color_jitter: float = option(0.0, "brightness/contrast/saturation jitter strength", low=0.0, high=1.0)
    normalize: bool = option(False, "ImageNet mean/std normalisation (use with a pretrained backbone)")
    cache: bool = option(False, "decode (and resize) every frame once and keep them in memory")
    n_train: int | None = option(None, "use only this many training frames, evenly spread (default: all)", low=1)
    n_eval: int | None = option(None, "use only this many validation and test frames (default: all)", low=1)
    batch_size: int = option(10, "training batch size", low=1, high=4096)
    eval_batch_size: int | None = option(
        None, "evaluation batch size (default: from the machine: 8 on a CPU, 16 on a GPU)", low=1, high=4096
    )
    num_workers: int | None = option(
        None,
        "DataLoader worker processes (default: none when a CPU trains; with a GPU, one per core beyond one, at most 4)",
        low=0,
        high=256,
        resumable=True,
    )
    # optimisation
    loss: str = option(
        "ce",
        "cross-entropy, soft Dice of the polyp class over the batch, their sum, the sum with Dice per frame, "
        "or cross-entropy plus the Lovasz (Jaccard) loss per frame",
        choices=("ce", "dice", "ce+dice", "ce+dice-per-image", "ce+lovasz"),
    )
    ema: float | None = option(
        None,
        "decay of an exponential moving average of the weights, used for validation and saved (e.g. 0.998; 0: off)",
        metavar="DECAY",
        low=0.0,
        high=1.0,
        low_open=True,
        zero_means_none=True,
    )
    ema_every: int = option(
        1,
        "update the weight average every K steps, with decay^K (the same span of steps, a K-th of its memory traffic)",
        metavar="K",
        low=1,
        high=1000,
    )
    init_from: str | None = option(
        None,
        "start from a trained coarser net's checkpoint: FCN-16s from FCN-32s, FCN-8s from FCN-16s (paper's staging)",
        metavar="CHECKPOINT",
    )
    optimizer: str = option(
        "adam",
        "the optimiser (adamw: Adam with weight decay decoupled from the gradient)",
        choices=("adam", "adamw", "sgd"),
    )
    lr: float = option(1e-4, "learning rate (the peak rate of a one-cycle schedule)", low=0.0)
    momentum: float = option(0.9, "SGD momentum", low=0.0, high=1.0)
    weight_decay: float = option(
        0.0,
        "weight decay on weights only, never on biases (as in the original); adamw shrinks by lr x this per step",
        low=0.0,
        high=1.0,
    )
    schedule: str = option("constant", "learning-rate schedule", choices=("constant", "cosine", "onecycle"))
    epochs: int = option(750, "the most epochs to train", low=1, high=1_000_000, resumable=True)
    patience: int | None = option(
        100, "early-stopping patience in epochs (0: never stop early)", low=1, zero_means_none=True, resumable=True
    )
    monitor: str = option("mean", "'mean' or a class index: the validation Jaccard that picks the best epoch")
    class_weights: list[float] | None = option(None, "a loss weight per class", nargs="+", low=0.0)
    time_limit: float | None = option(
        None,
        "wall-time budget in minutes, data preparation included: start no epoch that would end after it",
        metavar="MINUTES",
        low=0.0,
        low_open=True,
        resumable=True,
    )
    val_every: int = option(
        1,
        "validate every N-th epoch and the last one; the others train only and cannot be the best",
        metavar="N",
        low=1,
        high=1_000_000,
    )
    val_full_size: bool = option(
        False,
        "score the validation split at full size every epoch, not at the "
        "training size (slower; the best epoch is always rescored at full size)",
    )
    # precision, speed and reproducibility
    device: str = option("auto", "auto | cpu | cuda | cuda:N | mps")
    amp: str = option(
        "auto",
        "mixed precision; auto: bf16 on CPUs and GPUs with native bf16, else fp16 on CUDA, else none (fp32)",
        choices=("none", "bf16", "fp16", "auto"),
    )
    channels_last: bool | None = option(
        None,
        "plain NCHW memory order instead of channels-last (NHWC; the default unless --amp none)",
        flag="--no-channels-last",
    )
    compile: bool = option(False, "torch.compile the model")
    deterministic: bool | None = option(
        None, "deterministic kernels (default: on for the CPU, off for GPUs)", cli=False
    )
    seed: int = option(0, "random seed of the run", low=0)
    progress: bool | None = option(None, "no progress bars", flag="--no-progress", resumable=True)
    test: bool = option(True, "skip the final test-set evaluation", flag="--no-test", resumable=True)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its type, choices and range; the message names the option and the range."""
        hints = typing.get_type_hints(type(self))
        for spec in fields(self):
            value = getattr(self, spec.name)
            meta = spec.metadata
            kind, optional, is_list = _kind(hints[spec.name])
            name = "--" + spec.name.replace("_", "-")
            if value is None:
                if optional:
                    continue
                raise ValueError(f"{name} must be set (got None)")
            values = value if is_list else [value]
            if is_list and (not isinstance(value, (list, tuple)) or (meta["nargs"] == 2 and len(value) != 2)):
                raise ValueError(f"{name} must be a list of {meta['nargs']} numbers, got {value!r}")
            for item in values:
                _check_value(name, item, kind, meta)
        if self.monitor != "mean" and not (self.monitor.isdigit() and int(self.monitor) < self.n_classes):
            raise ValueError(f"--monitor must be 'mean' or a class index 0..{self.n_classes - 1}, got {self.monitor!r}")
        if self.class_weights is not None and len(self.class_weights) != self.n_classes:
            raise ValueError(
                f"--class-weights needs one weight per class ({self.n_classes}), got {len(self.class_weights)}"
            )
        if self.scale is not None and self.scale[0] > self.scale[1]:
            low, high = self.scale
            raise ValueError(f"--scale MIN MAX needs MIN <= MAX, got {low:g} {high:g} (did you mean {high:g} {low:g}?)")

    @property
    def use_channels_last(self) -> bool:
        """Channels-last memory format: as asked, else on, except with ``--amp none`` (the exact fp32 path)."""
        return self.channels_last if self.channels_last is not None else self.amp != "none"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from ``config.json`` or a checkpoint; unknown or invalid options are a ``ValueError``."""
        if not isinstance(values, dict):
            raise ValueError(f"a training config is a dictionary of options, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"invalid training options: {error}") from None

    @classmethod
    def for_recipe(cls, recipe: str | None, **options) -> TrainConfig:
        """A config with the overrides of ``RECIPES[recipe]`` (none for ``None``), then ``options`` on top."""
        if recipe is not None and recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
        overrides = RECIPES.get(recipe, {}) if recipe else {}
        return cls.from_dict({**overrides, "recipe": recipe, **options})

    @classmethod
    def for_preset(cls, preset: str, **options) -> TrainConfig:
        """Deprecated: ``for_recipe(recipe, preset=preset, ...)``; ``preset`` now only names the network variant."""
        import warnings

        warnings.warn(
            "TrainConfig.for_preset is deprecated: use TrainConfig.for_recipe(name, preset=..., ...); "
            "a preset is the network variant, a recipe a set of training options",
            DeprecationWarning,
            stacklevel=2,
        )
        return cls.for_recipe(preset if preset in RECIPES else None, preset=preset, **options)


def _kind(hint) -> tuple[type, bool, bool]:
    """``(element type, may be None, is a list)`` of a field's annotation, e.g. ``list[float] | None``."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if args and typing.get_origin(hint) is not list:
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def _check_value(name: str, value: Any, kind: type, meta) -> None:
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return
    if kind in (int, float):
        wrong = isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int)
        if wrong:
            raise ValueError(f"{name} must be {'a number' if kind is float else 'a whole number'}, got {value!r}")
        low, high = meta["low"], meta["high"]
        too_low = low is not None and (value <= low if meta["low_open"] else value < low)
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            bound = "(" if meta["low_open"] else "["
            shown = (
                f"in {bound}{_num(low)}, {_num(high)}]"
                if high is not None
                else (f"> {_num(low)}" if meta["low_open"] else f">= {_num(low)}")
            )
            raise ValueError(f"{name} must be {shown}, got {value!r}")
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if meta["choices"] and value not in meta["choices"]:
        raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")


def _num(value) -> str:
    return "-inf" if value is None else f"{value:g}"


def resumable_options() -> set[str]:
    """The options that may change when a run is resumed (the rest must stay as the run started)."""
    return {f.name for f in fields(TrainConfig) if f.metadata["resumable"]}


# --------------------------------------------------------------------------------------------
# The command line, generated from the fields


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`TrainConfig` field as ``--option``; defaults are ``None``, so a recipe or the dataclass decides."""
    hints = typing.get_type_hints(TrainConfig)
    for spec in fields(TrainConfig):
        meta = spec.metadata
        if not meta["cli"]:
            continue
        kind, _, is_list = _kind(hints[spec.name])
        flag = meta["flag"] or "--" + spec.name.replace("_", "-")
        default = spec.default if spec.default is not MISSING else None
        if kind is bool:
            action = "store_false" if flag.startswith("--no-") else "store_true"
            if flag.startswith("--no-") and spec.default is not False:  # the positive switch too (--channels-last)
                parser.add_argument(
                    "--" + flag[5:], dest=spec.name, action="store_true", default=None, help=argparse.SUPPRESS
                )
            parser.add_argument(flag, dest=spec.name, action=action, default=None, help=meta["help"])
            continue
        help_text = meta["help"]
        if meta["low"] is not None or meta["high"] is not None:
            opening = "(" if meta["low_open"] else "["
            high = _num(meta["high"]) if meta["high"] is not None else "inf"
            outside = meta["low"] is not None and (meta["low"] > 0 or meta["low_open"])  # 0 is not in the range
            zero = "0 or " if meta["zero_means_none"] and outside else ""  # e.g. --patience 0: never stop early
            help_text += f" {zero}{opening}{_num(meta['low'])} .. {high}]"
        if meta["show_default"] and default not in (None, MISSING) and not isinstance(default, bool):
            help_text += f" (default: {default})"
        parser.add_argument(
            flag,
            dest=spec.name,
            type=kind,
            choices=meta["choices"],
            default=None,
            nargs=meta["nargs"] if is_list else None,
            metavar=meta["metavar"],
            help=help_text,
        )


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, bool]:
    """The config of ``fcn-tutorial train`` and whether it resumes a run (``args.resume``: its folder)."""
    specs = {f.name: f for f in fields(TrainConfig)}
    given = {name: getattr(args, name) for name in specs if getattr(args, name, None) is not None}
    for name, value in list(given.items()):
        if specs[name].metadata["zero_means_none"] and value == 0:
            given[name] = None
    resume = getattr(args, "resume", None)
    if resume:
        config_file = Path(resume) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"cannot resume: {config_file} does not exist")
        try:
            stored = json.loads(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot resume: {config_file} is not a readable config ({error})") from None
        config = TrainConfig.from_dict(stored)
        allowed = resumable_options()
        changed = sorted(k for k, v in given.items() if k not in allowed and v != getattr(config, k))
        if changed:
            raise ValueError(f"cannot change {changed} when resuming {resume}; only {sorted(allowed)}")
        if config.schedule != "constant" and given.get("epochs", config.epochs) != config.epochs:
            raise ValueError(
                f"cannot change --epochs when resuming {resume}: its {config.schedule} "
                f"learning-rate schedule spans {config.epochs} epochs"
            )
        for key in allowed & given.keys():
            setattr(config, key, given[key])
        config.out = str(resume)
        config.validate()
        return config, True
    if "data" not in given:
        raise ValueError("train needs --data (or --resume RUN_DIR)")
    from .data.registry import NAMES

    folder = Path(given["data"]).expanduser()
    if given["data"] not in NAMES and folder.is_dir():
        given["data"] = str(folder.resolve())  # so that the run's config.json works from any working folder
    if "out" not in given:
        model = given.get("model", TrainConfig.model)
        given["out"] = str(runs_home() / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    recipe = given.pop("recipe", None)
    if recipe is None and given.get("preset") == "original":
        recipe = "original"  # as before the split: --preset original brings the 2017 recipe with it
    return TrainConfig.for_recipe(recipe, **given), False


def _word(value) -> str:
    """``value`` as the command line writes it: ``1e-05``, ``0.5``, ``29.5``; every digit of a float kept."""
    if isinstance(value, float) and float(f"{value:g}") == value:
        return f"{value:g}"
    return str(value)


def train_command(
    config: TrainConfig, *, leave_out: tuple[str, ...] = ("device", "progress"), width: int | None = None
) -> str:
    """The ``fcn-tutorial train`` command that gives ``config``: only the options that differ from the defaults.

    The inverse of :func:`config_from_args`, so a command shown to a reader is generated from the values a
    notebook trains with, never copied by hand. A config with a recipe starts from the recipe's values.
    ``leave_out`` names fields to omit (by default the device and progress bars, which the machine decides).
    ``width``: break the command into lines of at most about this many characters, ending in ``\\``.

    >>> train_command(TrainConfig(data="kvasir-seg", model="fcn32s", lr=1e-3, scale=[0.8, 1.2], out="runs/a"))
    'fcn-tutorial train --data kvasir-seg --out runs/a --model fcn32s --scale 0.8 1.2 --lr 0.001'
    """
    base = TrainConfig.for_recipe(config.recipe)
    words = ["fcn-tutorial", "train"]
    hints = typing.get_type_hints(TrainConfig)
    for spec in fields(TrainConfig):
        value, meta = getattr(config, spec.name), spec.metadata
        # the data, the run folder, the variant and the recipe always; any other option where it differs
        said = spec.name in ("data", "out", "model", "recipe") or value != getattr(base, spec.name)
        if spec.name in leave_out or not meta["cli"] or not said or value is None and spec.name == "recipe":
            continue
        kind, _, _ = _kind(hints[spec.name])
        flag = meta["flag"] or "--" + spec.name.replace("_", "-")
        if kind is bool:
            if value is None:
                raise ValueError(f"{spec.name}=None (automatic) has no command-line option; leave it at its default")
            if flag.startswith("--no-"):  # --no-channels-last, and --channels-last to switch it on
                words.append(flag if not value else "--" + flag[5:])
            elif value:
                words.append(flag)
            else:
                raise ValueError(f"{spec.name}=False has no command-line option ({flag} only switches it on)")
            continue
        if value is None:
            if not meta["zero_means_none"]:
                raise ValueError(f"{spec.name}=None has no command-line option; leave it at its default")
            value = 0
        items = value if isinstance(value, list) else [value]
        words.append(" ".join([flag, *(_word(item) for item in items)]))
    if width is None:
        return " ".join(words)
    lines = [words[0]]
    for word in words[1:]:  # an option and its value stay on one line
        if len(lines[-1]) + 1 + len(word) > width - 2:
            lines[-1] += " \\"
            lines.append("    " + word)
        else:
            lines[-1] += " " + word
    return "\n".join(lines)


def build_model_for(config: TrainConfig, *, pretrained_backbone: bool | None = None):
    """The untrained network that ``config`` describes.

    ``pretrained_backbone=False`` skips ImageNet's weights (and their download) whatever the config says:
    for a network whose trained weights are loaded next, e.g. from a checkpoint.
    """
    from .models import build_model

    return build_model(
        config.model,
        config.n_classes,
        preset=config.preset,
        width=config.width,
        pretrained_backbone=config.pretrained_backbone if pretrained_backbone is None else pretrained_backbone,
        batch_norm=config.batch_norm,
    )

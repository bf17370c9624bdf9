"""Run-time profiles: how much computation the book's chapters spend.

The same chapter must run in minutes on a laptop CPU and train a real model on a GPU. A *profile* is a
named set of :class:`~fcn_tutorial.config.TrainConfig` values (``training``), plus the values of each
stage of chapter 6's staged training (``stages``: FCN-32s, then FCN-16s from it, then FCN-8s), so a
chapter reads ``profile.stage_config("fcn8s", ...)`` instead of hard-coding a number.

* ``quick``: small frames and a narrow network with batch norm; the whole book runs on a 2-core CPU in a
  few minutes, and the training chapter still shows three models that clearly beat the trivial baseline.
* ``full``: the full-width network from ImageNet VGG16 weights at full resolution, for one GPU.

Choose with the environment variable ``FCN_TUTORIAL_PROFILE=quick|full``; without it the profile is
``full`` when CUDA is available and ``quick`` otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .device import best_device_name

ENV_VAR = "FCN_TUTORIAL_PROFILE"
VARIANTS = ("fcn32s", "fcn16s", "fcn8s")  # the order of the staged training

# The assumed sustained float16 throughput of a Colab T4 for the full profile's estimate: about an eighth of
# its 65 TFLOP/s tensor-core peak (an assumption, not a measurement: see Profile.estimate).
T4_TFLOPS = 8.0


@dataclass(frozen=True)
class Profile:
    """The book's settings for one kind of machine. Build one with :func:`current_profile`."""

    name: str  # "quick" or "full"
    device: str  # "cpu", "cuda" or "mps"
    training: Mapping[str, Any]  # TrainConfig values shared by the book's training runs
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # each variant's own values

    # The sizes the other chapters read, straight from the TrainConfig values.
    @property
    def resize(self) -> int | None:
        return self.training.get("resize")

    @property
    def crop_size(self) -> int | None:
        return self.training.get("crop_size")

    @property
    def width(self) -> float:
        return self.training.get("width", 1.0)

    @property
    def epochs(self) -> int:
        """The epochs of the three stages together."""
        return sum(stage["epochs"] for stage in self.stages.values())

    def describe(self) -> str:
        """One line that every training output prints, e.g. ``profile quick on cpu (...)``."""
        t = self.training
        frames = f"{t['resize']} px frames" if t.get("resize") else "full-size frames"
        crops = f"{t['crop_size']} px crops" if t.get("crop_size") else "whole frames"
        epochs = " + ".join(f"{stage['epochs']}" for stage in self.stages.values())
        return (
            f"profile {self.name} on {self.device} ({t.get('preset', 'paper')} width {self.width:g}, {frames}, "
            f"{crops}, batch {t.get('batch_size')}, {epochs} epochs for FCN-32s + 16s + 8s)"
        )

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """How a notebook shows a profile: a few short lines instead of one very long ``Profile(...)``."""
        if cycle:
            printer.text("Profile(...)")
            return
        import textwrap

        values = ", ".join(f"{key}={value!r}" for key, value in self.training.items())
        lines = [f"Profile {self.name!r} on {self.device!r}", "  training:"]
        lines += textwrap.wrap(values, width=76, initial_indent="    ", subsequent_indent="    ")
        lines += ["  stages:"] + [
            f"    {model}: " + ", ".join(f"{key}={value!r}" for key, value in stage.items())
            for model, stage in self.stages.items()
        ]
        printer.text("\n".join(lines))

    def training_options(self, **overrides: Any) -> dict[str, Any]:
        """This profile's ``TrainConfig`` values on this device, with ``overrides`` on top."""
        return {**self.training, "device": self.device, **overrides}

    def stage_config(self, model: str, **overrides: Any):
        """The :class:`~fcn_tutorial.config.TrainConfig` of one stage of chapter 6's staged training."""
        from .config import TrainConfig

        if model not in self.stages:
            raise ValueError(f"profile {self.name} has no stage {model!r}; stages: {list(self.stages)}")
        return TrainConfig(**self.training_options(model=model, **self.stages[model], **overrides))

    @property
    def estimate(self) -> str:
        """The full profile's cost on a Colab T4, estimated from FLOP counts (see :data:`T4_TFLOPS`)."""
        if self.name != "full":
            return "the quick profile is measured, not estimated: see the chapters' printed times"
        import torch

        from .models import build_model, count_flops

        crop = self.training["crop_size"]
        minutes = {}
        for model in self.stages:
            with torch.device("meta"):
                network = build_model(model, 2, preset=self.training["preset"], width=self.width)
            step_flops = 3 * count_flops(network, (crop, crop))  # forward + backward (about twice the forward)
            images = self.stages[model]["epochs"] * 657  # Kvasir-SEG's training split in this package
            minutes[model] = images * step_flops / (T4_TFLOPS * 1e12) / 60
        parts = ", ".join(f"{model} {value:.0f} min" for model, value in minutes.items())
        return (
            f"estimated training time on a Colab T4 at an assumed {T4_TFLOPS:g} TFLOP/s: {parts}; "
            f"{sum(minutes.values()):.0f} min for the three stages, before data loading and validation "
            f"(each stage may stop earlier: patience {self.training['patience']})"
        )


# The profiles without their device (filled in by current_profile). Every value is a TrainConfig field.
PROFILES: dict[str, Profile] = {
    # Chapter 6 on a 2-core CPU: an eighth-width FCN with batch norm, trained from scratch on every training
    # frame resized to 128 px (cached in memory), bf16 where the CPU has it (amp auto), Adam with a cosine
    # schedule, cross-entropy + Dice per frame; FCN-32s, then FCN-16s from it, then FCN-8s from that.
    "quick": Profile(
        name="quick",
        device="cpu",
        training=dict(
            preset="compact",
            width=0.125,
            batch_norm=True,
            resize=128,
            crop_size=None,
            hflip=0.5,
            vflip=0.5,
            cache=True,
            batch_size=4,
            eval_batch_size=8,
            num_workers=0,
            optimizer="adam",
            schedule="cosine",
            loss="ce+dice-per-image",
            patience=None,
            amp="auto",
        ),
        stages={
            "fcn32s": dict(epochs=14, lr=3e-3),
            "fcn16s": dict(epochs=8, lr=1e-3),
            "fcn8s": dict(epochs=10, lr=1e-3),
        },
    ),
    # The real recipe on one GPU: the paper's network from ImageNet VGG16 weights, full-size frames,
    # 224 px training crops with flips, rotation, rescaling and colour jitter, float16/bfloat16 autocast.
    "full": Profile(
        name="full",
        device="cuda",
        training=dict(
            preset="paper",
            width=1.0,
            pretrained_backbone=True,
            normalize=True,
            resize=None,
            crop_size=224,
            hflip=0.5,
            vflip=0.5,
            rotation=15.0,
            scale=[0.75, 1.25],
            color_jitter=0.1,
            batch_size=8,
            eval_batch_size=4,
            num_workers=2,
            optimizer="adam",
            schedule="cosine",
            patience=10,
            amp="auto",
            channels_last=True,
        ),
        stages={
            "fcn32s": dict(epochs=40, lr=1e-4),
            "fcn16s": dict(epochs=20, lr=5e-5),
            "fcn8s": dict(epochs=20, lr=5e-5),
        },
    ),
}


def default_device() -> str:
    """The fastest device here: ``cuda``, else ``mps``, else ``cpu`` (:func:`fcn_tutorial.device.best_device_name`)."""
    return best_device_name()


def current_profile(name: str | None = None, *, device: str | None = None) -> Profile:
    """The profile named ``name``, else ``$FCN_TUTORIAL_PROFILE``, else ``full`` on CUDA and ``quick`` elsewhere.

    ``device`` overrides the detected device (``cuda`` when available, then ``mps``, then ``cpu``).
    """
    device = device or default_device()
    source = "requested"
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip().lower()
        source = f"{ENV_VAR}={name!r}"
        if not name:
            name = "full" if device == "cuda" else "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} ({source}); choose one of {sorted(PROFILES)}")
    return replace(PROFILES[name], device=device)

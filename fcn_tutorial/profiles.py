"""Run-time profiles: how much computation the book's chapters spend.

The same chapter must run in minutes on a laptop CPU and train a real model on a GPU. A *profile*
collects every size that decides the cost (frames, crops, network width, epochs, batch size) in one
frozen object, so a chapter reads ``profile.crop_size`` instead of hard-coding a number.

* ``quick``: a few hundred small frames and a narrow network; the whole book runs on a 2-core CPU
  in about eight minutes and the training chapter still shows a model that learns.
* ``full``: the full-size recipe for one GPU.

Choose with the environment variable ``FCN_TUTORIAL_PROFILE=quick|full``; without it the profile is
``full`` when CUDA is available and ``quick`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from .device import best_device_name

ENV_VAR = "FCN_TUTORIAL_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Every setting that sizes the book's computations. Build one with :func:`current_profile`."""

    name: str  # "quick" or "full"
    device: str  # "cpu", "cuda" or "mps"
    # data
    n_train: int | None  # training frames used (None: the whole split)
    n_eval: int | None  # validation/test frames used (None: the whole split)
    resize: int | None  # every frame is resized to this size first (None: keep the full size)
    crop_size: int | None  # random training crops (None: whole frames)
    eval_size: int | None  # evaluation frames resized to this size (None: full size)
    # model
    model: str  # fcn32s | fcn16s | fcn8s
    preset: str  # paper | original | compact
    width: float  # channel multiplier of the VGG16 backbone
    # optimisation
    batch_size: int
    epochs: int
    time_limit: float | None  # minutes of training at most (None: no limit)
    lr: float
    num_workers: int
    amp: str  # none | bf16 | fp16 | auto

    def describe(self) -> str:
        """One line that every training output prints, e.g. ``profile quick on cpu (...)``."""
        frames = f"{self.resize} px frames" if self.resize else "full-size frames"
        crops = f"{self.crop_size} px crops" if self.crop_size else "whole frames"
        budget = f"up to {self.epochs} epochs"
        if self.time_limit is not None:
            budget += f" or {self.time_limit:g} min"
        images = "all" if self.n_train is None else str(self.n_train)
        return (f"profile {self.name} on {self.device} ({self.model} {self.preset} width {self.width:g}, "
                f"{frames}, {crops}, batch {self.batch_size}, {budget}, {images} training frames)")

    def training_options(self, **overrides: Any) -> dict[str, Any]:
        """The options of ``fcn_tutorial.train.TrainConfig`` that this profile sets, with ``overrides`` on top."""
        options = {
            "model": self.model,
            "preset": self.preset,
            "width": self.width,
            "resize": self.resize,
            "crop_size": self.crop_size,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "time_limit": self.time_limit,
            "lr": self.lr,
            "num_workers": self.num_workers,
            "amp": self.amp,
            "device": self.device,
        }
        options.update(overrides)
        return options

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The two profiles without their device (filled in by current_profile).
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick", device="cpu",
        n_train=200, n_eval=40, resize=128, crop_size=112, eval_size=128,
        model="fcn8s", preset="compact", width=0.25,
        batch_size=8, epochs=12, time_limit=3.0, lr=1e-3, num_workers=0, amp="none",
    ),
    "full": Profile(
        name="full", device="cuda",
        n_train=None, n_eval=None, resize=None, crop_size=224, eval_size=None,
        model="fcn8s", preset="paper", width=1.0,
        batch_size=10, epochs=200, time_limit=None, lr=1e-4, num_workers=4, amp="auto",
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

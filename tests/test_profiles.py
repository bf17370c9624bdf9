"""Profiles: the environment variable chooses, the default follows CUDA, bad names fail clearly."""

from __future__ import annotations

import dataclasses

import pytest

from fcn_tutorial import profiles
from fcn_tutorial.profiles import ENV_VAR, Profile, current_profile
from fcn_tutorial.train import TrainConfig


def test_environment_variable_chooses_the_profile(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "full")
    assert current_profile().name == "full"
    monkeypatch.setenv(ENV_VAR, " Quick ")
    assert current_profile().name == "quick"


def test_default_is_full_on_cuda_and_quick_elsewhere(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(profiles, "default_device", lambda: "cuda")
    assert (current_profile().name, current_profile().device) == ("full", "cuda")
    monkeypatch.setattr(profiles, "default_device", lambda: "cpu")
    assert (current_profile().name, current_profile().device) == ("quick", "cpu")


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"unknown profile 'fast' \(FCN_TUTORIAL_PROFILE='fast'\).*full.*quick"):
        current_profile()
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        current_profile("huge")


def test_profile_is_frozen_and_describes_itself():
    profile = current_profile("quick", device="cpu")
    assert isinstance(profile, Profile)
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.epochs = 100
    line = profile.describe()
    assert line.startswith("profile quick on cpu (")
    assert f"width {profile.width:g}" in line and f"{profile.crop_size} px crops" in line
    assert current_profile("full", device="cuda").describe().startswith("profile full on cuda (")


def test_quick_is_smaller_than_full_in_every_cost():
    quick, full = current_profile("quick", device="cpu"), current_profile("full", device="cpu")
    assert quick.width < full.width
    assert quick.crop_size < full.crop_size
    assert quick.epochs < full.epochs
    assert quick.n_train is not None and full.n_train is None
    assert quick.time_limit is not None and quick.time_limit <= 4  # minutes: the training chapter's budget


def test_training_options_make_a_valid_train_config():
    profile = current_profile("quick", device="cpu")
    config = TrainConfig(**profile.training_options(out="runs/x", epochs=1))
    assert (config.width, config.crop_size, config.resize, config.epochs, config.device) == (
        profile.width, profile.crop_size, profile.resize, 1, "cpu")


"""Profiles: sets of TrainConfig values; the environment variable chooses, the default follows CUDA."""

from __future__ import annotations

import dataclasses

import pytest

from fcn_tutorial import profiles
from fcn_tutorial.profiles import ENV_VAR, VARIANTS, Profile, current_profile


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
        profile.name = "other"
    line = profile.describe()
    assert line.startswith("profile quick on cpu (")
    assert f"width {profile.width:g}" in line and f"{profile.resize} px frames" in line
    assert current_profile("full", device="cuda").describe().startswith("profile full on cuda (")


def test_quick_is_smaller_than_full_in_every_cost():
    quick, full = current_profile("quick", device="cpu"), current_profile("full", device="cpu")
    assert quick.width < full.width
    assert quick.resize is not None and full.resize is None  # small frames against full-size ones
    assert quick.epochs < full.epochs
    assert not quick.training.get("pretrained_backbone") and full.training["pretrained_backbone"]


@pytest.mark.parametrize("name", ["quick", "full"])
def test_every_stage_is_a_valid_train_config(name):
    profile = current_profile(name, device="cpu")
    assert tuple(profile.stages) == VARIANTS  # FCN-32s, then FCN-16s from it, then FCN-8s
    for model in VARIANTS:
        config = profile.stage_config(model, out="runs/x", data="synthetic")
        config.validate()
        assert config.model == model and config.device == "cpu"
        assert config.epochs == profile.stages[model]["epochs"] and config.lr == profile.stages[model]["lr"]
        assert (config.width, config.resize) == (profile.width, profile.resize)


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(ValueError, match="no stage 'fcn4s'"):
        current_profile("quick", device="cpu").stage_config("fcn4s")


def test_full_profile_estimate_is_derived_from_flops():
    text = current_profile("full", device="cuda").estimate
    assert "T4" in text and "TFLOP/s" in text and "min for the three stages" in text
    # 40 epochs x 657 frames x 3 x the paper FCN-32s's 125.3 GFLOPs per 224 x 224 crop at 8 TFLOP/s: 20.6 min
    assert "fcn32s 21 min" in text


def test_a_notebook_shows_a_profile_in_short_lines():
    from IPython.lib.pretty import pretty

    from fcn_tutorial.profiles import current_profile

    shown = pretty(current_profile("quick", device="cpu"))
    assert shown.startswith("Profile 'quick' on 'cpu'")
    assert all(len(line) <= 80 for line in shown.splitlines())
    assert "fcn8s: epochs=" in shown and "width=" in shown

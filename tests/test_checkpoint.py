"""Checkpoints: atomic writes, weights_only loading that refuses code, RNG states as plain data."""

from __future__ import annotations

import os
import pickle
import random
import zipfile

import numpy as np
import pytest
import torch

from fcn_tutorial.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint


class Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "epoch": 3,
        "best": -float("inf"),
        "history": [{"epoch": 1, "lr": 1e-4}],
        "betas": (0.9, 0.999),
        "name": "fcn8s",
        "none": None,
    }
    path = save_checkpoint(state, tmp_path / "run" / "last.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert {k: v for k, v in loaded.items() if k != "model"} == {k: v for k, v in state.items() if k != "model"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary file left


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickled_code_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    state = {"model": {}, "config": Payload(marker)}
    if writer == "torch.save":
        torch.save(state, path)
    else:
        with open(path, "wb") as file:
            pickle.dump(state, file, protocol=2)
    with pytest.raises(ValueError, match="evil.pt") as error:
        load_checkpoint(path)
    # torch.save's zip archive reaches the restricted unpickler; a bare pickle is not even opened
    assert ("weights_only" if writer == "torch.save" else "not a PyTorch checkpoint") in str(error.value)
    assert not marker.exists()


def test_missing_and_garbage_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pt is not a PyTorch checkpoint"):
        load_checkpoint(garbage)
    notes = tmp_path / "notes.pt"
    notes.write_text("some notes\nabout my model")  # once an IndexError from inside torch.load
    with pytest.raises(ValueError, match="notes.pt is not a PyTorch checkpoint"):
        load_checkpoint(notes)
    (tmp_path / "empty.pt").touch()
    with pytest.raises(ValueError, match="empty.pt is empty"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="is a folder: give a checkpoint file in it, such as"):
        load_checkpoint(tmp_path)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:  # a zip, but not torch's
        archive.writestr("a.txt", "x")
    with pytest.raises(ValueError, match="other.zip is not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "other.zip")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(save_checkpoint({"w": torch.zeros(1000)}, tmp_path / "whole.pt").read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_checkpoint(truncated)


def test_failed_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint({"epoch": 1}, tmp_path / "last.pt")
    before = path.read_bytes()

    def crash(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.standard_normal(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (random.random(), np.random.standard_normal(), torch.rand(3))
    assert again[:2] == expected[:2]
    assert torch.equal(again[2], expected[2])

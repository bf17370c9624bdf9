"""Checkpoints: atomic writes, weights_only loading that refuses code, RNG states as plain data."""

from __future__ import annotations

import os
import pickle
import random
import threading

import numpy as np
import pytest
import torch

from fcn_tutorial.checkpoint import CheckpointWriter, load_checkpoint, restore_rng_state, rng_state, save_checkpoint


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
    assert "weights_only" in str(error.value)
    assert not marker.exists()


def test_missing_and_garbage_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pt"):
        load_checkpoint(garbage)


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


def test_the_background_writer_saves_a_snapshot_in_order(tmp_path):
    weights = torch.zeros(3)
    moments = {"state": {0: {"exp_avg": torch.ones(3)}}}
    with CheckpointWriter() as writer:
        for epoch in range(1, 4):
            writer.submit({"model": {"w": weights}, "optimizer": moments, "epoch": epoch}, tmp_path / "last.pt")
            weights += 10  # the next epoch changes the tensors in place while the write may still run
            moments["state"][0]["exp_avg"] *= 2
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 3  # the last submitted, not an earlier write that finished late
    assert torch.equal(state["model"]["w"], torch.full((3,), 20.0))
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], torch.full((3,), 4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_the_background_writer_runs_off_the_calling_thread(tmp_path, monkeypatch):
    from fcn_tutorial import checkpoint

    real_save, release, threads = checkpoint.torch.save, threading.Event(), []

    def slow_save(state, file):
        threads.append(threading.current_thread().name)
        assert release.wait(5), "the caller never went on"
        real_save(state, file)

    monkeypatch.setattr(checkpoint.torch, "save", slow_save)
    with CheckpointWriter() as writer:
        writer.submit({"epoch": 1}, tmp_path / "last.pt")  # returns while the write is blocked
        assert not (tmp_path / "last.pt").exists()
        release.set()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert threads and threads[0] != threading.current_thread().name


def test_a_failed_background_write_is_raised_and_the_others_still_finish(tmp_path, monkeypatch):
    from fcn_tutorial import checkpoint

    real_save = checkpoint.torch.save

    def fail_best(state, file):
        if state.get("name") == "best":
            raise OSError(28, "No space left on device")
        real_save(state, file)

    monkeypatch.setattr(checkpoint.torch, "save", fail_best)
    writer = CheckpointWriter()
    writer.submit({"name": "best"}, tmp_path / "best.pt")
    writer.submit({"name": "last"}, tmp_path / "last.pt")
    with pytest.raises(OSError, match="best.pt"):
        writer.wait()
    assert load_checkpoint(tmp_path / "last.pt")["name"] == "last"
    assert not (tmp_path / "best.pt").exists() and not list(tmp_path.glob(".*.tmp"))
    writer.submit({"name": "best"}, tmp_path / "best.pt")
    with pytest.raises(OSError, match="best.pt"):  # raised by the next submit at the latest
        writer.submit({"name": "last"}, tmp_path / "last.pt")
        writer.submit({"name": "last"}, tmp_path / "last.pt")
        writer.wait()


def test_leaving_the_writer_on_an_error_still_finishes_the_writes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with CheckpointWriter() as writer:
            writer.submit({"epoch": 7, "w": torch.randn(1000, 100)}, tmp_path / "last.pt")
            raise KeyboardInterrupt  # Ctrl-C during the next epoch
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 7

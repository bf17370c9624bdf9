"""Nothing lost: a training process killed with SIGKILL mid-epoch resumes to the very same run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fcn_tutorial.checkpoint import load_checkpoint
from fcn_tutorial.data import make_synthetic_polyps
from fcn_tutorial.history import read_history

from tiny import TINY_NETWORK_ARGS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def train_command(data: Path, out: Path, epochs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fcn_tutorial.cli",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        *TINY_NETWORK_ARGS,
        "--hflip",
        "0.5",
        "--rotation",
        "10",
        "--batch-size",
        "4",
        "--eval-batch-size",
        "2",
        "--epochs",
        str(epochs),
        "--lr",
        "1e-3",
        "--num-workers",
        "2",
        "--seed",
        "7",
        "--no-progress",
        "--no-test",
    ]


def run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = make_synthetic_polyps(tmp_path / "data", n_train=24, n_valid=4, n_test=2, size=(48, 48), progress=False)
    epochs = 3
    straight = run(train_command(data, tmp_path / "straight", epochs))
    assert straight.returncode == 0, straight.stderr

    # Kill the second run in epoch 2, once its first batch has changed the weights: the driver writes a marker
    # there and waits, so the kill lands at the same point of the run however busy the machine is.
    killed_run, marker = tmp_path / "killed", tmp_path / "in-epoch-2"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = [sys.executable, str(REPO / "tests" / "_sigkill_driver.py"), str(marker), "2"]
    errors = tmp_path / "killed-stderr.txt"
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            driver + train_command(data, killed_run, epochs)[3:],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 180
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {errors.read_text()[-2000:]}")
        assert time.monotonic() < deadline, "no marker after 180 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(killed_run / "last.pt")["epoch"] == 1
    assert len(read_history(killed_run / "history.csv")) == 1  # killed inside epoch 2

    resumed = run([sys.executable, "-m", "fcn_tutorial.cli", "train", "--resume", str(killed_run), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr

    def without_seconds(run_dir):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(run_dir / "history.csv")]

    assert len(without_seconds(killed_run)) == epochs
    assert without_seconds(killed_run) == without_seconds(tmp_path / "straight")
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "straight" / name)["model"]
        b = load_checkpoint(killed_run / name)["model"]
        assert all(torch.equal(a[key], b[key]) for key in a), f"{name} weights differ"
    assert "resumed" in (killed_run / "train.log").read_text()

"""torchrun with two CPU processes (gloo): the validation scores equal a single-process evaluation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fcn_tutorial.data import make_synthetic_polyps
from fcn_tutorial.history import read_history

from tiny import TINY_NETWORK_ARGS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_training_scores_every_validation_image_once(tmp_path):
    # 5 validation frames over 2 processes: a DistributedSampler would score one of them twice.
    data = make_synthetic_polyps(tmp_path / "data", n_train=8, n_valid=5, n_test=0, size=(48, 48), progress=False)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "fcn_tutorial.cli",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--device",
        "cpu",
        *TINY_NETWORK_ARGS,
        "--batch-size",
        "2",
        "--eval-batch-size",
        "1",
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("EPOCH 2:") == 1  # only rank 0 logs
    last = read_history(out / "history.csv")[-1]

    # Like with like: the single-process scores come from a process with the same thread count (one), in the
    # run's precision and memory format (the defaults: --amp auto, channels-last) and batch size.
    scored = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcn_tutorial.cli",
            "evaluate",
            str(out / "last.pt"),
            "--data",
            str(data),
            "--split",
            "val",
            "--device",
            "cpu",
            "--amp",
            "auto",
            "--channels-last",
            "--batch-size",
            "1",
            "--json",
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    single = json.loads(scored.stdout)
    assert single["images"] == 5
    assert last["val_accuracy"] == pytest.approx(single["pixel_accuracy"], abs=1e-12)
    for c, jaccard in enumerate(single["jaccard"]):
        stored = last[f"val_jaccard_{c}"]
        assert math.isclose(stored, jaccard, abs_tol=1e-12) or (math.isnan(jaccard) and math.isnan(stored))
    assert last["val_loss"] == pytest.approx(single["loss"], rel=1e-6)

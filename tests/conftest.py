"""Shared fixtures: the real Kvasir-SEG folder beside the project, and a quiet, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# The chapters read the data cache from FCN_TUTORIAL_DATA (make points it at ../shared/data); so do the tests.
DATA_ROOT = Path(os.environ.get("FCN_TUTORIAL_DATA", REPO.parent / "shared" / "data"))
KVASIR_ROOT = DATA_ROOT / "kvasir-seg"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def kvasir_root() -> Path:
    """The real Kvasir-SEG pairs in ``$FCN_TUTORIAL_DATA/kvasir-seg``.

    Tests that need them skip when the folder is absent, except under ``CI=true``, where a missing
    data set is a failure: CI must never pass by skipping the tests on real frames.
    """
    if not (KVASIR_ROOT / "images").is_dir():
        message = (
            f"real Kvasir-SEG folder not found at {KVASIR_ROOT}: set FCN_TUTORIAL_DATA to the folder that "
            f"holds kvasir-seg/ (see ../shared/data/README.md)"
        )
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing data set fails instead of skipping)", pytrace=False)
        pytest.skip(message)
    return KVASIR_ROOT

"""Shared fixtures: the real Kvasir-SEG folder beside the project, and a quiet, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
KVASIR_ROOT = Path(os.environ.get("FCN_TUTORIAL_TEST_KVASIR", REPO.parent / "shared" / "data" / "kvasir-seg"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def kvasir_root() -> Path:
    """The 801 real Kvasir-SEG pairs in ../shared/data/kvasir-seg; tests skip when it is absent."""
    if not (KVASIR_ROOT / "images").is_dir():
        pytest.skip(f"real Kvasir-SEG folder not found at {KVASIR_ROOT} (see ../shared/data/README.md)")
    return KVASIR_ROOT

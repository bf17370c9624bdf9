"""Under CI=true a test that needs the real frames fails when they are missing; elsewhere it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run_kvasir_test(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test_needs_frames.py"
    test.write_text("def test_frames(kvasir_root):\n    assert kvasir_root.is_dir()\n")
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    env = {**os.environ, "FCN_TUTORIAL_DATA": str(tmp_path / "no-data-here"), "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_data_fails_under_ci(tmp_path):
    result = _run_kvasir_test(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "CI=true" in result.stdout and "no-data-here" in result.stdout


def test_missing_data_skips_outside_ci(tmp_path):
    result = _run_kvasir_test(tmp_path, "")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "FCN_TUTORIAL_DATA" in result.stdout

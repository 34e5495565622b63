"""The package builds cleanly: a real build through pip and the declared build backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest_parallel_hypotheses

PROJECT = Path(pytest_parallel_hypotheses.__file__).parent.parent


def test_building_the_package_prints_no_deprecation_warning(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), "."],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Deprecat" not in completed.stdout + completed.stderr
    assert list(tmp_path.glob("pytest_parallel_hypotheses-*.whl"))

"""House rules checked by the suite: ruff lint and format, mypy --strict, the layer contract."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_ruff_lint() -> None:
    result = _run(str(BIN / "ruff"), "check", "signage", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "signage", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(str(BIN / "mypy"), "--strict", "signage")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_contract() -> None:
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_ships_layouts_and_fonts(tmp_path: Path) -> None:
    result = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)
    )
    if result.returncode != 0 and "No matching distribution found for hatchling" in result.stderr:
        pytest.skip("the build backend could not be fetched")
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("signage-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "signage/fonts/fonts.toml" in names
    for template in (REPO / "layouts").glob("*.json"):
        assert f"signage/layouts/{template.name}" in names
    assert "signage/layouts/samples/dong-lua.jpg" in names

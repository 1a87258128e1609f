"""The architecture holds: `lint-imports` (import-linter) keeps the contracts that
pyproject.toml states, and each kind of contract really fails on a forbidden import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package and pyproject.toml in ``root`` (no cache written)."""
    if not LINT_IMPORTS.is_file():
        pytest.fail(
            f"{LINT_IMPORTS} is missing: install the dev tools with pip install -e '.[dev]'"
        )
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_checkout_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (file in a copy of the package, text added at its end, what lint-imports must say)
PROBES = {
    "a model imports a task": (
        "cvbench/models/probe.py",
        "import cvbench.tasks\n",
        "cvbench.models is not allowed to import cvbench.tasks",
    ),
    "the run layer imports bench": (
        "cvbench/run/probe.py",
        "import cvbench.bench\n",
        "cvbench.run is not allowed to import cvbench.bench",
    ),
    "metrics import data": (
        "cvbench/metrics/probe.py",
        "import cvbench.data\n",
        "cvbench.metrics is not allowed to import cvbench.data",
    ),
    "the store imports torch": (
        "cvbench/store/probe.py",
        "import torch\n",
        "cvbench.store is not allowed to import torch",
    ),
    "a cycle hidden in a function": (  # leaderboard imports tables
        "cvbench/bench/tables.py",
        "\n\ndef later():\n    from cvbench.bench import leaderboard\n",
        "No cycles are allowed in cvbench.bench",
    ),
    "a module outside the layers": (
        "cvbench/probe.py",
        "",
        "cvbench.probe",
    ),
}


@pytest.mark.parametrize("probe", PROBES)
def test_a_forbidden_import_breaks_a_contract(probe: str, tmp_path: Path) -> None:
    """A copy of the package with one forbidden import added fails, naming the import."""
    shutil.copytree(
        REPO / "cvbench", tmp_path / "cvbench", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path, text, message = PROBES[probe]
    with open(tmp_path / path, "a") as file:
        file.write(text)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout + result.stderr

"""cvbench as users install it: a wheel built from the checkout carries the config tree, and
installed into a fresh venv it gives a ``cvbench train`` that works from an empty directory
(and takes a user's own config folder with ``--config-dir``). The editable install of the
checkout finds its configs from any directory too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import CONF, REPO

# What the wheel is built from: the project's metadata and the package (setuptools takes
# the package data from pyproject.toml, not from what lies in the folder).
SOURCES = ("pyproject.toml", "README.md", "cvbench")
PURELIB = "import sysconfig; print(sysconfig.get_path('purelib'))"


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command with an environment that points at no checkout and no results store."""
    drop = ("PYTHONPATH", "PYTHONHOME", "CVBENCH_DB", "CVBENCH_ROOT", "CVBENCH_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONNOUSERSITE"] = "1"
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of a copy of the checkout's sources (the build writes ``build/`` and
    ``*.egg-info`` next to them, which must not land in the checkout)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    # No build isolation: the build backend is the venv's own setuptools (>= 77, which torch
    # requires; it builds wheels without the `wheel` package), so no package index is needed.
    run(
        sys.executable,
        *("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"),
        *("-w", dist, src),
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("cvbench-*.whl")
    return wheel


def fresh_venv(path: Path) -> Path:
    """A new venv whose own site-packages is empty, and its python.

    Its dependencies (torch and friends, 5 GB; pip too) are borrowed from the venv running
    the tests: they cannot be downloaded here, and a fresh install would take minutes. A plain
    path line in a ``.pth`` file appends that site-packages to ``sys.path`` without processing
    the ``.pth`` files inside it, so the checkout's editable install of cvbench (a finder
    installed by one of them) stays inactive: only the wheel's cvbench can be imported.
    """
    run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    python = path / "bin" / "python"
    purelib = Path(run(python, "-c", PURELIB, cwd=path).stdout.strip())
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (purelib / "borrowed-dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    return python


def test_wheel_holds_the_config_tree(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    yamls = {p.relative_to(REPO).as_posix() for p in CONF.rglob("*.yaml")}
    assert len(yamls) > 100
    assert sorted(yamls - names) == []
    assert {"cvbench/py.typed", "cvbench/conf/__init__.py"} <= names


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_trains_from_an_empty_directory(wheel: Path, tmp_path: Path) -> None:
    """``pip install <wheel>`` into a new venv, then ``cvbench train trainer.max_epochs=1`` in
    an empty directory trains the default experiment (digits, small CNN) into ./outputs."""
    python = fresh_venv(tmp_path / "venv")
    # --ignore-installed: the borrowed site-packages lists the editable cvbench; pip must
    # neither skip the wheel for it nor try to uninstall it.
    run(
        python,
        *("-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--quiet"),
        wheel,
        cwd=tmp_path,
    )
    site = Path(run(python, "-c", PURELIB, cwd=tmp_path).stdout.strip())
    where = "import cvbench.conf as c; print(c.__file__); print(c.CONF_DIR)"
    module, conf_dir = run(python, "-c", where, cwd=tmp_path).stdout.split()
    assert Path(module).is_relative_to(site) and Path(conf_dir) == site / "cvbench" / "conf"

    work = tmp_path / "work"
    work.mkdir()
    run(tmp_path / "venv" / "bin" / "cvbench", "train", "trainer.max_epochs=1", cwd=work)
    (run_dir,) = (work / "outputs" / "classification_digits").iterdir()
    assert {"config.yaml", "metrics.json", "environment.json"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train/num_images"] == 1257 and metrics["test/num_images"] == 360
    assert 0.0 <= metrics["test/top1_error"] < 90.0  # one epoch learns something
    assert (work / "outputs" / "cvbench.db").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["outputs"]

    # A user's own config folder joins the search path: an experiment of their own.
    own = tmp_path / "my_configs" / "experiment"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /model: classification/timm_resnet18\n"
        "run_name: mine\n"
    )
    job = run(
        tmp_path / "venv" / "bin" / "cvbench",
        *("train", "--config-dir", own.parent, "experiment=mine", "--cfg", "job"),
        cwd=work,
    ).stdout
    assert "run_name: mine" in job and "model_name: resnet18" in job


@pytest.mark.slow
def test_editable_install_finds_its_configs_from_any_directory(tmp_path: Path) -> None:
    """The venv running the tests has cvbench installed editable (``make install``)."""
    where = "import cvbench.conf as c; print(c.CONF_DIR)"
    assert Path(run(sys.executable, "-c", where, cwd=tmp_path).stdout.strip()) == CONF
    job = run(sys.executable, "-m", "cvbench", "train", "--cfg", "job", cwd=tmp_path).stdout
    assert "_target_: cvbench.models.small_cnn.SmallCNN" in job

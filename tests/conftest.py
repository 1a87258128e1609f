"""Compose the real Hydra config for tests: CPU, no workers, output and data in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

# Lightning adds a StreamHandler bound to the sys.stderr of the moment it is first imported.
# Imported here, that is pytest's session-wide capture; imported first inside a test using
# capsys, it would be that test's stream, closed afterwards, and every later Lightning log line
# would print a "--- Logging error ---" traceback into other tests' stderr.
import pytorch_lightning  # noqa: F401
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "cvbench" / "conf"
HELPERS = Path(__file__).resolve().parent / "helpers"


def options(group: str) -> list[str]:
    """Every option of a config group, as ``group=<option>`` takes it (``classification/small_cnn``
    for ``model``): the tests enumerate the tree, so a new YAML is tested without an edit here."""
    root = CONF / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


# Fast settings every composed test config gets; a test's own overrides come after them.
TEST_OVERRIDES = ("++callbacks.progress_bar=null", "++callbacks.model_summary=null")


@pytest.fixture(autouse=True)
def _own_results_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs record into the test's own store (tmp_path), never into one the environment
    names."""
    monkeypatch.delenv("CVBENCH_DB", raising=False)
    monkeypatch.delenv("CVBENCH_ROOT", raising=False)


def compose_config(
    config_name: str, overrides: Sequence[str], run_dir: Path, data_dir: Path
) -> DictConfig:
    """The config ``cvbench train|eval <overrides>`` would run, writing to ``run_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name,
            overrides=[
                *TEST_OVERRIDES,
                f"paths.output_dir={run_dir}",
                f"paths.data_dir={data_dir}",
                f"paths.results_db={run_dir.parent / 'cvbench.db'}",
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(*overrides, name="train", run="run")`` composes a config into tmp_path/run."""

    def make(*overrides: str, name: str = "train", run: str = "run") -> DictConfig:
        return compose_config(name, overrides, tmp_path / run, tmp_path / "data")

    return make


def eval_single_and_ddp(ckpt: Path, tmp_path: Path, *overrides: str) -> dict[str, dict]:
    """``cvbench eval`` of ``ckpt`` as one process and as two (``trainer=ddp_cpu``), into
    ``tmp_path/single`` and ``tmp_path/ddp``; each run's ``metrics.json`` by name."""
    results = {}
    for name, extra in (("single", ()), ("ddp", ("trainer=ddp_cpu",))):
        run_dir = tmp_path / name
        done = run_cli(
            "eval",
            f"ckpt_path={ckpt}",
            f"paths.data_dir={tmp_path / 'data'}",
            *overrides,
            *extra,
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = json.loads((run_dir / "metrics.json").read_text())
    return results


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``python -m cvbench <args>`` as a real process; output captured as text."""
    full_env = {**os.environ, "PYTHONPATH": str(HELPERS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cvbench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_in_process(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    """``cvbench <argv>`` in this process: exit status, stdout, stderr (``sys.argv`` and
    ``__main__``'s spec restored after)."""
    from cvbench.cli.main import main

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", sys.modules["__main__"].__spec__)
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def the_error_line(code: int, stderr: str) -> str:
    """The one ``error:`` line of a refused command (exit 1, no traceback)."""
    assert code == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def unshare_works() -> bool:
    """Whether this process may mount in a private mount namespace (root on Linux with
    ``unshare``): the tests that need a real read-only or full file system use one."""
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0

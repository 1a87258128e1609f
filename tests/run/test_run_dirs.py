"""Run directories: claimed atomically before Hydra writes anything, never shared, never written
over, never outside ``paths.log_dir``.

The collisions are made certain, not left to timing: the tests name the folders with Hydra's
``${now:...}`` resolver as the default does, with a format holding no time field
(``${now:pinned}`` is ``pinned`` at any time), as if every run started in the same second.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONF, HELPERS, run_cli
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cvbench.cli.claim import NOW, override_value
from cvbench.run.outputs import (
    RunDirectoryInUse,
    check_run_name,
    claim,
    claim_run_dir,
    claim_run_folder,
)
from cvbench.store.database import ResultsStore

QUICK = ("debug=limit", "callbacks.progress_bar=null")
PINNED_RUN = "hydra.run.dir=${paths.log_dir}/${run_name}/${now:pinned}"
PINNED_SWEEP = "hydra.sweep.dir=${paths.log_dir}/multirun/${run_name}/${now:pinned}"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- the claim itself ----------------------------------------------------------------------


def test_a_folder_is_claimed_once_and_a_held_one_is_left_as_it_is(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert claim(run) is None and (run / ".hydra").is_dir()
    assert claim(run) == ".hydra"
    old = tmp_path / "old"  # a run recorded before claims existed: results, no .hydra/
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    assert claim(old) == "checkpoints/last.ckpt" and not (old / ".hydra").exists()
    sweep = tmp_path / "sweep"
    assert claim(sweep, sweep=True) is None and (sweep / "multirun.yaml").is_file()
    assert claim(sweep, sweep=True) == "multirun.yaml"


def test_a_time_named_folder_that_is_taken_gives_the_next_free_one(tmp_path: Path) -> None:
    named = tmp_path / "2030-01-01_00-00-00"
    got = [claim_run_folder(named, key="hydra.run.dir", by_time=True) for _ in range(3)]
    assert [p.name for p in got] == [named.name, f"{named.name}_2", f"{named.name}_3"]


def test_a_folder_named_without_the_time_is_refused_when_taken(tmp_path: Path) -> None:
    named = tmp_path / "run"
    claim_run_folder(named, key="hydra.run.dir", by_time=False)
    before = snapshot(tmp_path)
    with pytest.raises(RunDirectoryInUse, match=r"^hydra.run.dir=.*/run already holds a run"):
        claim_run_folder(named, key="hydra.run.dir", by_time=False)
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _claim_after(barrier, named: str) -> str:
    barrier.wait()
    return claim_run_folder(Path(named), key="hydra.run.dir", by_time=True).name


def test_processes_claiming_one_folder_at_once_each_get_their_own(tmp_path: Path) -> None:
    """Eight processes released together claim one time-named folder: eight folders, each
    claimed by exactly one (however the OS schedules them)."""
    n = 8
    context = multiprocessing.get_context("fork")
    barrier = context.Manager().Barrier(n)
    with context.Pool(n) as pool:
        names = pool.starmap(_claim_after, [(barrier, str(tmp_path / "t"))] * n)
    assert sorted(names) == sorted(["t", *(f"t_{k}" for k in range(2, n + 1))])


def test_the_default_folders_are_named_by_the_time() -> None:
    """The default run and sweep folders use ``${now:...}``: taken, they get the next free
    name; so does a pinned ``${now:pinned}`` as these tests use it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert NOW in hydra["run"]["dir"] and NOW in hydra["sweep"]["dir"]
    assert list(hydra["callbacks"].values()) == [
        {"_target_": "cvbench.cli.claim.ClaimRunDirectory"}
    ]


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "a\\b", "/abs"])
def test_a_run_name_that_is_not_one_folder_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"^run_name=.* is not a folder name"):
        check_run_name(name)


@pytest.mark.parametrize("name", ["classification_digits", "a..b", "v1.2", "..hidden"])
def test_a_folder_name_is_a_run_name(name: str) -> None:
    check_run_name(name)


def test_results_left_by_a_run_are_refused_in_process(tmp_path: Path) -> None:
    """``record_run``'s own check (callers without the CLI): results refuse, ``.hydra/`` (the
    CLI's claim) does not."""
    (tmp_path / ".hydra").mkdir()
    claim_run_dir(tmp_path)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(RunDirectoryInUse, match="already holds a run .metrics.json."):
        claim_run_dir(tmp_path)


@pytest.mark.parametrize("path", ["/o/a b,c", "/o/it's", "/o/x\\y", "/o/${x}", "/o/[1,2]"])
def test_a_claimed_sweep_folder_reaches_the_jobs_as_it_is(path: str) -> None:
    """The override a sweep adds for its jobs gives back the folder, whatever it holds."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (override,) = OverridesParser.create().parse_overrides([f"k={override_value(path)}"])
    assert OmegaConf.create({"k": override.value()}).k == path


# --- the CLI -------------------------------------------------------------------------------


def start_train(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench", "train", *QUICK, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(HELPERS), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_runs_started_together_get_a_directory_each(tmp_path: Path) -> None:
    """Two `cvbench train` with the same run_name, started at once, in what the default would
    name the same folder: two run directories, each with its own config and metrics, and two
    records each pointing to its own."""
    procs = [start_train(tmp_path, PINNED_RUN, f"seed={seed}") for seed in (1, 2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr[-3000:]
    runs_dir = tmp_path / "outputs" / "classification_digits"
    assert sorted(p.name for p in runs_dir.iterdir()) == ["pinned", "pinned_2"]
    records = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert sorted(r.seed for r in records) == [1, 2]
    assert sorted(Path(r.run_dir) for r in records) == [runs_dir / "pinned", runs_dir / "pinned_2"]
    for record in records:
        run_dir = Path(record.run_dir)
        assert record.status == "completed"
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["seed"] == record.seed
        assert f"seed={record.seed}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert (
            yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["seed"] == record.seed
        )
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["test/top1_error"] == record.metrics["test/top1_error"]
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run `cvbench train` recorded in <tmp>/outputs/run."""
    root = tmp_path_factory.mktemp("recorded")
    done = run_cli("train", *QUICK, f"hydra.run.dir={root / 'outputs' / 'run'}", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "outputs" / "run"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_run_pointed_at_a_recorded_run_is_refused_before_writing(
    recorded_run: Path, command: str
) -> None:
    """`hydra.run.dir=<a recorded run>`: exit 1, one error line naming the key and the folder,
    and the run's files, Hydra's .hydra/*.yaml included, byte for byte as they were."""
    before = snapshot(recorded_run.parent)
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"} <= set(
        snapshot(recorded_run)
    )
    extra = [f"ckpt_path={recorded_run / 'checkpoints' / 'last.ckpt'}"] if command == "eval" else []
    done = run_cli(
        command, *QUICK, "seed=3", *extra, f"hydra.run.dir={recorded_run}", cwd=recorded_run.parent
    )
    assert done.returncode == 1
    assert snapshot(recorded_run.parent) == before
    assert error_lines(done.stderr) == [
        f"error: hydra.run.dir={recorded_run} already holds a run (.hydra); cvbench never writes "
        "over a recorded run. Choose another hydra.run.dir, or leave it unset."
    ]
    assert "Traceback" not in done.stderr
    (record,) = ResultsStore(recorded_run.parent / "cvbench.db").runs()  # no second record
    assert record.status == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../x", ".."])
def test_a_run_name_that_climbs_out_of_outputs_is_refused(tmp_path: Path, name: str) -> None:
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    done = run_cli("train", *QUICK, f"run_name={name}", cwd=cwd)
    assert done.returncode == 1
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"error: run_name={name} is not a folder name")
    assert "Traceback" not in done.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/b"]


@pytest.mark.slow
def test_a_multirun_whose_sweep_folder_is_taken_gets_its_own(tmp_path: Path) -> None:
    """An earlier sweep holds the folder this one's time names: this sweep and its jobs take
    `<folder>_2`; the earlier sweep's files are left byte for byte."""
    sweeps = tmp_path / "outputs" / "multirun" / "classification_digits"
    earlier = sweeps / "pinned"
    (earlier / "0" / ".hydra").mkdir(parents=True)
    (earlier / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    (earlier / "0" / ".hydra" / "config.yaml").write_text("seed: 7\n")
    (earlier / "0" / "metrics.json").write_text('{"test/top1_error": 50.0}\n')
    before = snapshot(earlier)
    done = run_cli("train", "-m", "seed=1", *QUICK, PINNED_SWEEP, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert snapshot(earlier) == before
    assert sorted(p.name for p in sweeps.iterdir()) == ["pinned", "pinned_2"]
    (record,) = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert Path(record.run_dir) == sweeps / "pinned_2" / "0" and record.status == "completed"
    assert (sweeps / "pinned_2" / "0" / "metrics.json").is_file()
    saved = yaml.safe_load((sweeps / "pinned_2" / "multirun.yaml").read_text())
    assert saved["hydra"]["sweep"]["dir"] == str(sweeps.relative_to(tmp_path) / "pinned_2")

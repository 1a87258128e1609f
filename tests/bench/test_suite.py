"""Suites: planning from YAML, and `cvbench bench` running only what the store lacks, also
after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONF, HELPERS, run_cli

from cvbench.bench.suite import hash_runs, plan_suite, suite_path
from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

# Hydra's list syntax: each override quoted, since it holds a "=".
QUICK = '["trainer.max_epochs=1","trainer.limit_train_batches=3","trainer.limit_val_batches=2"]'


def write_suite(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_suite_expands_to_experiments_x_grid_x_seeds(tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path / "s.yaml",
        """
seeds: [0, 1]
overrides: [trainer.max_epochs=1]
runs:
  - experiment: classification/digits_small_cnn
    grid: {optim.lr: [0.001, 0.01]}
  - experiment: segmentation/shapes_unet
    seeds: [5]
    overrides: [data.batch_size=4]
""",
    )
    runs = plan_suite(suite, overrides=["trainer=cpu"])
    digits, unet = "classification/digits_small_cnn", "segmentation/shapes_unet"
    assert [(r.experiment, r.seed, r.overrides[1:-1]) for r in runs] == [
        (digits, 0, ["optim.lr=0.001"]),
        (digits, 1, ["optim.lr=0.001"]),
        (digits, 0, ["optim.lr=0.01"]),
        (digits, 1, ["optim.lr=0.01"]),
        (unet, 5, ["data.batch_size=4"]),
    ]
    assert all(r.overrides[0] == "trainer.max_epochs=1" for r in runs)
    assert all(r.overrides[-1] == "trainer=cpu" for r in runs)
    assert runs[0].label == "classification/digits_small_cnn seed=0 optim.lr=0.001"
    assert [r.seed for r in plan_suite(suite, seeds=[3])] == [3, 3, 3]
    hash_runs(runs, CONF)
    assert len({r.config_hash for r in runs}) == 5  # seed and lr both change the hash


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runs:\n  - seeds: [1]\n", r"runs\[0\] needs an `experiment:`"),
        ("runs:\n  - experiment: a\n    seed: 1\n", r"runs\[0\]: unknown keys \['seed'\]"),
        ("run:\n  - experiment: a\n", r"unknown keys \['run'\]"),
        ("runs:\n  - experiment: a\n    seeds: 3\n", r"runs\[0\]: seeds must be a list"),
    ],
)
def test_a_wrong_suite_is_refused_naming_the_file_and_run(tmp_path, text, message) -> None:
    suite = write_suite(tmp_path / "bad.yaml", text)
    with pytest.raises(ValueError, match=f"{suite}.*{message}|{message}"):
        plan_suite(suite)


def test_unknown_suite_lists_the_suites_and_a_bad_experiment_fails_before_running(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"suite=nope: no file .*suites in conf/bench/: .*smoke"
    ):
        suite_path("nope", CONF)
    suite = write_suite(tmp_path / "s.yaml", "runs:\n  - experiment: classification/nope\n")
    with pytest.raises(ValueError, match="`classification/nope seed=0` does not compose"):
        hash_runs(plan_suite(suite), CONF)


def test_the_smoke_suite_composes_every_run() -> None:
    runs = plan_suite(suite_path("smoke", CONF))
    hash_runs(runs, CONF)
    tasks = {r.experiment.split("/")[0] for r in runs}
    assert tasks == {p.name for p in (CONF / "experiment").iterdir()} - {"repro"}
    assert {r.seed for r in runs} == {0, 1} and len({r.config_hash for r in runs}) == len(runs)


def statuses(db: Path) -> list[str]:
    return [r.status for r in ResultsStore(db).runs(reap=False)] if db.exists() else []


DIVERGING = "[task.module.loss._target_=diverging.DivergingLoss, +task.module.loss.finite_calls=2]"


@pytest.mark.slow
def test_suite_goes_on_past_a_failed_run_and_after_ctrl_c_runs_only_the_rest(
    tmp_path: Path,
) -> None:
    """Three runs: seed 0, a run whose loss turns NaN, seed 1. The failed run does not stop
    the suite; Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during
    seed 1 records it failed; the next `cvbench bench` skips seed 0 and runs the other two."""
    suite = write_suite(
        tmp_path / "three.yaml",
        "seeds: [0]\n"
        "overrides: [callbacks.progress_bar=null, trainer.num_sanity_val_steps=0,"
        " trainer.limit_train_batches=3, trainer.limit_val_batches=2]\n"
        "runs:\n"
        "  - experiment: classification/digits_small_cnn\n"
        "    overrides: [trainer.max_epochs=1]\n"
        "  - experiment: classification/digits_small_cnn\n"
        f"    overrides: {DIVERGING}\n"
        "  - experiment: classification/digits_small_cnn\n"
        "    seeds: [1]\n"
        "    overrides: [trainer.max_epochs=10]  # long enough to be interrupted\n",
    )
    command = [sys.executable, "-m", "cvbench", "bench", f"suite={suite}"]
    env = {**os.environ, "PYTHONPATH": str(HELPERS)}
    db = tmp_path / "outputs" / "cvbench.db"
    # Its own process group, with SIGINT handled (a background shell, as CI may run in, starts
    # its children with SIGINT ignored).
    bench = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while statuses(db) != ["completed", "failed", "running"]:
            assert bench.poll() is None, bench.stdout.read()[-3000:]
            assert time.monotonic() < deadline, (
                f"the suite never reached its third run: {statuses(db)}"
            )
            time.sleep(0.2)
        os.killpg(bench.pid, signal.SIGINT)
        output = bench.communicate(timeout=120)[0]
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
    assert bench.returncode == 130, output[-3000:]
    assert "the same command runs the rest" in output
    first = ResultsStore(db).runs()
    assert [(r.seed, r.status) for r in first] == [(0, "completed"), (0, "failed"), (1, "failed")]
    assert first[1].error.startswith("NonFiniteLossError") and first[2].error.startswith("interr")

    again = run_cli("bench", f"suite={suite}", cwd=tmp_path)
    out = again.stdout + again.stderr
    assert again.returncode == 1, out[-3000:]  # the NaN run failed again
    assert "3 runs, 1 already completed in" in out and "2 to run" in out
    runs = ResultsStore(db).runs()
    assert [(r.seed, r.status) for r in runs[3:]] == [(0, "failed"), (1, "completed")]
    assert runs[0].run_id == first[0].run_id  # the completed run was not run again
    # Seeds 0 and 1 ran different epochs: two rows, told apart by that override alone.
    assert "`classification/digits_small_cnn` `trainer.max_epochs=1` |" in out
    assert "`classification/digits_small_cnn` `trainer.max_epochs=10` |" in out

    board = run_cli("leaderboard", f"db={db}", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert "classification · digits" in board.stdout
    assert "Left out: 3 failed run(s)." in board.stdout


def test_leaderboard_of_a_suite_keeps_its_configurations(tmp_path: Path, capsys) -> None:
    from cvbench.cli import leaderboard

    suite = write_suite(
        tmp_path / "s.yaml",
        "seeds: [0, 1]\nruns:\n  - experiment: classification/digits_small_cnn\n",
    )
    planned = plan_suite(suite)
    hash_runs(planned, CONF)
    db = tmp_path / "cvbench.db"
    with ResultsStore(db) as store:
        for run_id, seed, config_hash in [
            ("in0", 0, planned[0].config_hash),
            ("in1", 1, planned[1].config_hash),
            ("other", 2, "0000000000000000"),  # the same experiment, not in the suite
        ]:
            store.start(
                RunRecord(run_id=run_id, run_name="digits_small_cnn", seed=seed,
                          experiment="classification/digits_small_cnn", task="classification",
                          dataset="digits", primary_metric="test/top1_error", direction="min",
                          config_hash=config_hash)
            )  # fmt: skip
            store.end(run_id, "completed", metrics={"test/top1_error": 1.0 + seed})
    leaderboard.main([f"db={db}", f"suite={suite}"])
    suite_only = capsys.readouterr().out
    assert "| 1.50 ± 0.71 |" in suite_only and "| 2 |" in suite_only  # seeds 0 and 1: n = 2
    leaderboard.main([f"db={db}"])
    assert "| 2.00 ± 1.00 |" in capsys.readouterr().out  # all three runs

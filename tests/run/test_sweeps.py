"""Sweeps: every trial lands in the results store, a failed trial does not stop the sweep,
and the cluster launcher composes for SLURM and runs through submitit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CONF, run_cli
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from cvbench.store.database import ResultsStore

QUICK = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "trainer.num_sanity_val_steps=0",
    "callbacks.progress_bar=null",
)


@pytest.mark.slow
def test_optuna_search_records_every_trial_and_goes_on_past_a_failed_one(tmp_path: Path) -> None:
    """The digits search with a loss that turns NaN after 2 calls in some trials (seeded TPE):
    those trials are recorded failed, the others complete, the search runs all its trials, and
    Optuna's best is the best completed trial's objective."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "train",
        "hparams_search=digits_optuna",
        "hydra.sweeper.n_trials=4",
        "task.module.loss._target_=diverging.DivergingLoss",
        "+task.module.loss.finite_calls=choice(1000,2)",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert len(runs) == 4
    calls = {r.run_id: next(o for o in r.overrides if "finite_calls" in o) for r in runs}
    failed = [r for r in runs if calls[r.run_id].endswith("=2")]
    completed = [r for r in runs if calls[r.run_id].endswith("=1000")]
    assert failed and completed  # the seeded search tries both
    assert all(r.status == "failed" and r.error.startswith("NonFiniteLossError") for r in failed)
    assert all(r.status == "completed" for r in completed)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == min(r.metrics["val/top1_error_best"] for r in completed)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_grid_multirun_records_a_failed_job_and_runs_the_next(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = run_cli(
        "train",
        "-m",
        "task.module.loss._target_=diverging.DivergingLoss",
        "+task.module.loss.finite_calls=2,1000",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode != 0  # Hydra's grid reports the failed job at the end
    assert "error: training loss is nan at epoch 0" in done.stderr
    runs = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert [(r.status, Path(r.run_dir).name) for r in runs] == [("failed", "0"), ("completed", "1")]
    assert (sweep / "1" / "metrics.json").is_file()


def compose_with_hydra(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_optuna_search_composes_with_its_objective_and_space() -> None:
    cfg = compose_with_hydra(
        "experiment=classification/digits_small_cnn", "hparams_search=digits_optuna"
    )
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.optimized_metric == "val/top1_error_best" and sweeper.direction == "minimize"
    assert set(sweeper.params) == {"optim.lr", "optim.weight_decay", "model.width"}
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.max_failure_rate == 1.0


def test_slurm_launcher_takes_its_tasks_from_the_trainer() -> None:
    cfg = compose_with_hydra(
        "hydra/launcher=slurm",
        "trainer=ddp",
        "trainer.devices=4",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
    )
    launcher = cfg.hydra.launcher
    assert (
        launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    )
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu" and launcher.timeout_min == 1440


@pytest.mark.slow
def test_submitit_launcher_runs_trials_as_jobs_with_one_record_each(tmp_path: Path) -> None:
    """The launcher `hydra/launcher=slurm` builds on, with submitit's local executor: the
    trials run as separate job processes and each is one run and one record."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        "seed=1,2",
        "debug=limit",
        "callbacks.progress_bar=null",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert sorted((r.seed, r.status, Path(r.run_dir).name) for r in runs) == [
        (1, "completed", "0"),
        (2, "completed", "1"),
    ]
    assert all((sweep / job / "metrics.json").is_file() for job in ("0", "1"))

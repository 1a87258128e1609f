"""The life of a recorded run: claim its directory, build, work, close loggers, write results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from cvbench.files import write_json, write_text
from cvbench.run.build import build_datamodule, build_task, build_trainer, close_loggers, log_config
from cvbench.run.config_types import check_config_types
from cvbench.run.env import environment_record
from cvbench.run.outputs import claim_run_dir, flat_metrics
from cvbench.run.stats import RunStats, parameter_count, peak_memory_mb
from cvbench.store.database import ResultsStore, store_from_config
from cvbench.store.record import hydra_identity, new_record
from cvbench.store.recorded import RecordedRun

Work = Callable[[pl.Trainer, pl.LightningModule, pl.LightningDataModule], dict[str, float]]


def stage_metrics(task: pl.LightningModule, stage: str) -> dict[str, float]:
    """The ``{stage}/...`` metrics the task computed last, in float64."""
    return flat_metrics(task.results.get(stage, {}))


def open_results(cfg: DictConfig) -> ResultsStore | None:
    """The results store ``paths.results_db`` for the main process; None on the other
    processes and when ``paths.results_db`` is null."""
    return store_from_config(cfg) if rank_zero_only.rank == 0 else None


def run_costs(trainer: pl.Trainer | None, task: pl.LightningModule | None) -> dict[str, float]:
    """Throughput, FLOPs, parameters and peak memory as far as the run got."""
    costs: dict[str, float] = {}
    if task is not None:  # every network of the task (a GAN's generator and discriminator)
        costs["params"] = sum(parameter_count(getattr(task, n)) for n in task.network_names)
        costs["peak_memory_mb"] = peak_memory_mb(task.device)
    stats = [c for c in (trainer.callbacks if trainer else []) if isinstance(c, RunStats)]
    if stats:
        costs["train_images_per_s"] = stats[0].train_images_per_s
        costs["flops_per_image"] = stats[0].flops_per_image
    return costs


def record_run(
    cfg: DictConfig,
    work: Work,
    *,
    store_config: bool,
    kind: str = "train",
    identity: dict | None = None,
) -> dict[str, float]:
    """Run ``work`` on the objects ``cfg`` builds and record it in ``cfg.paths.output_dir``
    and in the results store ``cfg.paths.results_db``.

    The config's value types are checked first (:func:`check_config_types`): a wrong-typed
    value is refused before anything is built or written. Writes
    ``config.yaml`` and ``environment.json`` before the work and ``metrics.json`` after it
    (main process only); a directory that already holds a run is refused first, and a
    failed run writes no ``metrics.json``. The store's record is ``running`` from the start
    and ends ``completed`` or ``failed`` (with the error, Ctrl-C included).

    Args:
        cfg: the run's config.
        work: does the training and/or testing and returns the final metrics.
        store_config: write the config into every checkpoint (training runs).
        kind: "train" or "eval", as recorded.
        identity: experiment, model and overrides of the run (default: Hydra's choices).

    Raises:
        ConfigTypeError: a value of ``cfg`` has the wrong type (a ValueError naming the key).
    """
    check_config_types(cfg)
    run_dir = Path(cfg.paths.output_dir)
    identity = hydra_identity() if identity is None else identity
    store = None
    if rank_zero_only.rank == 0:
        claim_run_dir(run_dir)
        store = open_results(cfg)
    env = environment_record() if rank_zero_only.rank == 0 else {}
    recorded = RecordedRun(store, new_record(cfg, kind=kind, identity=identity, env=env))
    trainer = task = None
    try:
        if cfg.get("seed") is not None:
            pl.seed_everything(cfg.seed, workers=True)
        datamodule = build_datamodule(cfg)
        task = build_task(cfg)
        trainer = build_trainer(cfg, store_config=store_config, identity=identity)
        if trainer.is_global_zero:
            write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
            write_json(run_dir / "environment.json", env)
        log_config(trainer, cfg)
        metrics = work_with_loggers(work, trainer, task, datamodule)
        if trainer.is_global_zero:
            write_json(run_dir / "metrics.json", metrics)
    except BaseException as err:
        recorded.failed(err, **run_costs(trainer, task))
        raise
    else:
        recorded.completed(metrics, **run_costs(trainer, task))
    finally:
        if store is not None:
            store.close()
    return metrics


def work_with_loggers(
    work: Work, trainer: pl.Trainer, task: pl.LightningModule, datamodule: pl.LightningDataModule
) -> dict[str, float]:
    """``work``, then the loggers closed (as failed when it raised)."""
    failed = True
    try:
        metrics = work(trainer, task, datamodule)
        failed = False
    finally:
        close_loggers(trainer, failed=failed)
    return metrics

"""The life of a recorded run: claim its directory, build, work, close loggers, write results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from cvbench.run.build import build_task, build_trainer, close_loggers, log_config
from cvbench.run.env import environment_record
from cvbench.run.outputs import claim_run_dir, flat_metrics, write_json, write_text

Work = Callable[[pl.Trainer, pl.LightningModule, pl.LightningDataModule], dict[str, float]]


def stage_metrics(task: pl.LightningModule, stage: str) -> dict[str, float]:
    """The ``{stage}/...`` metrics the task computed last, in float64."""
    return flat_metrics(task.results.get(stage, {}))


def record_run(cfg: DictConfig, work: Work, *, store_config: bool) -> dict[str, float]:
    """Run ``work`` on the objects ``cfg`` builds and record it in ``cfg.paths.output_dir``.

    Writes ``config.yaml`` and ``environment.json`` before the work and ``metrics.json`` after
    it (main process only); a directory that already holds a run is refused first, and a
    failed run writes no ``metrics.json``.

    Args:
        cfg: the run's config.
        work: does the training and/or testing and returns the final metrics.
        store_config: write the config into every checkpoint (training runs).
    """
    run_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:
        claim_run_dir(run_dir)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    task = build_task(cfg)
    trainer = build_trainer(cfg, store_config=store_config)
    if trainer.is_global_zero:
        write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        write_json(run_dir / "environment.json", environment_record())
    log_config(trainer, cfg)

    failed = True
    try:
        metrics = work(trainer, task, datamodule)
        failed = False
    finally:
        close_loggers(trainer, failed=failed)
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
    return metrics

"""``run_train(cfg)``: fit, test the best checkpoint, and record the run in its directory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from cvbench.run.build import build_task, build_trainer, close_loggers, log_config
from cvbench.run.env import environment_record
from cvbench.run.outputs import claim_run_dir, flat_metrics, write_json, write_text

log = logging.getLogger(__name__)


def stage_metrics(task: pl.LightningModule, stage: str) -> dict[str, float]:
    """The ``{stage}/...`` metrics the task computed last, in float64."""
    return flat_metrics(task.results.get(stage, {}))


def fit_and_test(
    cfg: DictConfig,
    trainer: pl.Trainer,
    task: pl.LightningModule,
    datamodule: pl.LightningDataModule,
) -> dict[str, float]:
    """Fit (if ``cfg.train``), then test the best checkpoint (if ``cfg.test``)."""
    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics |= stage_metrics(task, "train") | stage_metrics(task, "val")
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None and cfg.get("train", True) and not trainer.fast_dev_run:
            log.warning("no best checkpoint was saved: testing the last weights")
        trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False)
        metrics |= stage_metrics(task, "test")
    return metrics


def run_train(cfg: DictConfig) -> dict[str, float]:
    """Train and test as ``cfg`` says; write config.yaml, environment.json, metrics.json.

    Args:
        cfg: the composed config of ``conf/train.yaml``.

    Returns:
        the final metrics: last epoch's ``train/...`` and ``val/...``, and ``test/...`` of the
        best checkpoint (of the last weights under ``trainer.fast_dev_run``).
    """
    run_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:
        claim_run_dir(run_dir)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    if trainer.is_global_zero:
        write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        write_json(run_dir / "environment.json", environment_record())
    log_config(trainer, cfg)

    failed = True
    try:
        metrics = fit_and_test(cfg, trainer, task, datamodule)
        failed = False
    finally:
        close_loggers(trainer, failed=failed)
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
    return metrics

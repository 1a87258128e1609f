"""``run_train(cfg)``: fit, test the best checkpoint, and record the run in its directory."""

from __future__ import annotations

import logging
from functools import partial

import pytorch_lightning as pl
from omegaconf import DictConfig

from cvbench.run.record import record_run, stage_metrics

log = logging.getLogger(__name__)


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
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None:  # what checkpoint selection saw: a sweep's natural objective
            metrics[f"{cfg.task.monitor}_best"] = float(best)
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
        the final metrics: last epoch's ``train/...`` and ``val/...``, the best value of the
        monitored metric over epochs (``val/top1_error_best``), and ``test/...`` of the best
        checkpoint (of the last weights under ``trainer.fast_dev_run``).
    """
    return record_run(cfg, partial(fit_and_test, cfg), store_config=True)

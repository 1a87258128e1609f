"""``run_train(cfg)``: fit, test the best checkpoint, and record the run in its directory.

A checkpoint to resume from (``ckpt_path=``) is read as data before anything is built
(:func:`cvbench.run.checkpoints.read_checkpoint`): a truncated file or one with pickled
objects is refused with one line naming it, and Lightning's own load is ``weights_only``.
"""

from __future__ import annotations

import logging
import pickle
from functools import partial

import pytorch_lightning as pl
from omegaconf import DictConfig

from cvbench.run.checkpoints import is_lightning_name, read_checkpoint, refused
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
        resume_from = cfg.get("ckpt_path")
        try:
            trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        except pickle.UnpicklingError as err:  # a URL Lightning downloads: not read before
            raise refused(resume_from, err) from None
        metrics |= stage_metrics(task, "train") | stage_metrics(task, "val")
        best = getattr(trainer.checkpoint_callback, "best_model_score", None)
        if best is not None:  # what checkpoint selection saw: a sweep's natural objective
            metrics[f"{cfg.task.monitor}_best"] = float(best)
    if cfg.get("test", True):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None and cfg.get("train", True) and not trainer.fast_dev_run:
            log.warning("no best checkpoint was saved: testing the last weights")
        trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
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
    check_resume_checkpoint(cfg)
    return record_run(cfg, partial(fit_and_test, cfg), store_config=True)


def check_resume_checkpoint(cfg: DictConfig) -> None:
    """Read ``cfg.ckpt_path`` (a file to resume from) safely before the run starts.

    Raises:
        FileNotFoundError: no such file.
        ValueError: it is truncated or corrupt, or holds pickled objects.
    """
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None or not cfg.get("train", True) or is_lightning_name(ckpt_path):
        return  # Lightning's names and URLs: it finds and loads them itself (weights_only)
    read_checkpoint(ckpt_path)

"""``run_eval(cfg, overrides)``: rebuild a run from the config in its checkpoint and test it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from cvbench.run.record import record_run, stage_metrics

# Always this run's own, never the stored run's: where it writes and what it logs to.
OWN_KEYS = ("paths", "logger", "callbacks", "ckpt_path", "run_name", "run_id")


def stored_run(ckpt_path: str | Path) -> tuple[DictConfig, dict]:
    """The config a cvbench checkpoint carries (with its interpolations), and what the
    results store identified its training run by (experiment, model, overrides).

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: the checkpoint was not written by ``cvbench train``.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if "cvbench" not in checkpoint:
        raise ValueError(
            f"ckpt_path={path} holds no cvbench config (key 'cvbench'): it was not written by "
            f"`cvbench train`, so the run cannot be rebuilt from it"
        )
    stored = checkpoint["cvbench"]
    return OmegaConf.create(stored["config"]), dict(stored.get("identity", {}))


def overridden_keys(overrides: list[str]) -> list[str]:
    """Config keys that command-line overrides set (``trainer=ddp_cpu`` -> ``trainer``)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.key_or_group for o in parsed if not o.key_or_group.startswith("hydra")]


def merge_for_eval(stored: DictConfig, current: DictConfig, overrides: list[str]) -> DictConfig:
    """The stored run's config; this run's own keys and every overridden key from ``current``."""
    merged = stored.copy()
    OmegaConf.set_struct(merged, False)
    for key in dict.fromkeys([*OWN_KEYS, *overridden_keys(overrides)]):
        value = OmegaConf.select(current, key, throw_on_missing=False)
        OmegaConf.update(merged, key, value, merge=False, force_add=True)
    return merged


def test_checkpoint(
    ckpt_path: str,
    trainer: pl.Trainer,
    task: pl.LightningModule,
    datamodule: pl.LightningDataModule,
) -> dict[str, float]:
    """Load the weights of ``ckpt_path`` and test them; the ``test/...`` metrics."""
    trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    return stage_metrics(task, "test")


def run_eval(cfg: DictConfig, overrides: list[str]) -> dict[str, float]:
    """Test the checkpoint ``cfg.ckpt_path``; write config.yaml, environment.json, metrics.json.

    Args:
        cfg: the composed config of ``conf/eval.yaml``.
        overrides: the command-line overrides that composed it.

    Returns:
        the ``test/...`` metrics.
    """
    stored, identity = stored_run(cfg.ckpt_path)
    cfg = merge_for_eval(stored, cfg, overrides)
    identity = {**identity, "overrides": overrides}
    return record_run(
        cfg,
        partial(test_checkpoint, cfg.ckpt_path),
        store_config=False,
        kind="eval",
        identity=identity,
    )

"""``run_eval(cfg, overrides)``: rebuild a run from the config in its checkpoint and test it.

The checkpoint is untrusted input: it is read without unpickling code
(:mod:`cvbench.run.checkpoints`), and its config builds only what the installed config tree
builds (:mod:`cvbench.run.stored_config`), checked before anything is built.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.record import record_run, stage_metrics
from cvbench.run.stored_config import (
    check_stored_config,
    command_line_config_dirs,
    trusted_targets,
)

# Always this run's own, never the stored run's: where it writes and what it logs to.
OWN_KEYS = ("paths", "logger", "callbacks", "ckpt_path", "run_name", "run_id")


def stored_run(ckpt_path: str | Path) -> tuple[DictConfig, dict]:
    """The config a cvbench checkpoint carries (with its interpolations), and what the
    results store identified its training run by (experiment, model, overrides).

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: the checkpoint is truncated or corrupt, holds pickled objects, or was not
            written by ``cvbench train``.
    """
    path = Path(ckpt_path)
    return stored_config_of(read_checkpoint(path), path)


def stored_config_of(checkpoint: dict, path: Path) -> tuple[DictConfig, dict]:
    """:func:`stored_run` of a checkpoint already read (safely) from ``path``."""
    stored = checkpoint.get("cvbench")
    if stored is None:
        raise ValueError(
            f"ckpt_path={path} holds no cvbench config (key 'cvbench'): it was not written by "
            f"`cvbench train`, so the run cannot be rebuilt from it"
        )
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        raise ValueError(
            f"ckpt_path={path}: its 'cvbench' entry holds no config mapping (key 'config'): "
            f"it was not written by `cvbench train`"
        )
    try:
        config = OmegaConf.create(stored["config"])
    except OmegaConfBaseException as err:  # values that are no config values (a tensor)
        first = str(err).splitlines()[0]
        raise ValueError(f"ckpt_path={path}: its stored config is not a config: {first}") from None
    identity = stored.get("identity")
    return config, dict(identity if isinstance(identity, dict) else {})


def overridden_keys(overrides: list[str]) -> list[str]:
    """Config keys that command-line overrides set (``trainer=ddp_cpu`` -> ``trainer``)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [o.key_or_group for o in parsed if not o.key_or_group.startswith("hydra")]


def own_keys(overrides: list[str]) -> list[str]:
    """Keys whose values are this run's own, never the checkpoint's: :data:`OWN_KEYS` and
    every key the command line overrides."""
    return list(dict.fromkeys([*OWN_KEYS, *overridden_keys(overrides)]))


def merge_for_eval(stored: DictConfig, current: DictConfig, overrides: list[str]) -> DictConfig:
    """The stored run's config; this run's own keys and every overridden key from ``current``."""
    merged = stored.copy()
    OmegaConf.set_struct(merged, False)
    for key in own_keys(overrides):
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
    trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True)
    return stage_metrics(task, "test")


def run_eval(
    cfg: DictConfig, overrides: list[str], config_dirs: list[Path] | None = None
) -> dict[str, float]:
    """Test the checkpoint ``cfg.ckpt_path``; write config.yaml, environment.json, metrics.json.

    Args:
        cfg: the composed config of ``conf/eval.yaml``.
        overrides: the command-line overrides that composed it.
        config_dirs: config folders the user named (``--config-dir``, ``hydra.searchpath``),
            whose targets the checkpoint's config may build besides the installed tree's;
            by default those of the running Hydra app.

    Returns:
        the ``test/...`` metrics.

    Raises:
        ValueError: the checkpoint cannot be read safely, or its config names a target (or
            calls a resolver) that the installed config tree does not; nothing is built then.
    """
    stored, identity = stored_run(cfg.ckpt_path)
    cfg = merge_for_eval(stored, cfg, overrides)
    dirs = command_line_config_dirs() if config_dirs is None else config_dirs
    check_stored_config(
        cfg, ckpt_path=cfg.ckpt_path, trusted=trusted_targets(dirs), own_keys=own_keys(overrides)
    )
    identity = {**identity, "overrides": overrides}
    return record_run(
        cfg,
        partial(test_checkpoint, cfg.ckpt_path),
        store_config=False,
        kind="eval",
        identity=identity,
    )

"""Build a run's objects from its config: datamodule, task, callbacks, loggers, trainer."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cvbench.conf import CONTRACT_KEY, TARGET_KEY
from cvbench.run.callbacks import ConfigInCheckpoint
from cvbench.run.checkpoint_io import AtomicCheckpointIO
from cvbench.run.resume import ExactResume
from cvbench.run.stats import RunStats
from cvbench.tasks.base import SINGLE_NETWORK
from cvbench.tasks.optimization import Optimization


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping (callbacks, loggers); None skipped."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None]


def build_component(node: DictConfig) -> Any:
    """Instantiate a model or data node, without its ``contract:`` description."""
    if CONTRACT_KEY not in node:
        return instantiate(node)
    # Resolved while the node is still attached to the whole config (``${data.num_classes}``).
    plain = OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    del plain[CONTRACT_KEY]
    return instantiate(plain)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The run's datamodule from ``cfg.data``."""
    return build_component(cfg.data)


def build_model(cfg: DictConfig) -> Any:
    """The run's network from ``cfg.model``."""
    return build_component(cfg.model)


def build_networks(cfg: DictConfig) -> dict[str, Any]:
    """The run's networks by name: ``{"net": ...}`` when ``cfg.model`` is one network (it has
    a ``_target_``), else one per entry of ``cfg.model`` (``generator``, ``discriminator``)."""
    if TARGET_KEY in cfg.model:
        return {SINGLE_NETWORK: build_model(cfg)}
    return {
        str(name): build_component(node)
        for name, node in cfg.model.items()
        if name != CONTRACT_KEY  # the mapping's description for its contract test
    }


def _per_network(node: DictConfig | None, shared: bool, key: str, names: list[str]) -> dict:
    """``node`` for every network when it is ``shared``, else its entry of each name."""
    if shared:
        return dict.fromkeys(names, node)
    if sorted(node) != sorted(names):
        raise ValueError(
            f"{key} names {sorted(node)} but model has the networks {sorted(names)}: give {key} "
            f"one entry per network, or one {key} for all"
        )
    return {name: node[name] for name in names}


def build_optimization(cfg: DictConfig, names: list[str]) -> dict[str, Optimization]:
    """Each network's optimizer and schedule. ``cfg.optim`` (a node with a ``_target_``) and
    ``cfg.sched`` (a node with ``scheduler`` and ``interval``) serve every network; with
    several networks either may instead map each network's name to its own."""
    sched = cfg.get("sched") or OmegaConf.create({})
    optims = _per_network(cfg.optim, TARGET_KEY in cfg.optim, "optim", names)
    scheds = _per_network(sched, not sched or "scheduler" in sched, "sched", names)
    optimization = {}
    for name in names:
        scheduler = scheds[name].get("scheduler")
        optimization[name] = Optimization(
            optimizer=instantiate(optims[name]),
            scheduler=instantiate(scheduler) if scheduler is not None else None,
            interval=scheds[name].get("interval", "epoch"),
        )
    return optimization


def build_task(cfg: DictConfig) -> pl.LightningModule:
    """The task's LightningModule (``cfg.task.module``, a partial) with its networks, their
    optimization and its declared metrics."""
    module = instantiate(cfg.task.module)  # before the networks: the same RNG state as ever
    nets = build_networks(cfg)
    return module(nets=nets, optimization=build_optimization(cfg, list(nets)))


def build_trainer(
    cfg: DictConfig, *, store_config: bool = True, identity: dict | None = None
) -> pl.Trainer:
    """The Lightning trainer with the config's callbacks (the group's and the task's), the
    run's cost measurements, what a resume needs to repeat the uninterrupted run (random
    states, best-checkpoint tracking), and the loggers.

    Args:
        cfg: the run's config.
        store_config: add the callback that writes the config (and ``identity``: experiment,
            model, overrides) into every checkpoint.
        identity: what the results store identifies the run by.
    """
    callbacks = instantiate_all(cfg.get("callbacks")) + instantiate_all(cfg.task.get("callbacks"))
    callbacks += [RunStats(), ExactResume()]
    if store_config:
        callbacks.append(
            ConfigInCheckpoint(
                raw=OmegaConf.to_container(cfg, resolve=False),
                resolved=OmegaConf.to_container(cfg, resolve=True),
                identity=identity or {},
            )
        )
    loggers = instantiate_all(cfg.get("logger"))
    # Checkpoints are written whole or not at all (a full disk leaves no truncated file),
    # unless the config brings its own plugins.
    plugins = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **plugins)


def log_config(trainer: pl.Trainer, cfg: DictConfig) -> None:
    """Send the resolved config to every logger as hyperparameters."""
    params = OmegaConf.to_container(cfg, resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(params)


def close_loggers(trainer: pl.Trainer, *, failed: bool) -> None:
    """End the runs of loggers that stay open after training (W&B), so each run is complete
    on disk and the next run in the same process (a multirun) starts a new one."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=1 if failed else 0)

"""Exact resume: a run resumed from an end-of-epoch checkpoint ends where the uninterrupted
run ends, bit for bit on the CPU.

Lightning restores the weights, optimizers, schedulers, loops and callback states, but not the
random number generators, and its ``ModelCheckpoint`` forgets the best checkpoints when the
resumed run writes into another directory (cvbench gives every run its own). :class:`ExactResume`
adds both:

- Random states: Python's ``random``, NumPy's global generator, torch's CPU generator and the
  current CUDA device's, written into every checkpoint as they are when it is saved (the end
  of an epoch, after validation) and restored as Lightning loads the checkpoint to resume.
  Nothing draws from them in between: in the uninterrupted run the next draw is the next
  epoch's training DataLoader iterator; in the resumed run the sanity check runs under
  Lightning's ``isolate_rng`` and the first draw is that same iterator's (made in Lightning
  2.6's ``FitLoop.setup_data``). Under distributed training the main process's states are
  restored on every process; with ``seed_everything`` every process draws the same numbers.
- The datamodule's own state (the augmentation pipelines' generators, which Lightning saves
  and restores through ``LightningDataModule.state_dict``): the resumed run's sanity check would
  advance the validation pipelines, so their restored state is put back after it.
- Best-checkpoint tracking: each ``ModelCheckpoint`` gets back its best score and path, its
  top-k checkpoints, its k-th value and its last checkpoint from the checkpoint resumed from,
  so ``val/<monitor>_best`` and the tested checkpoint count the epochs before the
  interruption. The earlier run's checkpoint files stay where they are and may be the best:
  on a local file system Lightning deletes no file outside the run's checkpoint directory.

Limits: a checkpoint saved in the middle of an epoch (``every_n_train_steps``) resumes, but not
exactly (the DataLoader's position within the epoch is not restored). With ``data.num_workers``
above 0 the augmentations run in worker processes that live across epochs; their random
streams cannot be read from the main process, and the resumed run starts new workers (drawing
one more seed from torch's generator), so its epochs differ from the uninterrupted run's,
although resuming the same checkpoint twice gives the same run.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn

log = logging.getLogger(__name__)


def rng_states() -> dict[str, Any]:
    """The global random states, as plain Python values and tensors (a checkpoint holding them
    loads with ``torch.load(weights_only=True)``).

    Written here rather than taken from Lightning's ``_collect_rng_states``: that one is private
    and keeps NumPy's state as an array, which ``weights_only`` loading refuses.
    """
    numpy = np.random.get_state(legacy=False)
    numpy["state"] = {"key": numpy["state"]["key"].tolist(), "pos": int(numpy["state"]["pos"])}
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    random.setstate(states["python"])
    numpy = dict(states["numpy"])
    numpy["state"] = {
        "key": np.asarray(numpy["state"]["key"], dtype=np.uint32),
        "pos": numpy["state"]["pos"],
    }
    np.random.set_state(numpy)
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


def keep_best_tracking(trainer: pl.Trainer, checkpoint: dict[str, Any]) -> None:
    """Let every ``ModelCheckpoint`` of ``trainer`` restore its whole state from
    ``checkpoint`` although the run writes into another directory.

    ``ModelCheckpoint.load_state_dict`` restores the best score, the top-k checkpoints and the
    last checkpoint only when the stored ``dirpath`` is its own; this sets the stored one to
    its own in the loaded checkpoint (in memory), which Lightning hands to ``load_state_dict``
    after the ``on_load_checkpoint`` hooks.
    """
    stored = checkpoint.get("callbacks", {})
    for callback in trainer.checkpoint_callbacks:
        state = stored.get(callback.state_key)
        if isinstance(callback, ModelCheckpoint) and isinstance(state, dict):
            if state.get("dirpath") != callback.dirpath and trainer.state.fn == TrainerFn.FITTING:
                log.info(
                    "best-checkpoint tracking continues from %s (its checkpoints stay there)",
                    state.get("dirpath"),
                )
            state["dirpath"] = callback.dirpath


class ExactResume(pl.Callback):
    """Carry the random states and the best-checkpoint tracking across a resume (see the
    module's docstring). build_trainer adds it to every run."""

    def __init__(self) -> None:
        self._resumed = False
        self._data_state: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states()}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """The tracking on every load (``trainer.test(ckpt_path=best)`` then restores it as
        in the uninterrupted run, where the best checkpoint is in the run's own directory);
        the random states on a resumed fit only."""
        keep_best_tracking(trainer, checkpoint)
        if trainer.state.fn != TrainerFn.FITTING:
            return
        state = checkpoint.get("callbacks", {}).get(self.state_key)
        if state is not None:
            set_rng_states(state["rng"])
            self._resumed = True

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._resumed and trainer.datamodule is not None:
            self._data_state = trainer.datamodule.state_dict()

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._data_state is not None:
            trainer.datamodule.load_state_dict(self._data_state)
            self._data_state = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._resumed and trainer.ckpt_path is not None:
            log.warning(
                "%s carries no random states (written before cvbench saved them): the resumed "
                "run will not repeat the uninterrupted one exactly",
                trainer.ckpt_path,
            )

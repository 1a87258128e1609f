"""cvbench's own callbacks: checkpoints with ``last.ckpt`` at every epoch, stop on a
non-finite loss, store the config in checkpoints."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from cvbench.run.errors import NonFiniteLossError


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` written at every check (each
    epoch's end by default), as Lightning did before 2.6.

    Lightning 2.6 writes ``last.ckpt`` only at a step where it also wrote a top-k
    checkpoint, so with ``save_top_k: 1`` it is a copy of the best one and a run resumed
    from it repeats every epoch since. Lightning decides that from ``_last_global_step_saved``
    right after the top-k check; this marks the step as saved once the check is done.
    """

    @property
    def state_key(self) -> str:
        """The key Lightning's own class files its state under, so a checkpoint of either
        resumes into the other with its best-checkpoint tracking."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def _save_topk_checkpoint(
        self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]
    ) -> None:
        super()._save_topk_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_global_step_saved = trainer.global_step


def last_good_checkpoint(trainer: pl.Trainer) -> str | None:
    """The newest checkpoint the run has written (or resumed from): a checkpoint callback's
    last checkpoint, else its best one; None when there is none."""
    for callback in trainer.checkpoint_callbacks:
        path = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
        if path:
            return str(path)
    return None


class FiniteLossGuard(pl.Callback):
    """Stop training on a NaN or infinite loss, before its gradients touch the weights.

    The checkpoints already on disk (``last.ckpt``, the best one) are the last good state;
    nothing is saved after the failure. The error names the newest one, or says that none
    was saved yet.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if not torch.isfinite(loss).all():
            last = last_good_checkpoint(trainer)
            saved = (
                f"The last good checkpoint is {last}."
                if last
                else "No checkpoint was saved before it."
            )
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {trainer.current_epoch}, global step "
                f"{trainer.global_step}: training stopped. {saved} Lower optim.lr, add "
                f"trainer.gradient_clip_val, or check the inputs for NaN."
            )


class ConfigInCheckpoint(pl.Callback):
    """Write the run's config into every checkpoint under ``checkpoint["cvbench"]``.

    Args:
        raw: the composed config as plain containers with interpolations, so ``cvbench
            eval`` can re-resolve paths for its own run.
        resolved: the same with values.
        identity: experiment, model and overrides the run was composed from, so the results
            store can file an evaluation of the checkpoint under them.
    """

    def __init__(self, *, raw: dict, resolved: dict, identity: dict | None = None) -> None:
        self.raw = raw
        self.resolved = resolved
        self.identity = identity or {}

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["cvbench"] = {
            "config": self.raw,
            "resolved_config": self.resolved,
            "identity": self.identity,
        }

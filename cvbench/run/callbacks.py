"""cvbench's own callbacks: stop on a non-finite loss, store the config in checkpoints."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from cvbench.run.errors import NonFiniteLossError


class FiniteLossGuard(pl.Callback):
    """Stop training on a NaN or infinite loss, before its gradients touch the weights.

    The checkpoints already on disk (``last.ckpt``, the best one) are the last good state;
    nothing is saved after the failure.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if not torch.isfinite(loss).all():
            ckpt_dir = getattr(trainer.checkpoint_callback, "dirpath", None)
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {trainer.current_epoch}, global step "
                f"{trainer.global_step}: training stopped. The last good checkpoints are in "
                f"{ckpt_dir} (last.ckpt). Lower optim.lr, add trainer.gradient_clip_val, or check "
                f"the inputs for NaN."
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

"""What every task's LightningModule shares: the injected net and optimization, the
end-of-epoch hooks, and ``results`` (the last metrics of each stage in float64)."""

from __future__ import annotations

import pytorch_lightning as pl
from torch import nn

from cvbench.tasks.optimization import (
    OptimizerFactory,
    SchedulerFactory,
    configure_optimization,
)


class TaskModule(pl.LightningModule):
    """Base of cvbench's task modules; a task implements its steps and :meth:`log_epoch`.

    Args:
        net: the model (it knows nothing of configs).
        optimizer: builds the optimizer from the parameters (a ``functools.partial``).
        scheduler: builds the LR scheduler from the optimizer, or None.
        scheduler_interval: "epoch" or "step".
    """

    # Whether ``forward`` takes a list of (C, H, W) images (detection) rather than a
    # (B, C, H, W) batch; read when the run's FLOPs are counted.
    takes_image_lists: bool = False

    def __init__(
        self,
        *,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        # The last values of each stage, full precision (Lightning keeps logged ones as float32).
        self.results: dict[str, dict[str, float | str | None]] = {}

    def log_epoch(self, stage: str) -> None:
        """Compute the metrics of ``stage`` once, keep them in ``results`` and log them."""
        raise NotImplementedError

    def on_train_epoch_end(self) -> None:
        self.log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch("test")

    def configure_optimizers(self) -> dict:
        return configure_optimization(
            self, self.optimizer_factory, self.scheduler_factory, self.scheduler_interval
        )

"""How a task's networks are optimized (one optimizer and schedule per network), and the
schedules tasks share."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., LRScheduler]
INTERVALS = ("epoch", "step")


@dataclass(frozen=True)
class Optimization:
    """How one network is optimized, from ``optim`` and ``sched`` of the run's config.

    Attributes:
        optimizer: builds the optimizer from parameters (a ``functools.partial``).
        scheduler: builds the LR scheduler from the optimizer, or None (constant rate).
        interval: step the scheduler every "epoch" or every optimizer "step".
    """

    optimizer: OptimizerFactory
    scheduler: SchedulerFactory | None = None
    interval: str = "epoch"

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"sched.interval must be one of {INTERVALS}, got {self.interval!r}")


def optimizer_config(
    module: pl.LightningModule,
    parameters: Iterable[torch.nn.Parameter],
    optimization: Optimization,
    *,
    manual: bool = False,
) -> dict:
    """Lightning's config of one optimizer (and its scheduler) over ``parameters``.

    A scheduler factory that takes a ``total_steps`` keyword (such as :func:`warmup_cosine`)
    gets the number of optimizer steps of the whole run from the trainer. With ``manual``
    optimization the scheduler comes without its interval: the task steps it itself.
    """
    opt = optimization.optimizer(parameters)
    if optimization.scheduler is None:
        return {"optimizer": opt}
    kwargs = {}
    if "total_steps" in inspect.signature(optimization.scheduler).parameters:
        kwargs["total_steps"] = int(module.trainer.estimated_stepping_batches)
    scheduler = optimization.scheduler(opt, **kwargs)
    if manual:
        return {"optimizer": opt, "lr_scheduler": scheduler}
    return {
        "optimizer": opt,
        "lr_scheduler": {"scheduler": scheduler, "interval": optimization.interval},
    }


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int = 100,
    warmup_factor: float = 0.001,
    eta_min: float = 0.0,
) -> SequentialLR:
    """Linear warm-up from ``warmup_factor`` x lr over ``warmup_steps``, then cosine decay to
    ``eta_min`` at ``total_steps`` (the detection references' schedule; step it per step).

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = warmup_cosine(opt, total_steps=10, warmup_steps=2, warmup_factor=0.5)
    >>> [round(opt.param_groups[0]["lr"], 3) for _ in range(4) if not sched.step()]
    [0.75, 1.0, 0.962, 0.854]
    """
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))
    warm = LinearLR(optimizer, start_factor=warmup_factor, total_iters=max(warmup_steps, 1))
    decay = CosineAnnealingLR(optimizer, T_max=max(total_steps - warmup_steps, 1), eta_min=eta_min)
    return SequentialLR(optimizer, [warm, decay], milestones=[warmup_steps])

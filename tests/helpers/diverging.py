"""A loss that turns NaN after a given number of calls: a divergence on demand, for the tests.

Importable by the subprocesses the tests start (tests/helpers is put on their PYTHONPATH).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class DivergingLoss(nn.CrossEntropyLoss):
    """Cross-entropy (per sample) for ``finite_calls`` training calls, NaN from then on.

    Only calls in training mode count (the task's validation calls it too).
    """

    def __init__(self, *, finite_calls: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.finite_calls = finite_calls
        self.calls = 0

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        self.calls += self.training
        loss = super().forward(logits, target)
        return loss if self.calls <= self.finite_calls else loss * torch.nan

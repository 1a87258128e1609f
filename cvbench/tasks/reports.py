"""What every task's report callback shares: reading the task's typed test output, and saving a
matplotlib figure as the image it logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytorch_lightning as pl
from PIL import Image

from cvbench.tasks.base import TaskModule

OutputT = TypeVar("OutputT")


def test_output(module: pl.LightningModule, kind: type[OutputT], report: object) -> OutputT | None:
    """The test output ``report`` reads: a ``kind`` the task left at the end of its last test,
    or None (no test ended yet, or the task keeps nothing to report).

    Raises:
        TypeError: the task leaves another kind of output: the report belongs to another task.
    """
    output = module.test_output if isinstance(module, TaskModule) else None
    if output is None or isinstance(output, kind):
        return output
    raise TypeError(
        f"{type(report).__name__} reads a {kind.__name__}, but {type(module).__name__} leaves a "
        f"{type(output).__name__}: task.callbacks names the report of another task"
    )


def save_figure(fig: Any, path: Path) -> np.ndarray:
    """Save a matplotlib figure to ``path`` (100 dpi), close it, and return the saved image as
    (H, W, 3) uint8 RGB: what TensorBoard and W&B get is exactly the file."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    with Image.open(path) as saved:
        return np.asarray(saved.convert("RGB"))

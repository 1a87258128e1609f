"""What every task's report callback shares: reading the task's typed test output."""

from __future__ import annotations

from typing import TypeVar

import pytorch_lightning as pl

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

"""A callback that kills its own process with SIGKILL: a crash on demand, for the resume tests.

Importable by the subprocesses the tests start (tests/helpers is put on their PYTHONPATH).
"""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class KillAtEpochStart(pl.Callback):
    """SIGKILL the process as training epoch ``epoch`` (0-based) starts: everything of the
    epochs before it, their checkpoints included, is on disk; nothing after it is. No cleanup
    runs, as when the machine or the scheduler kills a job."""

    def __init__(self, *, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)

"""Send an image (a sample grid, a plot) to every logger of a run that takes images."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger


def log_image(trainer: pl.Trainer, key: str, image: np.ndarray) -> list[str]:
    """Log ``image`` under ``key`` to TensorBoard and W&B; other loggers (CSV) take none.

    Args:
        trainer: the run's trainer (its loggers and global step).
        key: the image's name, e.g. ``"test/samples"``.
        image: (H, W, 3) uint8 RGB.

    Returns:
        the names of the loggers that received it.
    """
    sent = []
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, trainer.global_step, dataformats="HWC")
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[image], step=trainer.global_step)
        else:
            continue
        sent.append(type(logger).__name__)
    return sent

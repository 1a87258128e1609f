"""The fixed sample grid of a synthesis or translation run: the task's ``grid_images()`` (the
same noise, or the same inputs, every time) written after every validation epoch to
``<run dir>/samples/epoch_<NNN>.png`` and sent to TensorBoard and W&B (``<stage>/samples``),
and after the test to ``<run dir>/samples.png``; watching the grids is how a GAN's training is
followed (mode collapse, artefacts) where the loss curves say little.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from cvbench.tasks.log_images import log_image


def grid_of(images: Tensor, nrow: int) -> Tensor:
    """The images tiled ``nrow`` per row with a 2-pixel white border.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        nrow: images per row.

    Returns:
        (3, H', W') float in [0, 1].
    """
    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1)


def to_uint8(grid: Tensor) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded as a PNG file holds it."""
    return (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)


class SampleGrid(pl.Callback):
    """Writes and logs the task's ``grid_images() -> (images (N, 3, H, W) in [0, 1], nrow)``
    on the main process, after each validation epoch (not the sanity check) and each test.

    Args:
        output_dir: the run directory.
    """

    def __init__(self, *, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: Path, key: str):
        was_training = pl_module.training
        pl_module.eval()
        try:
            images, nrow = pl_module.grid_images()
        finally:
            pl_module.train(was_training)
        grid = grid_of(images, nrow)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        log_image(trainer, key, to_uint8(grid).numpy())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        path = self.output_dir / "samples" / f"epoch_{trainer.current_epoch:03d}.png"
        self._write(trainer, pl_module, path, "val/samples")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._write(trainer, pl_module, self.output_dir / "samples.png", "test/samples")

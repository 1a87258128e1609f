"""What an image-restoration test leaves to read and to look at in the run directory.

- ``test_per_image.csv``: per test image, its name, PSNR (dB) and SSIM of the network and of
  the task's baseline, under the run's protocol (``test/color``, ``test/crop_border``);
- ``test_samples.png``: the first test images as rows of input | baseline | output | target,
  each titled with its PSNR; also sent as ``test/samples`` to the loggers that take images
  (TensorBoard, W&B).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from cvbench.files import write_text  # noqa: E402
from cvbench.tasks.log_images import log_image  # noqa: E402
from cvbench.tasks.reports import save_figure, test_output  # noqa: E402
from cvbench.tasks.restoration import RestorationTestOutput  # noqa: E402

PER_IMAGE_COLUMNS = ("index", "name", "psnr", "ssim", "baseline_psnr", "baseline_ssim")


def per_image_csv(rows: list[dict]) -> str:
    """The per-image table as CSV text; a missing value is an empty cell.

    >>> print(per_image_csv([{"index": 0, "name": "baby.png", "psnr": 38.1234567,
    ...                       "ssim": 0.96, "baseline_psnr": 33.9, "baseline_ssim": 0.93}]),
    ...       end="")
    index,name,psnr,ssim,baseline_psnr,baseline_ssim
    0,baby.png,38.123457,0.960000,33.900000,0.930000
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PER_IMAGE_COLUMNS)
    for row in rows:
        cells = [row.get(c) for c in PER_IMAGE_COLUMNS]
        writer.writerow(
            ["" if v is None else f"{v:.6f}" if isinstance(v, float) else v for v in cells]
        )
    return text.getvalue()


def shown_input(inputs: Tensor) -> np.ndarray:
    """A network input (C, H, W) in [0, 1] as (H, W, 3) uint8 to look at: gray (L*) repeated,
    RGB as it is, RGB + hole mask with the hole drawn white."""
    if inputs.shape[0] == 4:
        hole = inputs[3:4]
        inputs = inputs[:3] * (1 - hole) + hole
    elif inputs.shape[0] == 1:
        inputs = inputs.expand(3, -1, -1)
    return to_uint8(inputs)


def to_uint8(image: Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded as the scores are."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def plot_restorations(rows: list[dict], path: Path) -> np.ndarray:
    """Save one row per image (input, baseline, output, target) and return the PNG's pixels.

    Args:
        rows: per image ``name`` and ``panels``: (title, (H, W, 3) uint8) pairs.
        path: the PNG to write.

    Returns:
        (H, W, 3) uint8: the saved figure.
    """
    cols = max(len(r["panels"]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(3 * cols, 3 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        for ax, (title, image) in zip(ax_row, row["panels"], strict=False):
            ax.imshow(image, interpolation="nearest")  # a low-resolution input stays pixelated
            ax.set_title(title, fontsize=8)
        ax_row[0].set_ylabel(row["name"], fontsize=8)
        for ax in ax_row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path)


class RestorationReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: images in ``test_samples.png`` (0: none); the first ones of the test split.
    """

    def __init__(self, *, output_dir: str, num_samples: int = 4) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, RestorationTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        dataset = trainer.datamodule.split("test")
        rows = [row | {"name": dataset.records.name(row["index"])} for row in output.per_image]
        write_text(self.output_dir / "test_per_image.csv", per_image_csv(rows))
        if self.num_samples:
            scores = {row["index"]: row for row in rows}
            grid = self._plot(pl_module, dataset, scores)
            log_image(trainer, "test/samples", grid)

    def _plot(self, pl_module: pl.LightningModule, dataset, scores: dict[int, dict]) -> np.ndarray:
        """Restore the first test images again (on this process only) and draw them."""
        was_training = pl_module.training
        pl_module.eval()
        rows = []
        for index in range(min(self.num_samples, len(dataset.records))):
            sample = dataset[index]
            inputs = sample["input"][None].to(pl_module.device)
            score = scores.get(index, {})
            panels = [("input", shown_input(sample["input"]))]
            with torch.no_grad():
                if pl_module.baseline is not None:
                    reference = pl_module.restore(inputs, baseline=True)[0]
                    panels.append(
                        (_title("baseline", score.get("baseline_psnr")), to_uint8(reference))
                    )
                output = pl_module.restore(inputs)[0]
            panels += [
                (_title("output", score.get("psnr")), to_uint8(output)),
                ("target", to_uint8(sample["image"])),
            ]
            rows.append({"name": dataset.records.name(index), "panels": panels})
        pl_module.train(was_training)
        return plot_restorations(rows, self.output_dir / "test_samples.png")


def _title(what: str, psnr: float | None) -> str:
    return what if psnr is None else f"{what}: {psnr:.2f} dB"

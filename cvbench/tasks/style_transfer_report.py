"""What a style-transfer test leaves to read and to look at in the run directory.

- ``test_per_image.csv``: per test grid cell, its content and style file names and the scores
  of the output and of each baseline (the losses' columns carry the judging network's name);
- ``test_samples.png``: the first grid cells as rows of content | style | output (| the
  untrained network's output, when the task keeps one), the outputs titled with their style
  and content losses; also sent as ``test/samples`` to the loggers that take images
  (TensorBoard, W&B).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl

from cvbench.files import write_text
from cvbench.metrics.style_transfer import LOSSES, SCORES
from cvbench.tasks.log_images import log_image
from cvbench.tasks.reports import test_output
from cvbench.tasks.restoration_report import plot_restorations, to_uint8
from cvbench.tasks.style_transfer import StyleTransferTestOutput


def score_columns(network: str, baselines: Sequence[str]) -> list[tuple[str, str]]:
    """``(row key, CSV column)`` of each score: the output's, then each baseline's; a loss's
    column carries ``@network``.

    >>> score_columns("vgg_rand_s0", ["content"])[:2]
    [('content_loss', 'content_loss@vgg_rand_s0'), ('style_loss', 'style_loss@vgg_rand_s0')]
    """
    columns = []
    for prefix in ["", *(f"baseline_{name}_" for name in baselines)]:
        for name in SCORES:
            unit = f"@{network}" if name in LOSSES else ""
            columns.append((f"{prefix}{name}", f"{prefix}{name}{unit}"))
    return columns


def per_cell_csv(rows: list[dict], network: str, baselines: Sequence[str]) -> str:
    """The per-cell table as CSV text; a missing value is an empty cell.

    >>> print(per_cell_csv([{"index": 0, "content": "a.png", "style": "b.png",
    ...                      "content_loss": 0.5, "style_loss": 2e-4}], "n", []), end="")
    index,content,style,content_loss@n,style_loss@n,style_loss_mean_std@n,ssim_content
    0,a.png,b.png,0.5,0.0002,,
    """
    columns = score_columns(network, baselines)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "content", "style", *(column for _, column in columns)])
    for row in rows:
        cells = [row.get(key) for key, _ in columns]
        writer.writerow(
            [row["index"], row.get("content"), row.get("style")]
            + ["" if v is None else f"{v:.6g}" if isinstance(v, float) else v for v in cells]
        )
    return text.getvalue()


def _title(what: str, row: dict, prefix: str = "") -> str:
    """``what`` with the cell's style and content losses, when known."""
    style, content = row.get(f"{prefix}style_loss"), row.get(f"{prefix}content_loss")
    if style is None or content is None:
        return what
    return f"{what}\nstyle {style:.3g}, content {content:.3g}"


class StyleTransferReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: grid cells in ``test_samples.png`` (0: none); the first ones.
    """

    def __init__(self, *, output_dir: str, num_samples: int = 4) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, StyleTransferTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        names = trainer.datamodule.grid_names("test")
        rows = [
            row | {"content": names[row["index"]][0], "style": names[row["index"]][1]}
            for row in output.per_cell
        ]
        text = per_cell_csv(rows, output.network, output.baselines)
        write_text(self.output_dir / "test_per_image.csv", text)
        if self.num_samples:
            grid = self._plot(pl_module, trainer.datamodule.split("test"), rows)
            log_image(trainer, "test/samples", grid)

    def _plot(self, pl_module: pl.LightningModule, dataset, rows: list[dict]) -> np.ndarray:
        """Stylize the first grid cells again (on this process only) and draw them."""
        was_training = pl_module.training
        pl_module.eval()
        scores = {row["index"]: row for row in rows}
        plotted = []
        for index in range(min(self.num_samples, len(dataset))):
            sample = dataset[index]
            content = sample["content"][None].to(pl_module.device)
            style = sample["style"][None].to(pl_module.device)
            row = scores.get(index, {"index": index})
            panels = [
                ("content", to_uint8(sample["content"])),
                ("style", to_uint8(sample["style"])),
                (_title("output", row), to_uint8(pl_module.stylize(content, style)[0])),
            ]
            if pl_module.untrained_net is not None:
                untrained = pl_module.stylize(content, style, untrained=True)[0]
                panels.append(
                    (_title("untrained", row, "baseline_untrained_"), to_uint8(untrained))
                )
            name = " + ".join(filter(None, (row.get("content"), row.get("style"))))
            plotted.append({"name": name or str(index), "panels": panels})
        pl_module.train(was_training)
        return plot_restorations(plotted, self.output_dir / "test_samples.png")

"""What a text-detection test leaves to read and to look at in the run directory.

- ``test_results/res_<stem>.txt``: every extracted box of each test image as an ICDAR 2015
  result file (``x1,y1,...,x4,y4,score``, integer coordinates in the image's ORIGINAL pixels),
  so ``cvbench score --task text_detection`` or the Robust Reading Competition's script re-score
  the run (at any score threshold: the scores are in the files);
- ``test_per_image.csv``: per test image, its index and name, and at the metric's score
  threshold the "care" ground-truth regions, the counted predictions, the matches and the
  image's precision, recall and H-mean (ICDAR 2015 per image; the split's numbers come from the
  summed counts, not from the mean of these);
- ``test_samples.png``: the first test images with the ground truth (green; "###" grey, dashed)
  and the predictions (red from the score threshold, blue below, with their scores); also sent
  as ``test/samples`` to the loggers that take images (TensorBoard, W&B).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402

from cvbench.data.formats.icdar2015 import res_name, write_icdar2015_result  # noqa: E402
from cvbench.files import write_text  # noqa: E402
from cvbench.tasks.log_images import log_image  # noqa: E402
from cvbench.tasks.reports import save_figure, test_output  # noqa: E402
from cvbench.tasks.text_detection import TextDetectionTestOutput  # noqa: E402

PER_IMAGE_COLUMNS = (
    "index", "name", "num_gt_care", "num_pred", "num_matched", "precision", "recall", "hmean",
)  # fmt: skip
RESULTS_DIR = "test_results"


def per_image_csv(rows: list[dict[str, Any]]) -> str:
    """The per-image table as CSV text.

    >>> print(per_image_csv([{"index": 0, "name": "img_1", "num_gt_care": 2, "num_pred": 1,
    ...                       "num_matched": 1, "precision": 1.0, "recall": 0.5,
    ...                       "hmean": 2 / 3}]), end="")
    index,name,num_gt_care,num_pred,num_matched,precision,recall,hmean
    0,img_1,2,1,1,1.000000,0.500000,0.666667
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PER_IMAGE_COLUMNS)
    for row in rows:
        writer.writerow(
            [f"{row[c]:.6f}" if isinstance(row[c], float) else row[c] for c in PER_IMAGE_COLUMNS]
        )
    return text.getvalue()


def plot_text_detections(
    samples: list[dict[str, Any]], score_threshold: float, path: Path
) -> np.ndarray:
    """Save a grid of images with their ground truth and predicted quadrilaterals.

    Args:
        samples: ``image`` (H, W, 3) uint8, ``polygons`` (N, 4, 2), ``ignore`` (N,) bool,
            ``pred`` (M, 4, 2), ``scores`` (M,), ``name``; coordinates in the image's pixels.
        score_threshold: predictions from this score are red, below it blue.
        path: the PNG to write.

    Returns:
        the grid as (H, W, 3) uint8 RGB.
    """
    cols = min(4, len(samples))
    rows = -(-len(samples) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, sample in zip(axes.flat, samples, strict=False):
        ax.imshow(sample["image"])
        for polygon, ignored in zip(sample["polygons"], sample["ignore"], strict=True):
            ax.add_patch(
                Polygon(
                    polygon,
                    closed=True,
                    fill=False,
                    lw=1.2,
                    ec="grey" if ignored else "lime",
                    ls="--" if ignored else "-",
                )  # fmt: skip
            )
        for quad, score in zip(sample["pred"], sample["scores"], strict=True):
            colour = "red" if score >= score_threshold else "dodgerblue"
            ax.add_patch(Polygon(quad, closed=True, fill=False, lw=1.2, ec=colour))
            x, y = quad[0]
            ax.text(x, y, f"{score:.2f}", fontsize=6, color="white", va="bottom",
                    backgroundcolor=colour)  # fmt: skip
        ax.set_title(sample["name"], fontsize=8)
    fig.suptitle(
        f"ground truth (green, ### grey dashed); predictions (red: score >= "
        f"{score_threshold:g}, blue: below)",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, path)


class TextDetectionReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: images in ``test_samples.png`` (0: none; at most the task's
            ``num_samples``).
    """

    def __init__(self, *, output_dir: str, num_samples: int = 8) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, TextDetectionTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        for image in output.images:
            path = self.output_dir / RESULTS_DIR / res_name(image["name"])
            write_icdar2015_result(path, image["polygons"], image["scores"])
        write_text(self.output_dir / "test_per_image.csv", per_image_csv(output.images))
        samples = output.samples[: self.num_samples]
        if samples:
            path = self.output_dir / "test_samples.png"
            log_image(
                trainer, "test/samples", plot_text_detections(samples, output.score_threshold, path)
            )

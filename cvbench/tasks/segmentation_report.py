"""What a semantic segmentation test leaves to read and to look at in the run directory.

- ``test_per_class_iou.csv``: per class, IoU and accuracy (percent; empty when the class is in
  neither the ground truth nor the predictions) and the ground-truth and predicted pixel counts;
- ``test_confusion_matrix.csv``: the split's confusion matrix (rows ground truth, columns
  prediction, pixel counts, ignored pixels left out), from which every metric follows;
- ``test_samples.png``: the first test images, their label maps and the predictions.
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
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from cvbench.files import write_text  # noqa: E402
from cvbench.tasks.reports import test_output  # noqa: E402
from cvbench.tasks.segmentation import SegmentationTestOutput  # noqa: E402

PER_CLASS_COLUMNS = ("class_id", "name", "iou", "acc", "gt_pixels", "pred_pixels")


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def per_class_csv(rows: list[dict]) -> str:
    """The per-class table as CSV text; undefined values stay empty cells.

    >>> print(per_class_csv([{"class_id": 0, "name": "road", "iou": 97.5, "acc": 99.0,
    ...                       "gt_pixels": 10, "pred_pixels": 11},
    ...                      {"class_id": 1, "name": "car", "iou": None, "acc": None,
    ...                       "gt_pixels": 0, "pred_pixels": 0}]), end="")
    class_id,name,iou,acc,gt_pixels,pred_pixels
    0,road,97.5000,99.0000,10,11
    1,car,,,0,0
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(PER_CLASS_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in PER_CLASS_COLUMNS])
    return text.getvalue()


def confusion_csv(confusion: np.ndarray, names: list[str]) -> str:
    """The confusion matrix (K, K) as CSV: a header of predicted class names, then one row per
    ground-truth class, its name first.

    >>> print(confusion_csv(np.array([[3, 1], [0, 2]]), ["sky", "tree"]), end="")
    gt\\pred,sky,tree
    sky,3,1
    tree,0,2
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["gt\\pred", *names])
    for name, row in zip(names, confusion.tolist(), strict=True):
        writer.writerow([name, *row])
    return text.getvalue()


def label_colours(num_classes: int) -> np.ndarray:
    """(K + 1, 4) RGBA colours: one per class (tab20, repeating), the last for ignored pixels."""
    tab = plt.get_cmap("tab20").colors
    colours = [(*tab[k % len(tab)], 1.0) for k in range(num_classes)]
    return np.array([*colours, (1.0, 1.0, 1.0, 1.0)])


def plot_segmentations(
    images: list[np.ndarray],
    truths: list[np.ndarray],
    preds: list[np.ndarray],
    names: list[str],
    ignore_index: int,
    path: Path,
) -> None:
    """Save one row per image: the image, its label map and the prediction, with a legend.

    Args:
        images: (H, W, 3) uint8 each.
        truths: (H, W) int label maps (``ignore_index`` drawn white).
        preds: (H, W) int predicted label maps.
        names: the K class names.
        ignore_index: the void label.
        path: the PNG to write.
    """
    k = len(names)
    cmap = ListedColormap(label_colours(k))
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.5 * len(images)), squeeze=False)
    for row, image, truth, pred in zip(axes, images, truths, preds, strict=True):
        truth = np.where(truth == ignore_index, k, truth)
        for ax, shown, title in zip(
            row, (image, truth, pred), ("image", "ground truth", "prediction"), strict=True
        ):
            if shown.ndim == 2:
                ax.imshow(shown, cmap=cmap, vmin=0, vmax=k, interpolation="nearest")
            else:
                ax.imshow(shown)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    handles = [
        Patch(color=c, label=n) for c, n in zip(cmap.colors, [*names, "ignored"], strict=True)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


class SegmentationReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: images in ``test_samples.png`` (0: none).
    """

    def __init__(self, *, output_dir: str, num_samples: int = 6) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, SegmentationTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        per_class = output.per_class
        names = [str(row.get("name", row["class_id"])) for row in per_class]
        write_text(self.output_dir / "test_per_class_iou.csv", per_class_csv(per_class))
        write_text(
            self.output_dir / "test_confusion_matrix.csv",
            confusion_csv(output.confusion.numpy(), names),
        )
        if self.num_samples:
            self._plot(trainer, pl_module, names)

    def _plot(self, trainer: pl.Trainer, pl_module: pl.LightningModule, names: list[str]) -> None:
        """Predict the first test images again (on this process only) and draw them."""
        dataset = trainer.datamodule.split("test")
        shown = range(min(self.num_samples, len(dataset)))
        samples = [dataset[i] for i in shown]
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            preds = [
                pl_module.predict([image.to(pl_module.device)], [mask.shape])[0].cpu().numpy()
                for image, mask, _ in samples
            ]
        pl_module.train(was_training)
        plot_segmentations(
            [dataset.records.load(i) for i in shown],
            [mask.numpy() for _, mask, _ in samples],
            preds,
            names,
            pl_module.ignore_index,
            self.output_dir / "test_samples.png",
        )

"""What a classification test leaves to read and to look at in the run directory.

- ``test_predictions.txt`` / ``test_labels.txt``: the ILSVRC devkit's submission and ground-truth
  files (one line per test image, in dataset order), so ``cvbench score`` re-scores the run;
  an image whose scores had a NaN or inf guesses ``num_classes``, no class (scored wrong);
- ``test_per_class.csv``: images and top-1 error per class;
- ``test_confusion_matrix.png``: row-normalised confusion matrix (up to ``max_matrix_classes``);
- ``test_samples.png``: the first test images with their label and top-1 guess.
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

from cvbench.files import write_text  # noqa: E402
from cvbench.metrics.classification import NO_GUESS  # noqa: E402
from cvbench.tasks.classification import ClassificationTestOutput  # noqa: E402
from cvbench.tasks.reports import test_output  # noqa: E402


def submission_guesses(guesses: np.ndarray, num_classes: int) -> np.ndarray:
    """Guesses as the devkit's predictions file takes them (non-negative ids).

    Args:
        guesses: (N, k) int class ids best first, ``NO_GUESS`` (-1) throughout the row of an
            image whose scores had a NaN or inf.
        num_classes: C; labels are 0..C-1.

    Returns:
        (N, k) int: ``NO_GUESS`` replaced by C, an id that no label has (scored wrong).

    >>> submission_guesses(np.array([[2, 0], [-1, -1]]), 3).tolist()
    [[2, 0], [3, 3]]
    """
    return np.where(guesses == NO_GUESS, num_classes, guesses)


def confusion_matrix(target: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = ground truth, columns = prediction.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    flat = np.bincount(target * num_classes + pred, minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes)


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path) -> None:
    """Save the row-normalised confusion matrix with counts in each cell."""
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.5 + 0.45 * n))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xlabel="predicted",
        ylabel="ground truth",
        title="test confusion matrix (row share, counts in cells)",
    )
    ax.set_xticklabels(classes, rotation=90)
    ax.set_yticklabels(classes)
    if n <= 30:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(images: list[np.ndarray], titles: list[tuple[str, str]], path: Path) -> None:
    """Save a grid of images titled "label / guess", wrong guesses in red."""
    cols = min(8, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, (label, guess) in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image.squeeze(), cmap="gray" if image.ndim == 2 or image.shape[2] == 1 else None)
        ax.set_title(f"{label} / {guess}", fontsize=8, color="black" if label == guess else "red")
    fig.suptitle("test images: label / top-1 guess")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class ClassificationReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: images in ``test_samples.png`` (0: none).
        max_matrix_classes: no confusion-matrix picture above this many classes.
    """

    def __init__(
        self, *, output_dir: str, num_samples: int = 32, max_matrix_classes: int = 50
    ) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples
        self.max_matrix_classes = max_matrix_classes

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, ClassificationTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        records = trainer.datamodule.split("test").records
        classes = [str(c) for c in records.classes]
        index = output.index.numpy()
        target = output.target.numpy()
        no_class = len(classes)
        guesses = submission_guesses(output.guesses.numpy(), no_class)
        names = [*classes, "no guess"]
        out = self.output_dir
        write_text(out / "test_labels.txt", "".join(f"{t}\n" for t in target))
        write_text(
            out / "test_predictions.txt", "".join(" ".join(map(str, g)) + "\n" for g in guesses)
        )
        matrix = confusion_matrix(target, guesses[:, 0], no_class + 1)  # last column: no guess
        self._write_per_class(matrix, classes, out / "test_per_class.csv")
        if len(classes) <= self.max_matrix_classes:
            shown_names = names if matrix[:, no_class].any() else classes
            k = len(shown_names)
            plot_confusion(matrix[:k, :k], shown_names, out / "test_confusion_matrix.png")
        if self.num_samples:
            shown = range(min(self.num_samples, len(index)))
            plot_samples(
                [records.load(int(index[i])) for i in shown],
                [(classes[target[i]], names[guesses[i, 0]]) for i in shown],
                out / "test_samples.png",
            )

    @staticmethod
    def _write_per_class(matrix: np.ndarray, classes: list[str], path: Path) -> None:
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["class_id", "class", "num_images", "top1_error"])
        for c, name in enumerate(classes):
            n = int(matrix[c].sum())
            error = 100.0 * (1 - matrix[c, c] / n) if n else float("nan")
            writer.writerow([c, name, n, f"{error:.4f}"])
        write_text(path, table.getvalue())

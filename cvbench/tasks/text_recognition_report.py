"""What a text-recognition test leaves to read and to look at in the run directory, for the
test split and the same, named after it, for each extra test split (``test_unseen_font_*``):

- ``test_per_image.csv``: one row per word in dataset order: ``index``, ``name``, ``truth``,
  ``prediction``, ``word_acc`` (100 when read right under the protocol, else 0: the column's
  mean is ``test/word_acc``) and ``one_minus_ned`` (its mean is ``test/one_minus_ned``), the
  per-image scores ``cvbench compare`` pairs;
- ``test_predictions.txt``: ``image<TAB>transcription`` lines, what ``cvbench score`` reads;
- ``test_samples.png``: the first words: the image, the truth and the prediction (red when
  wrong under the protocol); also sent as ``test/samples`` to the loggers that take images.
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

from cvbench.data.formats.transcriptions import write_transcriptions  # noqa: E402
from cvbench.files import write_text  # noqa: E402
from cvbench.tasks.log_images import log_image  # noqa: E402
from cvbench.tasks.reports import save_figure, test_output  # noqa: E402
from cvbench.tasks.text_recognition import MAIN_SPLIT, TextRecognitionTestOutput  # noqa: E402

COLUMNS = ("index", "name", "truth", "prediction", "word_acc", "one_minus_ned")


def per_word_csv(words: list[dict[str, Any]]) -> str:
    """The per-word table as CSV text.

    >>> print(per_word_csv([{"index": 0, "name": "w0.png", "truth": "Cat", "prediction": "cat",
    ...                      "right": 1, "one_minus_ned": 1.0}]), end="")
    index,name,truth,prediction,word_acc,one_minus_ned
    0,w0.png,Cat,cat,100,1
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for w in words:
        cells = (w["index"], w["name"], w["truth"], w["prediction"], 100 * w["right"])
        writer.writerow([*cells, f"{w['one_minus_ned']:.6g}"])
    return text.getvalue()


def plot_words(rows: list[dict[str, Any]], path: Path, *, title: str) -> np.ndarray:
    """Save one row per word (the crop, then truth and prediction, the prediction red when
    wrong) and return the PNG's pixels.

    Args:
        rows: per word ``image`` ((H, W) or (H, W, 3) uint8), ``truth``, ``prediction``,
            ``right`` (1/0).
        path: the PNG to write.
        title: the figure's title (the split and the protocol).

    Returns:
        (H, W, 3) uint8: the saved figure.
    """
    fig, axes = plt.subplots(len(rows), 2, figsize=(6.0, 0.55 * len(rows) + 0.5), squeeze=False)
    for (left, right), row in zip(axes, rows, strict=True):
        image = row["image"]
        left.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        colour = "black" if row["right"] else "red"
        right.text(0.0, 0.72, f"truth: {row['truth']}", fontsize=8, va="center")
        right.text(0.0, 0.25, f"pred:  {row['prediction']}", fontsize=8, va="center", color=colour)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


class TextRecognitionReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: words in each ``*_samples.png`` (0: none); the first this process read
            (at most the task's ``num_samples``).
    """

    def __init__(self, *, output_dir: str, num_samples: int = 12) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, TextRecognitionTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        for split in output.splits:
            words = output.words.get(split, [])
            write_text(self.output_dir / f"{split}_per_image.csv", per_word_csv(words))
            write_transcriptions(
                self.output_dir / f"{split}_predictions.txt",
                [(w["name"], w["prediction"]) for w in words],
            )
            by_index = {w["index"]: w for w in words}
            shown = [
                by_index[index] | {"image": image}
                for index, image in output.samples.get(split, [])[: self.num_samples]
                if index in by_index
            ]
            if shown:
                grid = plot_words(
                    shown,
                    self.output_dir / f"{split}_samples.png",
                    title=f"{split} (red: wrong under {output.protocol})",
                )
                if split == MAIN_SPLIT:
                    log_image(trainer, "test/samples", grid)

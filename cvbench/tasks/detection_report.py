"""What a detection test leaves to read and to look at in the run directory.

- ``test_detections.json``: the detections as a COCO results file (the dataset's original image
  and category ids), so ``cvbench score --task detection`` or pycocotools re-score the run;
- ``test_segmentations.json`` (instance segmentation): the same detections with their masks as
  COCO RLE (``segmentation`` {size, counts}), for ``cvbench score --task detection --iou-type
  segm`` or pycocotools ``COCOeval(..., "segm")``;
- ``test_per_class_ap.csv``: per category, ground-truth and detection counts and AP (percent),
  and mask AP (``mask_ap``, ``mask_ap_50``, ``mask_ap_75``) when masks are scored;
- ``test_samples.png``: the first test images with ground truth (dashed) and detections (and
  their masks, tinted).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from pycocotools import mask as mask_utils  # noqa: E402

from cvbench.data.batches import DetectionGroundTruthSource  # noqa: E402
from cvbench.files import write_text  # noqa: E402
from cvbench.tasks.detection import DetectionTestOutput  # noqa: E402
from cvbench.tasks.reports import test_output  # noqa: E402

PER_CLASS_COLUMNS = ("category_id", "name", "num_gt", "num_det", "ap", "ap_50", "ap_75")


def per_class_csv(rows: list[dict]) -> str:
    """The per-class table as CSV text; empty APs (no ground truth) stay empty cells.

    >>> print(per_class_csv([{"category_id": 3, "name": "cat", "num_gt": 2, "num_det": 5,
    ...                       "ap": 50.0, "ap_50": 75.5, "ap_75": None}]), end="")
    category_id,name,num_gt,num_det,ap,ap_50,ap_75
    3,cat,2,5,50.0000,75.5000,
    """
    extra = [k for k in rows[0] if k not in PER_CLASS_COLUMNS] if rows else []
    columns = [*PER_CLASS_COLUMNS, *extra]  # e.g. voc_ap_50 on VOC data
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                f"{row[c]:.4f}" if isinstance(row[c], float) else "" if row[c] is None else row[c]
                for c in columns
            ]
        )
    return text.getvalue()


def plot_detections(
    images: list[np.ndarray],
    truths: list[list[list[float]]],
    detections: list[list[dict]],
    names: dict[int, str],
    path: Path,
    masks: list[list[np.ndarray]] | None = None,
) -> None:
    """Save a grid of images with ground-truth boxes (white, dashed) and detections (colour by
    category, labelled with name and score), their masks tinted in the same colour.

    Args:
        images: (H, W, 3) uint8 each.
        truths: per image, COCO boxes [x, y, w, h] in pixels.
        detections: per image, COCO results (``bbox``, ``category_id``, ``score``).
        names: category id -> name.
        path: the PNG to write.
        masks: per image, one (H, W) uint8 mask per detection, or None.
    """
    cols = min(4, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    order = {cid: i for i, cid in enumerate(sorted(names))}
    for ax in axes.flat:
        ax.axis("off")
    tints_per_image = masks or [[] for _ in images]
    for ax, image, truth, dets, tints in zip(
        axes.flat, images, truths, detections, tints_per_image, strict=False
    ):
        ax.imshow(image)
        for det, mask in zip(dets, tints, strict=False):
            overlay = np.zeros((*mask.shape, 4))
            overlay[mask > 0] = (*colours(order.get(det["category_id"], 0) % 10)[:3], 0.45)
            ax.imshow(overlay)
        for x, y, w, h in truth:
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec="white", ls="--", lw=1))
        for det in dets:
            x, y, w, h = det["bbox"]
            colour = colours(order.get(det["category_id"], 0) % 10)
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=colour, lw=1.5))
            label = f"{names.get(det['category_id'], det['category_id'])} {det['score']:.2f}"
            ax.text(x, y, label, fontsize=6, color="white", va="bottom", backgroundcolor=colour)
    fig.suptitle(
        "test images: ground truth (dashed) and detections" + (" with masks" if masks else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class DetectionReport(pl.Callback):
    """Write the files above at the end of each test, on the main process.

    Args:
        output_dir: the run directory.
        num_samples: images in ``test_samples.png`` (0: none).
        score_threshold: detections drawn in the samples score at least this.
    """

    def __init__(
        self, *, output_dir: str, num_samples: int = 8, score_threshold: float = 0.3
    ) -> None:
        self.output_dir = Path(output_dir)
        self.num_samples = num_samples
        self.score_threshold = score_threshold

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        output = test_output(pl_module, DetectionTestOutput, self)
        if not trainer.is_global_zero or output is None:
            return
        results, segm = output.results, output.segm_results
        write_text(self.output_dir / "test_detections.json", json.dumps(results) + "\n")
        if segm is not None:
            write_text(self.output_dir / "test_segmentations.json", json.dumps(segm) + "\n")
        write_text(self.output_dir / "test_per_class_ap.csv", per_class_csv(output.per_class))
        if self.num_samples and isinstance(trainer.datamodule, DetectionGroundTruthSource):
            self._plot(trainer.datamodule.records_of("test"), results, segm)

    def _plot(self, records, results: list[dict], segm: list[dict] | None) -> None:
        """Plot the first images; ``segm[i]`` is the mask of ``results[i]`` (or None)."""
        shown = list(range(min(self.num_samples, len(records))))
        ids = [records.image_ids[i] for i in shown]
        truths: dict[int, list] = {i: [] for i in ids}
        for ann in records.coco["annotations"]:
            if ann["image_id"] in truths:
                truths[ann["image_id"]].append(ann["bbox"])
        dets: dict[int, list] = {i: [] for i in ids}
        masks: dict[int, list] = {i: [] for i in ids}
        for k, det in enumerate(results):
            if det["image_id"] in dets and det["score"] >= self.score_threshold:
                dets[det["image_id"]].append(det)
                if segm is not None:
                    masks[det["image_id"]].append(mask_utils.decode(segm[k]["segmentation"]))
        names = {c["id"]: c["name"] for c in records.coco["categories"]}
        plot_detections(
            [records.load(i) for i in shown],
            [truths[i] for i in ids],
            [dets[i] for i in ids],
            names,
            self.output_dir / "test_samples.png",
            [masks[i] for i in ids] if segm is not None else None,
        )

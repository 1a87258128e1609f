"""``cvbench score task=segmentation``: folders of PNG label maps scored as one dataset-level
confusion matrix, as MMSegmentation's ``IoUMetric`` does.

A composition of the two bottom layers, so it lives above both: ``cvbench.data.label_maps``
reads the files and checks the ground truth's values (the same ``check_label_values`` the
datamodules use), ``cvbench.metrics.segmentation`` counts and scores (``confusion_matrix``,
``segmentation_scores``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvbench.cli.folders import FolderKind, matched_names
from cvbench.data import label_maps
from cvbench.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = ["LABEL_MAPS", "score_label_map_folders"]

LABEL_MAPS = FolderKind(
    task="segmentation",
    suffixes=(".png",),
    files="label maps",
    described="*.png label maps",
    prediction="prediction",
)


def _check_options(num_classes: int, ignore_index: int) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes}: expected at least 1")
    if 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a class id (0..{num_classes - 1}); use a value "
            "outside them (with 0 = void: reduce_zero_label=true)"
        )


def _check_prediction(predicted: np.ndarray, *, num_classes: int, where: Path) -> None:
    """ValueError naming ``where`` and the first value that is not a class id (predictions have
    no void value, unlike ground truth)."""
    bad = (predicted < 0) | (predicted >= num_classes)
    if bad.any():
        raise ValueError(
            f"{where}: prediction value {int(predicted[bad].flat[0])} is not a class id "
            f"0..{num_classes - 1} (num_classes={num_classes}); save predicted class ids "
            "(a binary mask as 0/1)"
        )


def score_label_map_folders(
    gt: Path,
    pred: Path,
    *,
    num_classes: int,
    ignore_index: int = 255,
    reduce_zero_label: bool = False,
) -> dict[str, Any]:
    """Dataset-level mIoU and co. of a folder of predicted label maps (MMSeg ``IoUMetric``).

    Args:
        gt: folder of ground-truth single-channel PNG label maps (gray, palette read as
            indices, or 16-bit); only the *.png files directly inside count.
        pred: folder of predicted PNG label maps, the same file names, each its label's size;
            values must be class ids 0..num_classes-1.
        num_classes: K, the number of classes: class ids are 0..K-1.
        ignore_index: the ground truth's void value (outside 0..K-1), never scored.
        reduce_zero_label: map the ground truth as MMSegmentation does for ADE20K (0 becomes
            void, the rest minus 1) before scoring; predictions are not mapped.

    Returns:
        ``miou``, ``pixel_acc``, ``mean_acc``, ``fwiou`` (percent, None where undefined),
        ``num_images``, ``num_classes``, ``ignore_index``, ``reduce_zero_label`` and
        ``per_class``: per class id ``class_id``, ``iou``, ``acc``, ``gt_pixels``,
        ``pred_pixels``.

    Raises:
        FileNotFoundError, ValueError: a wrong option, a missing folder or file, an extra
            file, a size mismatch, an unreadable or RGB PNG, or an out-of-range value; naming
            the file.
    """
    _check_options(num_classes, ignore_index)
    names = matched_names(gt, pred, LABEL_MAPS)
    total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    gt_values_seen: set[int] = set()
    for name in names:
        label = label_maps.read_label_map(gt / name)
        if reduce_zero_label:
            label = label_maps.reduce_zero_label(label, ignore_index)
        predicted = label_maps.read_label_map(pred / name)
        if predicted.shape != label.shape:
            raise ValueError(
                f"{pred / name}: prediction is {predicted.shape[0]}x{predicted.shape[1]} "
                f"(HxW) but ground truth {gt / name} is {label.shape[0]}x{label.shape[1]}; "
                "score predictions at the label's original size"
            )
        _check_prediction(predicted, num_classes=num_classes, where=pred / name)
        values = label_maps.label_values(label)
        label_maps.check_label_values(
            values, num_classes=num_classes, ignore_index=ignore_index, where=str(gt / name)
        )
        if num_classes == 2 and len(gt_values_seen) <= 2:
            gt_values_seen.update(values.tolist())
        total += confusion_matrix(
            torch.from_numpy(predicted),
            torch.from_numpy(label),
            num_classes=num_classes,
            ignore_index=ignore_index,
        )
    if num_classes == 2 and ignore_index == 255 and gt_values_seen == {0, 255}:
        raise ValueError(
            f"{gt}: the ground truth holds only 0 and 255, with num_classes=2 and "
            "ignore_index=255: every 255 (foreground?) pixel would be ignored and only the "
            "background scored (the 0/255 binary-mask trap). Save foreground as 1."
        )
    scores = segmentation_scores(total)
    return {
        **scores.stats,
        "num_images": len(names),
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "reduce_zero_label": reduce_zero_label,
        "per_class": [{k: v for k, v in row.items() if k != "name"} for row in scores.per_class],
    }

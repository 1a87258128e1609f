"""``cvbench score task=segmentation``: folders of PNG label maps scored as one dataset-level
confusion matrix, as MMSegmentation's ``IoUMetric`` does.

A composition of the two bottom layers, so it lives above both: ``cvbench.data.label_maps``
reads the files and checks the ground truth's values (the same ``check_label_values`` the
datamodules use), ``cvbench.metrics.segmentation`` counts and scores (``confusion_matrix``,
``segmentation_scores``).
"""

from __future__ import annotations

import sys
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
# The K x K int64 confusion matrix (and the bincount that fills it) take 16 K^2 bytes: 268 MB at
# 4096 classes, more than the largest label sets in use (ADE20K-Full: 847; the ADE20K index: 3688).
MAX_NUM_CLASSES = 4096
LABEL_RANGE = (-(2**31), 2**31 - 1)  # label maps hold at most 32-bit values (PIL mode "I")


def _check_options(num_classes: int, ignore_index: int) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes}: expected at least 1")
    if num_classes > MAX_NUM_CLASSES:
        raise ValueError(
            f"num_classes={num_classes}: expected 1 to {MAX_NUM_CLASSES} classes (the K x K "
            "confusion matrix is held in memory)"
        )
    if not LABEL_RANGE[0] <= ignore_index <= LABEL_RANGE[1]:
        raise ValueError(
            f"ignore_index={ignore_index}: expected a label value in [{LABEL_RANGE[0]}, "
            f"{LABEL_RANGE[1]}], which a label map can hold"
        )
    if 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a class id (0..{num_classes - 1}); use a value "
            "outside them (with 0 = void: reduce_zero_label=true)"
        )


def _check_prediction(
    predicted: np.ndarray, *, num_classes: int, where: Path, reduce_zero_label: bool
) -> None:
    """ValueError naming ``where`` and the first value that is not a class id (predictions have
    no void value, unlike ground truth)."""
    bad = (predicted < 0) | (predicted >= num_classes)
    if bad.any():
        value = int(predicted[bad].flat[0])
        hint = ""
        if reduce_zero_label and value == num_classes:
            hint = (
                "; with reduce_zero_label=true the classes are 0-based: 1-based predictions "
                "(as the ADE20K devkit writes them) need 1 subtracted"
            )
        raise ValueError(
            f"{where}: prediction value {value} is not a class id 0..{num_classes - 1} "
            f"(num_classes={num_classes}); save predicted class ids (a binary mask as 0/1)"
            f"{hint}"
        )


def shift_warning(total: torch.Tensor, *, reduce_zero_label: bool) -> str | None:
    """A warning when predictions look shifted by one class against the ground truth, or None.

    Shifted means: more scored pixels are predicted as their label's class + 1 than as the class
    itself, and for most (and at least two) of the classes with ground truth (last one aside)
    the most predicted id is the class + 1. A model that is merely bad scatters its errors;
    1-based predictions scored against 0-based labels put them on that one diagonal.

    Args:
        total: (K, K) confusion matrix, ground truth in rows.
        reduce_zero_label: the ground truth was reduced (ADE20K), for the hint.

    >>> shift_warning(torch.tensor([[0, 8, 0], [1, 0, 9], [0, 0, 2]]), reduce_zero_label=False)
    ... # doctest: +ELLIPSIS
    '85.0% of the scored pixels are predicted as their class + 1, 10.0% as their class...'
    >>> shift_warning(torch.tensor([[5, 3, 0], [1, 4, 2], [0, 3, 2]]), reduce_zero_label=False)
    """
    num_classes = total.shape[0]
    scored = int(total.sum())
    same, next_ = int(total.diagonal().sum()), int(total.diagonal(1).sum())
    rows = [k for k in range(num_classes - 1) if int(total[k].sum()) > 0]
    next_most = sum(int(total[k].argmax()) == k + 1 for k in rows)
    if scored == 0 or next_ <= same or len(rows) < 2 or 2 * next_most <= len(rows):
        return None
    hint = (
        "1-based predictions (as the ADE20K devkit writes them) scored with "
        "reduce_zero_label=true? Subtract 1 from them"
        if reduce_zero_label
        else "are the predictions 1-based? Subtract 1 from them"
    )
    return (
        f"{100 * next_ / scored:.1f}% of the scored pixels are predicted as their class + 1, "
        f"{100 * same / scored:.1f}% as their class (the most predicted id of {next_most} of "
        f"{len(rows)} classes is the class + 1): {hint}"
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
        num_classes: K, the number of classes: class ids are 0..K-1 (K at most 4096).
        ignore_index: the ground truth's void value (outside 0..K-1), never scored.
        reduce_zero_label: map the ground truth as MMSegmentation does for ADE20K (0 becomes
            void, the rest minus 1) before scoring; predictions are not mapped.

    Returns:
        ``miou``, ``pixel_acc``, ``mean_acc``, ``fwiou`` (percent, None where undefined),
        ``num_images``, ``num_classes``, ``ignore_index``, ``reduce_zero_label`` and
        ``per_class``: per class id ``class_id``, ``iou``, ``acc``, ``gt_pixels``,
        ``pred_pixels``.

    Prints a ``warning:`` line on stderr when the predictions look shifted by one class
    against the ground truth (:func:`shift_warning`), as 1-based ADE20K predictions do.

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
        _check_prediction(
            predicted,
            num_classes=num_classes,
            where=pred / name,
            reduce_zero_label=reduce_zero_label,
        )
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
    warning = shift_warning(total, reduce_zero_label=reduce_zero_label)
    if warning:
        print(f"warning: {pred}: {warning}", file=sys.stderr)
    scores = segmentation_scores(total)
    return {
        **scores.stats,
        "num_images": len(names),
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "reduce_zero_label": reduce_zero_label,
        "per_class": [{k: v for k, v in row.items() if k != "name"} for row in scores.per_class],
    }

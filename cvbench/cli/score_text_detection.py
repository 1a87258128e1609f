"""``cvbench score task=text_detection``: a folder of ICDAR 2015 result files scored against the
ground-truth folder, as MMOCR's ``HmeanIOUMetric(strategy='vanilla')`` and the Robust Reading
Competition's challenge 4 script score them.

A composition of the two bottom layers, so it lives above both: ``cvbench.data.formats.
icdar2015`` reads the files, ``cvbench.metrics.text_detection`` matches and scores. As in the
RRC script (``evaluate_method``), a ground-truth image without a result file has no detection;
a result file without ground truth is an error.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvbench.data.formats.icdar2015 import gt_name, read_icdar2015
from cvbench.metrics.text_detection import TextDetectionMetric

__all__ = ["score_icdar2015_folders"]


def _stems(folder: Path, prefix: str) -> dict[str, Path]:
    """``{stem: path}`` of the ``<prefix><stem>.txt`` files directly in ``folder``.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: not a folder, no such file, or a ``.txt`` file named otherwise.
    """
    if not folder.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder))
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; task=text_detection scores folders of files")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".txt")
    odd = [p for p in files if not p.name.startswith(prefix)]
    if odd:
        raise ValueError(
            f"{odd[0]}: expected ICDAR 2015 files named {prefix}<image stem>.txt in this folder "
            f"({prefix}img_12.txt for img_12.jpg)"
        )
    if not files:
        raise ValueError(f"{folder}: no {prefix}*.txt files in this folder (sub-folders not read)")
    return {p.name[len(prefix) : -len(p.suffix)]: p for p in files}


def score_icdar2015_folders(
    gt: Path,
    pred: Path,
    *,
    iou_threshold: float = 0.5,
    ignore_threshold: float = 0.5,
    score_threshold: float = 0.0,
) -> dict[str, Any]:
    """ICDAR 2015 precision, recall and H-mean of a folder of result files (IoU > 0.5, ### ignored).

    Args:
        gt: folder of gt_<stem>.txt files (x1,y1,...,x4,y4,transcription; ### = don't care).
        pred: folder of res_<stem>.txt files (x1,y1,...,x4,y4[,score]); a ground-truth image
            without a result file counts as one without detection.
        iou_threshold: a detection matches a ground-truth region when their IoU is above it.
        ignore_threshold: a detection lying in a don't-care region by more than this share of
            its area is ignored.
        score_threshold: detections scoring below it are dropped (a line without score scores 1).

    Returns:
        ``precision``, ``recall``, ``hmean`` (in [0, 1]), ``hmean_best_thr`` and ``best_thr``
        (the best over score thresholds 0.1 to 0.9, never the plain numbers), ``num_images``,
        ``num_gt``, ``num_pred``, ``num_matched`` (counted regions), ``missing_results`` (ground
        truth without result file), the thresholds, and ``per_image``: ``[{image, num_gt,
        num_pred, num_matched, precision, recall, hmean}]`` sorted by image stem.

    Raises:
        FileNotFoundError, ValueError: a missing folder, a result file without ground truth or
            not named res_<stem>.txt, a malformed line (naming the file and line).
    """
    metric = TextDetectionMetric(
        iou_threshold=iou_threshold,
        ignore_threshold=ignore_threshold,
        score_threshold=score_threshold,
    )
    truth, results = _stems(gt, "gt_"), _stems(pred, "res_")
    extra = sorted(set(results) - set(truth))
    if extra:
        raise ValueError(
            f"{results[extra[0]]}: no ground truth {gt / gt_name(extra[0])} for this result file "
            f"({len(extra)} extra in all); expected res_<stem>.txt for each gt_<stem>.txt"
        )
    stems = sorted(truth)
    empty = {"polygons": np.zeros((0, 4, 2), np.float32), "scores": np.zeros(0, np.float32)}
    for index, stem in enumerate(stems):
        regions = read_icdar2015(truth[stem], "gt")
        found = read_icdar2015(results[stem], "res") if stem in results else empty
        metric.update(
            [torch.from_numpy(found["polygons"])],
            [torch.from_numpy(found["scores"])],
            [torch.from_numpy(regions["polygons"])],
            [torch.from_numpy(regions["ignore"])],
            torch.tensor([index]),
        )
    result = metric.compute()
    per_image = [{"image": stems[row.pop("index")], **row} for row in metric.last_per_image]
    return {
        **result,
        "num_gt": sum(row["num_gt"] for row in per_image),
        "num_pred": sum(row["num_pred"] for row in per_image),
        "num_matched": sum(row["num_matched"] for row in per_image),
        "missing_results": len(set(truth) - set(results)),
        "iou_threshold": iou_threshold,
        "ignore_threshold": ignore_threshold,
        "score_threshold": score_threshold,
        "per_image": per_image,
    }

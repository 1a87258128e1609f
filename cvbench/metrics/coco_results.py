"""Scoring a COCO results file against a COCO instances file, as pycocotools ``COCOeval`` does
(Lin et al., 2014): the files are read, checked record by record (``coco_files``), then scored
by ``coco.coco_evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from cvbench.metrics.coco import coco_evaluate
from cvbench.metrics.coco_files import check_ground_truth, check_results


def read_json(path: Path) -> Any:
    """The JSON value in ``path``.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when missing).
        ValueError: a folder, not UTF-8 or not JSON, naming the file, line and column.
    """
    if path.is_dir():
        raise ValueError(f"{path}: a folder; expected a JSON file")
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text; expected a JSON file") from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}, line {err.lineno}, column {err.colno}: invalid JSON ({err.msg})"
        ) from None


def score_coco_files(
    gt: Path,
    pred: Path,
    *,
    iou_type: Literal["bbox", "segm"] = "bbox",
    area_from: Literal["mask", "box"] = "mask",
) -> dict[str, Any]:
    """COCO stats of a results file, as pycocotools ``COCOeval`` computes them.

    Args:
        gt: COCO instances JSON file (images, annotations with area, categories).
        pred: JSON list of COCO results {"image_id", "category_id", "bbox": [x, y, w, h],
            "score"} with the ground truth's image and category ids (iou_type=segm: an RLE
            "segmentation" whose counts is a compressed string, instead of or beside the bbox).
        iou_type: overlap of boxes (bbox) or of RLE masks (segm).
        area_from: segm only: a detection's area, which decides map_small / medium / large,
            from its mask (default; detectron2, MMDetection) or from its bbox (box: what
            pycocotools' loadRes does when the results carry one; each result needs a bbox).

    Returns:
        The 12 ``COCO_STATS`` (percent, None where pycocotools gives -1), ``num_images`` (all
        images of the ground truth), ``num_detections``, ``iou_type`` and for segm
        ``area_from``.

    Raises:
        OSError: a file cannot be read.
        ValueError: a file is not JSON or a record is malformed; names the file and record.
    """
    truth = read_json(gt)
    check_ground_truth(truth, where=str(gt), iou_type=iou_type)
    results = read_json(pred)
    check_results(results, truth, where=str(pred), iou_type=iou_type, area_from=area_from)
    scores = coco_evaluate(truth, results, iou_type=iou_type, area_from=area_from)
    protocol = {"iou_type": iou_type} | ({"area_from": area_from} if iou_type == "segm" else {})
    return {
        **scores.stats,
        "num_images": len(truth["images"]),
        "num_detections": len(results),
        **protocol,
    }

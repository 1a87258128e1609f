"""``cvbench score``: score a predictions file against ground truth, as the task's devkit does.

classification (ILSVRC devkit, ``eval_flat.m``): ``--gt`` has one integer class id per line;
``--pred`` has, for each image in the same order, up to 5 integer class ids, best first.
Prints ``{"num_images": N, "top1_error": ..., "top5_error": ...}`` (errors in percent).

detection (COCO, pycocotools ``COCOeval``): ``--gt`` is a COCO instances JSON file, ``--pred``
a JSON list of COCO results ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
(``--iou-type segm``: an RLE ``segmentation`` instead of the bbox). Prints the 12 COCO stats
(percent, null where pycocotools gives -1), ``num_images``, ``num_detections`` and ``iou_type``.

Either way the same JSON goes to ``--out`` when given.

Exit status: 0 on success; 1 when an input file is missing or malformed (one line
``error: <file>, line <n>: ...`` on stderr, no traceback; ``CVBENCH_TRACEBACK=1`` re-raises),
as for ``cvbench train`` and ``cvbench eval``; 2 for a wrong command line (argparse).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cvbench.cli.errors import EXIT_BAD_INPUT, reported_errors
from cvbench.metrics.classification import guesses_rank, topk_error
from cvbench.metrics.coco import coco_evaluate
from cvbench.metrics.coco_files import IOU_TYPES, check_ground_truth, check_results
from cvbench.metrics.ilsvrc_files import read_submission
from cvbench.run.outputs import write_json

__all__ = ["EXIT_BAD_INPUT", "main", "score_classification", "score_detection"]


def score_classification(gt: Path, pred: Path) -> dict[str, Any]:
    """ILSVRC top-1 and top-5 error (percent, float64) of a ranked-guesses file.

    Args:
        gt: N lines, one class id each.
        pred: N lines, 1 to 5 class ids each, best first.

    Returns:
        ``{"top1_error": float, "top5_error": float, "num_images": N}``.
    """
    labels, guesses = read_submission(gt, pred, max_guesses=5)
    ranks = guesses_rank(guesses, labels)
    return {
        "top1_error": topk_error(ranks, 1),
        "top5_error": topk_error(ranks, 5),
        "num_images": len(labels),
    }


def read_json(path: Path) -> Any:
    """The JSON value in ``path``.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when missing).
        ValueError: not UTF-8 or not JSON, naming the file, line and column.
    """
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


def score_detection(gt: Path, pred: Path, *, iou_type: str = "bbox") -> dict[str, Any]:
    """COCO stats of a results file, as pycocotools ``COCOeval`` computes them.

    Args:
        gt: COCO instances JSON (images, annotations with ``area``, categories).
        pred: JSON list of COCO results with the ground truth's image and category ids.
        iou_type: ``bbox`` or ``segm``.

    Returns:
        The 12 ``COCO_STATS`` (percent, None where undefined), ``num_images`` (all images of
        the ground truth), ``num_detections`` and ``iou_type``.
    """
    truth = read_json(gt)
    check_ground_truth(truth, where=str(gt), iou_type=iou_type)
    results = read_json(pred)
    check_results(results, truth, where=str(pred), iou_type=iou_type)
    scores = coco_evaluate(truth, results, iou_type=iou_type)
    return {
        **scores.stats,
        "num_images": len(truth["images"]),
        "num_detections": len(results),
        "iou_type": iou_type,
    }


SCORERS: dict[str, Callable[..., dict[str, Any]]] = {
    "classification": score_classification,
    "detection": score_detection,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; argparse exits 2 on a wrong one."""
    parser = argparse.ArgumentParser(
        prog="cvbench score",
        description="Score a predictions file against ground truth, as the task's devkit does.",
        epilog=(
            "classification: GT has one integer class id per line; PRED has, per image in the "
            "same order, up to 5 class ids separated by whitespace, best first (ILSVRC devkit). "
            "detection: GT is a COCO instances JSON file, PRED a JSON list of COCO results "
            "(pycocotools COCOeval). "
            "Exit status: 0 scored, 1 missing or malformed input file, 2 wrong command line."
        ),
    )
    parser.add_argument("--task", required=True, choices=sorted(SCORERS))
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth file")
    parser.add_argument("--pred", required=True, type=Path, help="predictions file")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--iou-type",
        choices=IOU_TYPES,
        help="detection: overlap of boxes (bbox, the default) or of RLE masks (segm)",
    )
    args = parser.parse_args(argv)
    if args.iou_type is not None and args.task != "detection":
        parser.error("--iou-type applies to --task detection only")
    return args


def main(argv: list[str]) -> None:
    """Score, write the JSON result to ``--out`` when given, and print it."""
    args = parse_args(argv)
    with reported_errors():
        if args.task == "detection":
            result = score_detection(args.gt, args.pred, iou_type=args.iou_type or "bbox")
        else:
            result = SCORERS[args.task](args.gt, args.pred)
        if args.out is not None:
            write_json(args.out, result)
    print(json.dumps(result, indent=2, sort_keys=True))

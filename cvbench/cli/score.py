"""``cvbench score``: score a predictions file against ground truth, as the task's devkit does.

classification (ILSVRC devkit, ``eval_flat.m``): ``--gt`` has one integer class id per line;
``--pred`` has, for each image in the same order, up to 5 integer class ids, best first.
Prints ``{"num_images": N, "top1_error": ..., "top5_error": ...}`` (errors in percent).

detection (COCO, pycocotools ``COCOeval``): ``--gt`` is a COCO instances JSON file, ``--pred``
a JSON list of COCO results ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
(``--iou-type segm``: an RLE ``segmentation`` instead of the bbox). Prints the 12 COCO stats
(percent, null where pycocotools gives -1), ``num_images``, ``num_detections`` and ``iou_type``.

segmentation (MMSegmentation ``IoUMetric``: one confusion matrix over all pixels of all images):
``--gt`` and ``--pred`` are folders of single-channel PNG label maps (gray, palette read as
indices, or 16-bit), matched by file name; only the ``*.png`` files directly in each folder
count (not sub-folders), and both folders must hold the same names. ``--num-classes N`` is
required; prediction values must be in 0..N-1, ground-truth values in 0..N-1 or
``--ignore-index`` (default 255, never scored); ``--reduce-zero-label`` maps the ground truth
only (ADE20K: 0 becomes ignore, the rest minus 1). Each prediction has its label's size.
Prints ``miou``, ``pixel_acc``, ``mean_acc``, ``fwiou`` (percent, null where undefined),
``num_images``, ``per_class`` and the options used.

restoration (BasicSR ``calculate_psnr`` / ``calculate_ssim``, see ``score_restoration``): ``--gt``
and ``--pred`` are folders of 8-bit images matched by file name; ``--color y|rgb`` (default
``y``, the Y of BT.601) and ``--crop-border N`` (default 0). Prints the mean ``psnr`` (dB) and
``ssim``, ``num_images``, the options and ``per_image`` (``name``, ``psnr``, ``ssim``).

In every case the same JSON goes to ``--out`` when given.

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

import numpy as np
import torch

from cvbench.cli.errors import EXIT_BAD_INPUT, reported_errors
from cvbench.cli.folders import FolderKind, matched_names
from cvbench.cli.score_restoration import score_restoration
from cvbench.data import label_maps
from cvbench.files import write_json
from cvbench.metrics.classification import guesses_rank, topk_error
from cvbench.metrics.coco import coco_evaluate
from cvbench.metrics.coco_files import IOU_TYPES, check_ground_truth, check_results
from cvbench.metrics.ilsvrc_files import read_submission
from cvbench.metrics.restoration import COLORS
from cvbench.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = [
    "EXIT_BAD_INPUT",
    "main",
    "score_classification",
    "score_detection",
    "score_restoration",
    "score_segmentation",
]


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


LABEL_MAPS = FolderKind(
    task="segmentation",
    suffixes=(".png",),
    files="label maps",
    described="*.png label maps",
    prediction="prediction",
)


def _check_values(
    values: np.ndarray, *, num_classes: int, ignore_index: int | None, where: Path
) -> None:
    """ValueError naming ``where`` and the first value that is neither a class id nor
    ``ignore_index`` (None: predictions, which have no void). Not ``check_label_values``, whose
    fix names the training config keys rather than these options."""
    bad = (values < 0) | (values >= num_classes)
    if ignore_index is not None:
        bad &= values != ignore_index
    if not bad.any():
        return
    value = int(values[bad].flat[0])
    if ignore_index is None:
        raise ValueError(
            f"{where}: prediction value {value} is not a class id 0..{num_classes - 1} "
            f"(--num-classes {num_classes}); save predicted class ids (a binary mask as 0/1)"
        )
    raise ValueError(
        f"{where}: label value {value} is neither a class id 0..{num_classes - 1} "
        f"(--num-classes {num_classes}) nor --ignore-index {ignore_index}"
        + ("" if value != num_classes else " (0 = void, as in ADE20K? --reduce-zero-label)")
    )


def score_segmentation(
    gt: Path,
    pred: Path,
    *,
    num_classes: int,
    ignore_index: int = 255,
    reduce_zero_label: bool = False,
) -> dict[str, Any]:
    """Dataset-level mIoU and co. of a folder of predicted label maps (MMSeg ``IoUMetric``).

    Args:
        gt: folder of ground-truth PNG label maps (``*.png`` directly inside).
        pred: folder of predicted PNG label maps, the same file names, each its label's size.
        num_classes: K; predictions must be in 0..K-1.
        ignore_index: the ground truth's void value (outside 0..K-1), never scored.
        reduce_zero_label: map the ground truth as MMSeg does for ADE20K (0 becomes
            ``ignore_index``, the rest minus 1) before scoring; predictions are not mapped.

    Returns:
        ``miou``, ``pixel_acc``, ``mean_acc``, ``fwiou`` (percent, None where undefined),
        ``num_images``, ``num_classes``, ``ignore_index``, ``reduce_zero_label`` and
        ``per_class``: per class id ``class_id``, ``iou``, ``acc``, ``gt_pixels``,
        ``pred_pixels``.

    Raises:
        FileNotFoundError, ValueError: a missing folder or file, an extra file, a size
            mismatch, an unreadable or RGB PNG, or an out-of-range value; naming the file.
    """
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
        _check_values(predicted, num_classes=num_classes, ignore_index=None, where=pred / name)
        _check_values(label, num_classes=num_classes, ignore_index=ignore_index, where=gt / name)
        if num_classes == 2 and len(gt_values_seen) <= 2:
            gt_values_seen.update(label_maps.label_values(label).tolist())
        total += confusion_matrix(
            torch.from_numpy(predicted),
            torch.from_numpy(label),
            num_classes=num_classes,
            ignore_index=ignore_index,
        )
    if num_classes == 2 and ignore_index == 255 and gt_values_seen == {0, 255}:
        raise ValueError(
            f"{gt}: the ground truth holds only 0 and 255, with --num-classes 2 and "
            "--ignore-index 255: every 255 (foreground?) pixel would be ignored and only the "
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


SCORERS: dict[str, Callable[..., dict[str, Any]]] = {
    "classification": score_classification,
    "detection": score_detection,
    "segmentation": score_segmentation,
    "restoration": score_restoration,
}

# Options of one task only: flag -> (task, attribute of the parsed arguments).
TASK_OPTIONS = {
    "--iou-type": ("detection", "iou_type"),
    "--num-classes": ("segmentation", "num_classes"),
    "--ignore-index": ("segmentation", "ignore_index"),
    "--reduce-zero-label": ("segmentation", "reduce_zero_label"),
    "--color": ("restoration", "color"),
    "--crop-border": ("restoration", "crop_border"),
}


def _parser() -> argparse.ArgumentParser:
    """The argument parser of ``cvbench score``: every task's options."""
    parser = argparse.ArgumentParser(
        prog="cvbench score",
        description="Score a predictions file against ground truth, as the task's devkit does.",
        epilog=(
            "classification: GT has one integer class id per line; PRED has, per image in the "
            "same order, up to 5 class ids separated by whitespace, best first (ILSVRC devkit). "
            "detection: GT is a COCO instances JSON file, PRED a JSON list of COCO results "
            "(pycocotools COCOeval). "
            "segmentation: GT and PRED are folders of single-channel PNG label maps matched by "
            "file name (the *.png directly inside, not sub-folders), scored as one dataset-level "
            "confusion matrix (MMSegmentation IoUMetric); needs --num-classes. "
            "restoration: GT and PRED are folders of 8-bit images matched by file name, scored "
            "per image by PSNR and SSIM after rounding to 8 bits (BasicSR). "
            "Exit status: 0 scored, 1 missing or malformed input file, 2 wrong command line."
        ),
    )
    parser.add_argument("--task", required=True, choices=sorted(SCORERS))
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth file or folder")
    parser.add_argument("--pred", required=True, type=Path, help="predictions file or folder")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--iou-type",
        choices=IOU_TYPES,
        help="detection: overlap of boxes (bbox, the default) or of RLE masks (segm)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        metavar="N",
        help="segmentation (required): class ids are 0..N-1",
    )
    parser.add_argument(
        "--ignore-index",
        type=int,
        metavar="V",
        help="segmentation: the ground truth's void value, never scored (default 255)",
    )
    parser.add_argument(
        "--reduce-zero-label",
        action="store_true",
        help="segmentation: ground truth 0 becomes void and the rest minus 1 (ADE20K, as "
        "MMSegmentation); predictions are not mapped",
    )
    parser.add_argument(
        "--color",
        choices=COLORS,
        help="restoration: score the Y of BT.601 YCbCr (y, the default, the SR papers') or RGB",
    )
    parser.add_argument(
        "--crop-border",
        type=int,
        metavar="N",
        help="restoration: pixels removed from each side before scoring (default 0; SR papers: "
        "the scale)",
    )
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; argparse exits 2 on a wrong one."""
    parser = _parser()
    args = parser.parse_args(argv)
    for flag, (task, attribute) in TASK_OPTIONS.items():
        value = getattr(args, attribute)
        if value is not None and value is not False and args.task != task:
            parser.error(f"{flag} applies to --task {task} only")
    if args.task == "restoration":
        args.color = args.color or "y"
        args.crop_border = 0 if args.crop_border is None else args.crop_border
        if args.crop_border < 0:
            parser.error(f"--crop-border {args.crop_border}: expected 0 or more")
    if args.task != "segmentation":
        return args
    if args.num_classes is None:
        parser.error("--task segmentation needs --num-classes")
    if args.num_classes < 1:
        parser.error(f"--num-classes {args.num_classes}: expected at least 1")
    if args.ignore_index is None:
        args.ignore_index = 255
    if 0 <= args.ignore_index < args.num_classes:
        parser.error(
            f"--ignore-index {args.ignore_index} is a class id (0..{args.num_classes - 1}); "
            "use a value outside them (with 0 = void: --reduce-zero-label)"
        )
    return args


def main(argv: list[str]) -> None:
    """Score, write the JSON result to ``--out`` when given, and print it."""
    args = parse_args(argv)
    with reported_errors():
        if args.task == "detection":
            result = score_detection(args.gt, args.pred, iou_type=args.iou_type or "bbox")
        elif args.task == "segmentation":
            result = score_segmentation(
                args.gt,
                args.pred,
                num_classes=args.num_classes,
                ignore_index=args.ignore_index,
                reduce_zero_label=args.reduce_zero_label,
            )
        elif args.task == "restoration":
            result = score_restoration(
                args.gt, args.pred, color=args.color, crop_border=args.crop_border
            )
        else:
            result = SCORERS[args.task](args.gt, args.pred)
        if args.out is not None:
            write_json(args.out, result)
    print(json.dumps(result, indent=2, sort_keys=True))

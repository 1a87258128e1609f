"""``cvbench score``: score a predictions file against ground truth, as the task's devkit does.

classification (ILSVRC devkit, ``eval_flat.m``): ``--gt`` has one integer class id per line;
``--pred`` has, for each image in the same order, up to 5 integer class ids, best first.
Prints ``{"num_images": N, "top1_error": ..., "top5_error": ...}`` (errors in percent) and
writes the same JSON to ``--out`` when given.

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
from cvbench.metrics.ilsvrc_files import read_submission
from cvbench.run.outputs import write_json

__all__ = ["EXIT_BAD_INPUT", "main", "score_classification"]


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


SCORERS: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "classification": score_classification,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; argparse exits 2 on a wrong one."""
    parser = argparse.ArgumentParser(
        prog="cvbench score",
        description="Score a predictions file against ground truth, as the task's devkit does.",
        epilog=(
            "classification: GT has one integer class id per line; PRED has, per image in the "
            "same order, up to 5 class ids separated by whitespace, best first (ILSVRC devkit). "
            "Exit status: 0 scored, 1 missing or malformed input file, 2 wrong command line."
        ),
    )
    parser.add_argument("--task", required=True, choices=sorted(SCORERS))
    parser.add_argument("--gt", required=True, type=Path, help="ground-truth file")
    parser.add_argument("--pred", required=True, type=Path, help="predictions file")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Score, write the JSON result to ``--out`` when given, and print it."""
    args = parse_args(argv)
    with reported_errors():
        result = SCORERS[args.task](args.gt, args.pred)
        if args.out is not None:
            write_json(args.out, result)
    print(json.dumps(result, indent=2, sort_keys=True))

"""Readers of the ILSVRC devkit's plain-text classification files (Russakovsky et al., 2015).

The devkit's convention (``evaluation/eval_flat.m``): the ground-truth file has one integer
class id per line, one line per image; a submission has, for each image in the same order,
one line of up to 5 integer class ids separated by whitespace, best guess first. The devkit's
ids are 1-based (1..1000); these readers take any non-negative id, so 0-based label files
work too as long as both files use the same ids.

Strict about the layout, because a silent shift of one line scores every image against the
wrong label: a final newline is allowed, any other empty line is an error, and every error
names the file and the 1-based line number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cvbench.metrics.classification import guesses_rank, topk_error

PAD = -1  # fills rows of ``read_guesses`` with fewer guesses than ``max_guesses``
MAX_ID = torch.iinfo(torch.int64).max - 1  # int64 max is ``NOT_RANKED`` in classification.py
_INTEGER = re.compile(r"[+-]?[0-9]+")


class IlsvrcFileError(ValueError):
    """A ground-truth or predictions file does not follow the devkit's layout.

    The message reads ``<path>, line <n>: <problem>; expected <what>``.

    Attributes:
        path: the file.
        line: 1-based line number, or None when the problem is the whole file.
    """

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


def _lines(path: Path) -> list[str]:
    """The file's lines without line endings; one final newline does not make an extra line.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when missing).
        IlsvrcFileError: the file is empty or not ASCII text.
    """
    data = path.read_bytes()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise IlsvrcFileError(
            path, line, f"byte 0x{data[err.start]:02x} is not ASCII; expected a text file"
        ) from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise IlsvrcFileError(path, None, "file is empty; expected one line per image")
    return lines  # a "\r" of CRLF endings is whitespace to str.split


def _parse_ids(path: Path, number: int, line: str, expected: str) -> list[int]:
    """Integer ids on one line (1-based ``number``), each checked to be in [0, MAX_ID]."""
    tokens = line.split()
    if not tokens:
        raise IlsvrcFileError(path, number, f"empty line; expected {expected}")
    ids = []
    for token in tokens:
        if not _INTEGER.fullmatch(token):
            raise IlsvrcFileError(
                path, number, f"{token!r} is not an integer class id; expected {expected}"
            )
        value = int(token)
        if value < 0:
            raise IlsvrcFileError(path, number, f"negative class id {value}; expected ids >= 0")
        if value > MAX_ID:
            raise IlsvrcFileError(
                path, number, f"class id {value} is too large; expected ids <= {MAX_ID}"
            )
        ids.append(value)
    return ids


def read_labels(path: str | Path) -> Tensor:
    """Ground-truth class ids, one integer per line.

    Args:
        path: text file with one non-negative integer class id per line (N lines).

    Returns:
        (N,) int64 class ids, in file order.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when missing).
        IlsvrcFileError: an empty line, a non-integer or negative id, or more than one id
            on a line; the message names the file and the 1-based line number.
    """
    path = Path(path)
    expected = "one integer class id per line"
    labels = []
    for number, line in enumerate(_lines(path), start=1):
        ids = _parse_ids(path, number, line, expected)
        if len(ids) != 1:
            raise IlsvrcFileError(path, number, f"{len(ids)} values; expected {expected}")
        labels.append(ids[0])
    return torch.tensor(labels, dtype=torch.int64)


def read_guesses(path: str | Path, max_guesses: int = 5) -> Tensor:
    """Ranked guesses, one line per image with up to ``max_guesses`` class ids, best first.

    Args:
        path: text file of N lines, each with 1 to ``max_guesses`` non-negative integer
            class ids separated by whitespace.
        max_guesses: most ids allowed on a line (5 in ILSVRC).

    Returns:
        (N, max_guesses) int64 class ids, best first; rows with fewer guesses are padded
        with ``PAD`` (-1), the padding ``guesses_rank`` expects.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when missing).
        IlsvrcFileError: an empty line, a non-integer or negative id, or more than
            ``max_guesses`` ids on a line; the message names the file and the line number.
    """
    path = Path(path)
    expected = f"1 to {max_guesses} integer class ids per line, best first"
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        ids = _parse_ids(path, number, line, expected)
        if len(ids) > max_guesses:
            raise IlsvrcFileError(path, number, f"{len(ids)} guesses; expected {expected}")
        rows.append(ids + [PAD] * (max_guesses - len(ids)))
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), max_guesses)


def read_submission(
    gt: str | Path, pred: str | Path, max_guesses: int = 5
) -> tuple[Tensor, Tensor]:
    """Ground truth and guesses for the same images, checked to have one line each.

    Args:
        gt: ground-truth file, as for ``read_labels``.
        pred: predictions file, as for ``read_guesses``.
        max_guesses: most guesses per image.

    Returns:
        labels (N,) int64 and guesses (N, max_guesses) int64 padded with -1.

    Raises:
        OSError: a file cannot be read.
        IlsvrcFileError: as ``read_labels`` and ``read_guesses``, or the two files have
            different numbers of lines (the message gives both counts and the first line
            that has no partner).
    """
    gt, pred = Path(gt), Path(pred)
    labels = read_labels(gt)
    guesses = read_guesses(pred, max_guesses)
    n_gt, n_pred = len(labels), len(guesses)
    if n_pred != n_gt:
        first = min(n_gt, n_pred) + 1
        if n_pred < n_gt:
            unmatched = f"line {first} of {gt} has no guesses"
        else:
            unmatched = f"line {first} of {pred} has no label"
        raise IlsvrcFileError(
            pred,
            None,
            f"{n_pred} lines of guesses but {gt} has {n_gt} labels ({unmatched}); "
            f"expected one line of guesses per image, in the order of {gt}",
        )
    return labels, guesses


def score_ilsvrc_files(gt: Path, pred: Path) -> dict[str, Any]:
    """ILSVRC top-1 and top-5 error of a ranked-guesses file, as the devkit's ``eval_flat.m``.

    Args:
        gt: ground-truth file: N lines, one integer class id each.
        pred: predictions file: N lines, each 1 to 5 integer class ids separated by
            whitespace, best first, for the images in the order of gt.

    Returns:
        ``{"top1_error": float, "top5_error": float, "num_images": N}``, errors in percent
        (float64).

    Raises:
        OSError: a file cannot be read (FileNotFoundError when missing).
        IlsvrcFileError: a file breaks the devkit's layout; names the file and the line.
    """
    labels, guesses = read_submission(gt, pred, max_guesses=5)
    ranks = guesses_rank(guesses, labels)
    return {
        "top1_error": topk_error(ranks, 1),
        "top5_error": topk_error(ranks, 5),
        "num_images": len(labels),
    }

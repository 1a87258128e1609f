"""ICDAR 2015 incidental scene text files: ``gt_<stem>.txt`` ground truth and ``res_<stem>.txt``
results, one quadrilateral per line.

The format of the Robust Reading Competition's challenge 4 (its ``rrc_evaluation_funcs.py``,
``get_tl_line_values`` with ``LTRB=False``): ``x1,y1,x2,y2,x3,y3,x4,y4`` pixel coordinates (the
corners clockwise from the top-left one), then in ground truth the transcription, which may
hold commas (everything after the 8th comma) and is ``###`` for a "don't care" region; a
transcription in double quotes is unquoted (``\\"`` and ``\\\\`` escapes), as the competition's
script does. Result lines may add a confidence and/or a transcription: a numeric 9th value is
the score, anything else a transcription. Files are UTF-8 with or without a byte-order mark
(the official ground truth has one), ``\\r\\n`` or ``\\n`` line ends; blank lines are skipped.
Coordinates are read as floats (the competition writes integers; detectors often do not).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

import numpy as np

from cvbench.data.formats.transcriptions import decode_lines
from cvbench.files import write_text

__all__ = ["DONT_CARE", "gt_name", "read_icdar2015", "res_name", "write_icdar2015_result"]

DONT_CARE = "###"
QUOTED = re.compile(r'^\s*"(.*)"\s*$')
EXPECTED = {
    "gt": "expected x1,y1,x2,y2,x3,y3,x4,y4,transcription (8 numbers, then the text)",
    "res": "expected x1,y1,x2,y2,x3,y3,x4,y4[,score] (8 numbers, then an optional score)",
}


def gt_name(stem: str) -> str:
    """The ground-truth file name of image ``stem`` (``img_12`` -> ``gt_img_12.txt``)."""
    return f"gt_{stem}.txt"


def res_name(stem: str) -> str:
    """The result file name of image ``stem`` (``img_12`` -> ``res_img_12.txt``)."""
    return f"res_{stem}.txt"


def _number(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _unquoted(text: str) -> str:
    """A transcription without its double quotes, escapes resolved (as the RRC script does)."""
    match = QUOTED.match(text)
    if match is None:
        return text
    return match.group(1).replace("\\\\", "\\").replace('\\"', '"')


def read_icdar2015(path: Path | str, kind: Literal["gt", "res"]) -> dict[str, object]:
    """The regions of one ICDAR 2015 ground-truth or result file.

    Args:
        path: the file.
        kind: ``"gt"`` (the text after the coordinates is the transcription) or ``"res"``
            (an optional numeric score, then an optional transcription).

    Returns:
        ``polygons``: (N, 4, 2) float32 xy pixels, in file order; ``texts``: N transcriptions
        (``""`` where a result gives none); ``ignore``: (N,) bool, True for ``###`` ground
        truth (always False for results); ``scores``: (N,) float32, a result's score (1.0 where
        none is given; 1.0 for ground truth).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a non-UTF-8 file, a line with fewer than 8 coordinates or a coordinate (or
            score) that is not a finite number; one line naming the file and the line number.
    """
    if kind not in EXPECTED:
        raise ValueError(f"read_icdar2015: kind={kind!r}; expected 'gt' or 'res'")
    path = Path(path)
    polygons, texts, ignore, scores = [], [], [], []
    for number, line in enumerate(decode_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        fields = line.split(",")
        coords = [_number(field) for field in fields[:8]]
        if len(coords) < 8 or None in coords:
            numeric = next((i for i, c in enumerate(coords) if c is None), len(coords))
            if numeric < len(coords):
                problem = f"value {numeric + 1} {fields[numeric].strip()!r} is not a number"
            else:
                problem = f"{len(fields)} values"
            raise ValueError(
                f"{where}: {problem}, so fewer than 8 coordinates (a polygon of 4 points); "
                f"{EXPECTED[kind]}"
            )
        score, text = 1.0, ",".join(fields[8:])
        if kind == "res" and len(fields) > 8:
            value = _number(fields[8])
            if value is not None:
                score, text = value, ",".join(fields[9:])
            elif fields[8].strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity"):
                raise ValueError(f"{where}: score {fields[8].strip()!r}; expected a finite number")
        text = _unquoted(text)
        polygons.append(coords)
        texts.append(text)
        ignore.append(kind == "gt" and text.strip() == DONT_CARE)
        scores.append(score)
    return {
        "polygons": np.asarray(polygons, dtype=np.float32).reshape(-1, 4, 2),
        "texts": texts,
        "ignore": np.asarray(ignore, dtype=bool),
        "scores": np.asarray(scores, dtype=np.float32),
    }


def write_icdar2015_result(
    path: Path | str, polygons: np.ndarray, scores: np.ndarray | None = None
) -> None:
    """Write an ICDAR 2015 result file atomically: ``x1,y1,...,x4,y4[,score]`` per region.

    Coordinates are rounded to integers (the competition's script reads integers only); scores
    are written with 6 decimals.

    Args:
        path: the file (``res_<stem>.txt``; its folder is created).
        polygons: (N, 4, 2) xy pixels (N may be 0: an empty file, no detection).
        scores: (N,) confidences, or None to write coordinates only.

    Raises:
        ValueError: shapes that disagree or a value that is not finite.
    """
    points = np.asarray(polygons, dtype=np.float64).reshape(-1, 8)
    if np.asarray(polygons).size and np.asarray(polygons).shape[-2:] != (4, 2):
        raise ValueError(f"{path}: polygons of shape {np.shape(polygons)}; expected (N, 4, 2)")
    if not np.isfinite(points).all():
        raise ValueError(f"{path}: a polygon coordinate is not finite")
    lines = [",".join(str(int(v)) for v in np.rint(row)) for row in points]
    if scores is not None:
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(values) != len(points) or not np.isfinite(values).all():
            raise ValueError(
                f"{path}: {len(values)} scores for {len(points)} polygons; expected one finite "
                "score per polygon"
            )
        lines = [f"{line},{score:.6f}" for line, score in zip(lines, values, strict=True)]
    write_text(Path(path), "".join(f"{line}\n" for line in lines))

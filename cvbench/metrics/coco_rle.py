"""Checks of COCO segmentations from outside (polygons, RLE) before pycocotools or
faster-coco-eval read them.

COCO's run-length encoding (pycocotools ``maskApi.c``): a mask of h x w pixels, read in
column-major order, as alternating runs of 0s and 1s, the first of 0s; the runs sum to h * w.
``counts`` is a list of the runs (the "uncompressed" RLE of crowd annotations) or a string
(the compressed RLE ``mask.encode`` writes): each run, less the run two before it from the
fourth run on, in 5-bit groups, least significant first, each group plus 48 as one character
in ``0``..``o``, bit 0x20 set on every group but a number's last, bit 0x10 of the last the sign.

Neither engine checks this: a string cut short reads past its end, runs that sum to more than
h * w are refused without the file's name, and runs that sum to less leave pixels undefined
(faster-coco-eval hung on such a crowd region). So the counts are decoded here, in numpy, and
checked to be non-negative runs summing to h * w.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CHARS = (48, 48 + 63)  # the bytes of a compressed RLE string: "0" .. "o"


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def decode_counts(counts: str) -> np.ndarray:
    """The runs of a compressed RLE string, as pycocotools' ``rleFrString`` reads them.

    Args:
        counts: the string of a COCO RLE, as ``mask.encode(...)["counts"].decode()``.

    Returns:
        (N,) int64 runs, alternately of 0s and 1s, the first of 0s.

    Raises:
        ValueError: a character outside ``0``..``o``, or a string ending inside a number.

    A 4 x 5 mask of 1s in rows 1-2, columns 1-3 (``mask.encode`` gives ``b"5220003"``):

    >>> decode_counts("5220003").tolist(), decode_counts("").tolist()
    ([5, 2, 2, 2, 2, 2, 5], [])
    """
    codes = np.frombuffer(counts.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    bad = (codes < CHARS[0]) | (codes > CHARS[1])
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"counts has {counts.encode('utf-8')[at : at + 1]!r} at byte {at}; a compressed "
            "RLE string holds only the characters '0' to 'o'"
        )
    codes -= CHARS[0]
    last = (codes & 0x20) == 0  # a number's last group
    if codes.size and not last[-1]:
        raise ValueError("counts ends inside a number; the RLE string is cut short")
    if not codes.size:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    # A number's groups: 5 bits each, least significant first. No run of a real mask needs more
    # than 7 groups (2^34 pixels), and more would overflow int64.
    lengths = ends - starts + 1
    if lengths.max() > 7:
        i = int(np.argmax(lengths > 7))
        raise ValueError(f"counts run {i} has {int(lengths[i])} 5-bit groups; no mask is so large")
    k = np.arange(codes.size) - np.repeat(starts, lengths)
    runs = np.add.reduceat((codes & 0x1F) << (5 * k), starts)
    negative = (codes[ends] & 0x10) != 0  # the sign bit of a number's last group
    runs[negative] -= np.left_shift(1, 5 * lengths[negative])
    # From the fourth run on, the string holds the difference to the run two before.
    runs[2::2] = np.cumsum(runs[2::2])
    runs[3::2] = np.cumsum(runs[3::2]) + (runs[1] if runs.size > 1 else 0)
    return runs


def rle_problem(rle: Any, size: list[int], *, compressed_only: bool = False) -> str | None:
    """Why ``rle`` is not a COCO RLE of an image of ``size`` [height, width], or None.

    Args:
        rle: the ``segmentation`` value.
        size: the image's [height, width].
        compressed_only: a string ``counts`` only (what pycocotools' ``loadRes`` reads in a
            results file); else a list of runs is accepted too (crowd annotations).
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        return 'segmentation is not an RLE {"size": [height, width], "counts": ...}'
    if (
        not isinstance(rle["size"], list)
        or len(rle["size"]) != 2
        or not all(map(is_int, rle["size"]))
    ):
        return f"segmentation size {rle['size']!r} is not [height, width] of 2 integers"
    if rle["size"] != size:
        return f"segmentation size {rle['size']} is not the image's [height, width] {size}"
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            runs = decode_counts(counts)
        except ValueError as err:
            return f"segmentation {err}"
    elif isinstance(counts, list) and not compressed_only:
        if not all(map(is_int, counts)):
            return "segmentation counts is a list with a non-integer; expected run lengths"
        runs = np.asarray(counts, dtype=np.int64) if counts else np.zeros(0, np.int64)
    elif isinstance(counts, list):
        return (
            "segmentation counts is a list (an uncompressed RLE); results need the compressed "
            "RLE string of pycocotools' mask.encode"
        )
    else:
        return f"segmentation counts is a JSON {type(counts).__name__}; expected an RLE string"
    if runs.size and runs.min() < 0:
        return f"segmentation counts has a negative run ({int(runs.min())})"
    pixels = size[0] * size[1]
    if int(runs.sum()) != pixels:
        return (
            f"segmentation counts runs sum to {int(runs.sum())} pixels; expected height x width "
            f"= {pixels}"
        )
    return None


def polygon_problem(polygons: list) -> str | None:
    """Why ``polygons`` is not a list of COCO polygons [x0, y0, x1, y1, ...] of finite
    numbers, or None (pycocotools accepts any even length)."""
    for k, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or len(polygon) % 2:
            return f"segmentation polygon {k} is not a list [x0, y0, x1, y1, ...] of x, y pairs"
        for value in polygon:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"segmentation polygon {k} holds {value!r}; expected numbers"
            if not math.isfinite(value):
                return f"segmentation polygon {k} holds {value!r}; expected finite numbers"
    return None


def segmentation_problem(segmentation: Any, size: list[int]) -> str | None:
    """Why a ground-truth ``segmentation`` (polygons or RLE) is not one pycocotools reads for
    an image of ``size`` [height, width], or None."""
    if isinstance(segmentation, list):
        return polygon_problem(segmentation)
    if isinstance(segmentation, dict):
        return rle_problem(segmentation, size)
    return (
        f"segmentation is a JSON {type(segmentation).__name__}; expected polygons "
        '[[x0, y0, x1, y1, ...], ...] or an RLE {"size", "counts"}'
    )

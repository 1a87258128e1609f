"""DBNet's training targets and its box extraction (Liao et al., "Real-time Scene Text Detection
with Differentiable Binarization", AAAI 2020, Sec. 3.3 "Label generation" and "Deformable
convolution / inference"; the conventions of MhLiao/DB and MMOCR's ``DBModuleLoss`` and
``DBPostprocessor``).

- Probability map target: each "care" polygon shrunk by D = A (1 - r^2) / L (A its area, L its
  perimeter, r = 0.4) with the Vatti clipping of pyclipper, filled with 1; its mask is 0 over
  "don't care" ("###") polygons, polygons whose minimum-area rectangle is thinner than
  ``min_text_size`` pixels and polygons that vanish when shrunk.
- Threshold map target: inside each care polygon dilated by the same D, 1 - (distance to the
  polygon's nearest edge) / D clipped to [0, 1], the maximum over polygons, then rescaled to
  [thresh_min, thresh_max] (0.3, 0.7); its mask is the union of the dilated polygons.
- Boxes: P binarized at ``binary_threshold``, each contour scored by the mean of P inside it,
  kept from ``box_threshold``, dilated by D' = A' r' / L' (r' = ``unclip_ratio``, 1.5) and
  replaced by its minimum-area rectangle, as 4 corners clockwise from the top-left.

Pixel centres are at integer coordinates (OpenCV's convention). Everything is numpy on one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

# pyclipper works on integers: coordinates are scaled by this before clipping.
CLIPPER_SCALE = 256.0
# cv2.fillPoly's fractional bits: vertices at 1/16 pixel.
FILL_SHIFT = 4


def area_and_perimeter(polygon: np.ndarray) -> tuple[float, float]:
    """Area (shoelace, absolute) and perimeter of a closed polygon (N, 2).

    >>> area_and_perimeter(np.array([[0, 0], [4, 0], [4, 3], [0, 3]], dtype=float))
    (12.0, 14.0)
    """
    x, y = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    edges = np.roll(polygon, -1, axis=0).astype(np.float64) - polygon
    return area, float(np.hypot(edges[:, 0], edges[:, 1]).sum())


def offset_polygon(polygon: np.ndarray, distance: float) -> np.ndarray | None:
    """The polygon (N, 2) moved outwards by ``distance`` pixels (inwards when negative), with
    round joins (pyclipper, as DB); None when it vanishes or splits into several pieces.

    Returns:
        (M, 2) float64 vertices, or None.
    """
    offsetter = pyclipper.PyclipperOffset()
    offsetter.ArcTolerance = 0.25 * CLIPPER_SCALE  # the default tolerance, in pixels
    scaled = np.round(polygon * CLIPPER_SCALE).astype(np.int64)
    offsetter.AddPath(scaled.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    result = offsetter.Execute(distance * CLIPPER_SCALE)
    if len(result) != 1 or len(result[0]) < 3:
        return None
    return np.asarray(result[0], dtype=np.float64) / CLIPPER_SCALE


def shrink_distance(polygon: np.ndarray, shrink_ratio: float) -> float:
    """D = A (1 - r^2) / L of the paper's Eq. 8 (0 for a degenerate polygon)."""
    area, perimeter = area_and_perimeter(polygon)
    return area * (1.0 - shrink_ratio**2) / perimeter if perimeter > 0 else 0.0


def _fill(canvas: np.ndarray, polygon: np.ndarray, value: float) -> None:
    """Fill ``polygon`` (N, 2) float pixels into ``canvas`` in place, at sub-pixel precision."""
    points = np.round(polygon * (1 << FILL_SHIFT)).astype(np.int32)
    cv2.fillPoly(canvas, [points], value, lineType=cv2.LINE_8, shift=FILL_SHIFT)


def segment_distances(xs: np.ndarray, ys: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest edge (a segment) of a closed polygon.

    Written by hand (vectorised projection onto each segment) because the threshold map needs
    distances to the edges inside and outside the polygon, which no library gives per pixel.

    Args:
        xs, ys: point coordinates, any one shape S.
        polygon: (N, 2) vertices.

    Returns:
        distances of shape S, float64 pixels.

    >>> square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=float)
    >>> segment_distances(np.array([1.0, 5.0]), np.array([1.0, 0.0]), square).tolist()
    [1.0, 3.0]
    """
    best = np.full(np.shape(xs), np.inf)
    for start, end in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        edge = end - start
        length2 = float(edge @ edge)
        t = ((xs - start[0]) * edge[0] + (ys - start[1]) * edge[1]) / max(length2, 1e-12)
        t = np.clip(t, 0.0, 1.0)
        best = np.minimum(best, np.hypot(xs - start[0] - t * edge[0], ys - start[1] - t * edge[1]))
    return best


@dataclass(frozen=True)
class DBTargets:
    """The four training maps of one image, each (H, W) float32.

    Attributes:
        prob: 1 inside the shrunk care polygons, else 0.
        prob_mask: 0 over ignored polygons, else 1 (where the P and B losses count).
        thresh: threshold map in [thresh_min, thresh_max].
        thresh_mask: 1 inside the dilated care polygons (where the T loss counts).
    """

    prob: np.ndarray
    prob_mask: np.ndarray
    thresh: np.ndarray
    thresh_mask: np.ndarray


def _draw_border(
    canvas: np.ndarray, mask: np.ndarray, polygon: np.ndarray, distance: float
) -> None:
    """Add one care polygon to the threshold canvas (values in [0, 1]) and its mask."""
    dilated = offset_polygon(polygon, distance)
    if dilated is None:
        dilated = polygon.astype(np.float64)
    _fill(mask, dilated, 1.0)
    height, width = canvas.shape
    x0, y0 = np.floor(dilated.min(axis=0)).astype(int)
    x1, y1 = np.ceil(dilated.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
    if x0 > x1 or y0 > y1:  # entirely outside the image
        return
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
    closeness = 1.0 - np.clip(segment_distances(xs, ys, polygon) / distance, 0.0, 1.0)
    window = canvas[y0 : y1 + 1, x0 : x1 + 1]
    np.maximum(window, closeness.astype(np.float32), out=window)


def db_targets(
    polygons: np.ndarray,
    ignore: np.ndarray,
    height: int,
    width: int,
    *,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
    min_text_size: float = 8.0,
) -> DBTargets:
    """DBNet's targets of one image.

    Args:
        polygons: (N, K, 2) float xy pixels of the image (K >= 3 vertices, here 4).
        ignore: (N,) bool, True for "don't care" ("###") regions.
        height, width: the image's size in pixels.
        shrink_ratio: r of D = A (1 - r^2) / L.
        thresh_min, thresh_max: the threshold map's range.
        min_text_size: polygons whose minimum-area rectangle has a side shorter than this
            (pixels) are ignored, as MMOCR's ``min_sidelength`` (8).

    Returns:
        the maps, see :class:`DBTargets`.
    """
    prob = np.zeros((height, width), np.float32)
    prob_mask = np.ones((height, width), np.float32)
    border = np.zeros((height, width), np.float32)
    thresh_mask = np.zeros((height, width), np.float32)
    for polygon, ignored in zip(np.asarray(polygons, np.float64), np.asarray(ignore), strict=True):
        distance = shrink_distance(polygon, shrink_ratio)
        shrunk = None
        if not ignored and distance > 0:
            short_side = min(cv2.minAreaRect(polygon.astype(np.float32))[1])
            if short_side >= min_text_size:
                shrunk = offset_polygon(polygon, -distance)
        if shrunk is None:  # "###", too thin, or vanished when shrunk: neither text nor not
            _fill(prob_mask, polygon, 0.0)
            continue
        _fill(prob, shrunk, 1.0)
        _draw_border(border, thresh_mask, polygon, distance)
    thresh = border * (thresh_max - thresh_min) + thresh_min
    return DBTargets(prob, prob_mask, thresh.astype(np.float32), thresh_mask)


def order_quad(points: np.ndarray) -> np.ndarray:
    """4 corners (4, 2) clockwise on the image (y down), starting from the top-left one (the
    smallest x + y; ties: the smallest y).

    >>> order_quad(np.array([[9, 9], [0, 0], [0, 9], [9, 0]], dtype=float)).tolist()
    [[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 9.0]]
    """
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    clockwise = points[np.argsort(angles, kind="stable")]  # y down: ascending angle is clockwise
    start = min(range(4), key=lambda i: (round(clockwise[i].sum(), 6), clockwise[i][1]))
    return np.roll(clockwise, -start, axis=0)


def _mean_inside(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean of ``prob`` over the pixels of the contour's polygon (N, 2) int."""
    x0, y0 = contour.min(axis=0)
    x1, y1 = contour.max(axis=0)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(contour - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def boxes_from_prob(
    prob: np.ndarray,
    *,
    binary_threshold: float = 0.3,
    box_threshold: float = 0.3,
    unclip_ratio: float = 1.5,
    min_size: float = 3.0,
    max_candidates: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Quadrilaterals and scores of a probability map (DB's inference).

    Args:
        prob: (H, W) float probability map P in [0, 1].
        binary_threshold: P > this is text (0.3).
        box_threshold: a region whose mean P is below this is dropped (MMOCR's
            ``min_text_score``, 0.3; the metric applies its own score threshold after).
        unclip_ratio: r' of the dilation D' = A' r' / L' (1.5).
        min_size: regions whose minimum-area rectangle is thinner than this (pixels) before
            dilation, or than ``min_size + 2`` after, are dropped (DB's ``min_size``, 3).
        max_candidates: at most this many contours are considered.

    Returns:
        quads (M, 4, 2) float32 xy pixels of P, clockwise from the top-left, inside the image;
        scores (M,) float32 in [box_threshold, 1].
    """
    height, width = prob.shape
    prob = np.ascontiguousarray(prob, dtype=np.float32)
    binary = (prob > binary_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quads, scores = [], []
    for contour in contours[:max_candidates]:
        points = contour.reshape(-1, 2)
        if min(cv2.minAreaRect(points.astype(np.float32))[1]) < min_size:
            continue
        score = _mean_inside(prob, points)
        if score < box_threshold:
            continue
        area, perimeter = area_and_perimeter(points.astype(np.float64))
        expanded = offset_polygon(points.astype(np.float64), area * unclip_ratio / perimeter)
        if expanded is None:
            continue
        rect = cv2.minAreaRect(expanded.astype(np.float32))
        if min(rect[1]) < min_size + 2:
            continue
        quad = order_quad(cv2.boxPoints(rect).astype(np.float64))
        quad[:, 0] = np.clip(quad[:, 0], 0, width - 1)
        quad[:, 1] = np.clip(quad[:, 1], 0, height - 1)
        quads.append(quad)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, np.float32)

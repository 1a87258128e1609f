"""DBNet's targets and box extraction against known answers: the shrink distance of the
paper's Eq. 8, a shrunk and unclipped rectangle back to itself, the threshold map at the border,
half-way and far away, "don't care" and too-thin polygons masked out, a rendered rectangle
(upright and rotated) extracted back as its quadrilateral, clockwise from the top-left."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest
import shapely

import cvbench.tasks.text_detection_targets as targets_module
from cvbench.tasks.text_detection_targets import (
    area_and_perimeter,
    boxes_from_prob,
    db_targets,
    offset_polygon,
    order_quad,
    shrink_distance,
)

# 60 x 40 pixels: A = 2400, L = 200, D = A (1 - 0.4^2) / L = 10.08
RECT = np.array([[40, 50], [100, 50], [100, 90], [40, 90]], dtype=np.float64)
D = 10.08


def iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = shapely.Polygon(a), shapely.Polygon(b)
    return pa.intersection(pb).area / pa.union(pb).area


def test_doctests() -> None:
    assert doctest.testmod(targets_module).failed == 0


def test_shrink_distance_is_the_papers() -> None:
    assert shrink_distance(RECT, 0.4) == pytest.approx(D)
    shrunk = offset_polygon(RECT, -D)
    np.testing.assert_allclose(shrunk.min(axis=0), [40 + D, 50 + D], atol=0.01)
    np.testing.assert_allclose(shrunk.max(axis=0), [100 - D, 90 - D], atol=0.01)


def test_a_shrunk_rectangle_unclipped_returns_to_itself() -> None:
    """D' = A' r' / L' with r' = 1.5 undoes D for this rectangle (to 0.3 px)."""
    shrunk = offset_polygon(RECT, -D)
    area, perimeter = area_and_perimeter(shrunk)
    grown = offset_polygon(shrunk, area * 1.5 / perimeter)
    box = cv2.boxPoints(cv2.minAreaRect(grown.astype(np.float32)))
    np.testing.assert_allclose(order_quad(box.astype(np.float64)), RECT, atol=0.3)


def test_offsetting_a_polygon_away_gives_none() -> None:
    assert offset_polygon(RECT, -25.0) is None  # half the height is 20


def test_probability_and_threshold_maps() -> None:
    maps = db_targets(RECT[None], np.array([False]), 128, 160)
    # P target: the shrunk rectangle, x 50.08..89.92, y 60.08..79.92 (pixel centres)
    assert maps.prob[61:80, 51:90].min() == 1.0
    assert maps.prob[:59].max() == 0.0 and maps.prob[:, :49].max() == 0.0
    assert maps.prob_mask.min() == 1.0  # nothing ignored
    # T target: 0.7 on the polygon's edge, 0.3 from D away (and inside, 20 px from any edge)
    assert maps.thresh[50, 70] == pytest.approx(0.7)
    assert maps.thresh[45, 70] == pytest.approx(0.3 + 0.4 * (1 - 5 / D), abs=1e-5)
    assert maps.thresh[55, 70] == pytest.approx(0.3 + 0.4 * (1 - 5 / D), abs=1e-5)
    assert maps.thresh[70, 70] == pytest.approx(0.3)
    assert maps.thresh[5, 5] == pytest.approx(0.3)
    assert (maps.thresh >= 0.3 - 1e-6).all() and (maps.thresh <= 0.7 + 1e-6).all()
    # its mask: the polygon dilated by D
    assert maps.thresh_mask[41, 70] == 1.0 and maps.thresh_mask[38, 70] == 0.0
    assert maps.thresh_mask[70, 70] == 1.0 and maps.thresh_mask[70, 115] == 0.0


def test_dont_care_and_too_thin_polygons_are_masked_out() -> None:
    thin = np.array([[10, 10], [60, 10], [60, 15], [10, 15]], dtype=np.float64)  # 5 px < 8
    polygons = np.stack([RECT, thin, RECT + [0, -40]])
    maps = db_targets(polygons, np.array([False, False, True]), 128, 160)
    assert maps.prob_mask[12, 30] == 0.0 and maps.prob[12, 30] == 0.0  # too thin
    assert maps.prob_mask[30, 70] == 0.0 and maps.prob[30, 70] == 0.0  # "###"
    assert maps.prob_mask[70, 70] == 1.0 and maps.prob[70, 70] == 1.0  # the care one
    assert maps.thresh_mask[12, 30] == 0.0 and maps.thresh_mask[5, 70] == 0.0


def test_a_rendered_rectangle_gives_back_its_quad() -> None:
    prob = 0.9 * db_targets(RECT[None], np.array([False]), 128, 160).prob
    quads, scores = boxes_from_prob(prob)
    assert quads.shape == (1, 4, 2) and quads.dtype == np.float32
    np.testing.assert_allclose(quads[0], RECT, atol=1.5)  # clockwise from the top-left
    assert scores.tolist() == pytest.approx([0.9])


def test_a_rotated_rectangle_comes_back_rotated() -> None:
    rect = cv2.boxPoints(((80.0, 64.0), (80.0, 30.0), 30.0)).astype(np.float64)
    prob = db_targets(rect[None], np.array([False]), 128, 160).prob
    quads, _ = boxes_from_prob(prob)
    assert len(quads) == 1
    assert iou(quads[0], rect) > 0.85
    (_, _), (w, h), angle = cv2.minAreaRect(quads[0])
    long_side_angle = angle if w > h else angle - 90
    assert long_side_angle % 180 == pytest.approx(30.0, abs=2.0)
    top_left = quads[0][0]
    assert tuple(top_left) == min(map(tuple, quads[0]), key=lambda p: p[0] + p[1])
    # clockwise on the image (y down): the signed shoelace area is positive
    x, y = quads[0][:, 0], quads[0][:, 1]
    assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0


def test_low_scores_small_regions_and_empty_maps_give_no_box() -> None:
    prob = np.zeros((64, 64), np.float32)
    assert boxes_from_prob(prob)[0].shape == (0, 4, 2)
    prob[10:30, 10:50] = 0.4
    assert len(boxes_from_prob(prob, box_threshold=0.5)[0]) == 0
    assert len(boxes_from_prob(prob, box_threshold=0.3)[0]) == 1
    speck = np.zeros((64, 64), np.float32)
    speck[5:7, 5:40] = 1.0  # 2 px thin: below min_size 3
    assert len(boxes_from_prob(speck)[0]) == 0

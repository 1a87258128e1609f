"""Pascal VOC AP (devkit ``VOCevaldet.m`` / ``VOCap.m``): answers computed by hand, the corners
of the protocol (difficult objects, duplicates, ties, images without ground truth), and seeded
random cases against a loop-by-loop transcription of the devkit written here."""

from __future__ import annotations

import doctest
import math
import random

import numpy as np
import pytest

import cvbench.metrics.voc as voc
from cvbench.metrics.voc import box_overlaps, voc_ap, voc_evaluate

A = [0, 0, 10, 10]  # boxes as (x0, y0, x1, y1), continuous pixels
B = [20, 0, 30, 10]
C = [0, 20, 10, 30]
NOWHERE = [50, 50, 60, 60]


def _gt(objects: list[tuple], num_images: int = 2, categories=((1, "cat"),)) -> dict:
    """COCO dict from (image_id, category_id, xyxy, difficult) rows; images 1..num_images."""
    annotations = []
    for k, (image, category, (x0, y0, x1, y1), difficult) in enumerate(objects):
        ann = {"id": k + 1, "image_id": image, "category_id": category, "iscrowd": 0}
        ann["bbox"] = [x0, y0, x1 - x0, y1 - y0]
        ann["area"] = (x1 - x0) * (y1 - y0)
        if difficult:
            ann["difficult"] = ann["iscrowd"] = 1
        annotations.append(ann)
    return {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100}
            for i in range(1, num_images + 1)
        ],
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in categories],
    }


def _det(image: int, xyxy: list[float], score: float, category: int = 1) -> dict:
    x0, y0, x1, y1 = xyxy
    return {"image_id": image, "category_id": category, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": score}  # fmt: skip


def _ap(gt: dict, results: list[dict], version: str, **kwargs) -> float | None:
    """The only class's AP in percent."""
    scores = voc_evaluate(gt, results, version=version, **kwargs)
    assert len(scores.per_class) == 1
    return scores.per_class[0]["ap"]


def test_doctests() -> None:
    result = doctest.testmod(voc)
    assert result.attempted > 0
    assert result.failed == 0


# --- voc_ap -----------------------------------------------------------------------------------


def test_voc_ap_known_answers() -> None:
    # TP, FP, TP on 3 boxes: recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t = .7 .. 1 -> 0: (4 + 2) / 11.
    # Area: the envelope is 1 up to recall 1/3, 2/3 up to 2/3, then 0: 1/3 + 2/9 = 5/9.
    rec, prec = [1 / 3, 1 / 3, 2 / 3], [1, 1 / 2, 2 / 3]
    assert voc_ap(rec, prec, "2007") == pytest.approx(6 / 11, abs=1e-15)
    assert voc_ap(rec, prec, "2010") == pytest.approx(5 / 9, abs=1e-15)
    # the envelope lifts a dip: precision 1, 0.5, 0.75 at recall .25, .25, .75 (4 boxes):
    # area .25 * 1 + .5 * .75 = .625; 11-point: t <= .2 -> 1, .3 .. .7 -> .75: (3 + 3.75) / 11
    assert voc_ap([0.25, 0.25, 0.75], [1, 0.5, 0.75], "2012") == pytest.approx(0.625, abs=1e-15)
    assert voc_ap([0.25, 0.25, 0.75], [1, 0.5, 0.75], "2007") == pytest.approx(6.75 / 11, 1e-15)
    # perfect detector, empty curve
    assert voc_ap([0.5, 1.0], [1.0, 1.0], "2010") == 1.0
    assert voc_ap([0.5, 1.0], [1.0, 1.0], "2007") == pytest.approx(1.0, abs=1e-15)
    assert voc_ap([], [], "2007") == 0.0
    assert voc_ap([], [], "2010") == 0.0


def test_voc_ap_rejects_unknown_versions_and_mismatched_curves() -> None:
    with pytest.raises(ValueError, match="'2013' is unknown"):
        voc_ap([1.0], [1.0], "2013")
    with pytest.raises(ValueError, match="3 points and precision 2"):
        voc_ap([0.1, 0.2, 0.3], [1.0, 1.0], "2010")


def test_eleven_point_thresholds_are_matlabs_colon() -> None:
    """The devkit loops over MATLAB's ``0:0.1:1``, whose 4th value is 3 * 0.1, one ulp above
    0.3: a recall of exactly 3/10 is below it. 10 boxes, TP TP TP FP TP: recall .1 .2 .3 .3 .4,
    precision 1 1 1 .75 .8. t = 0, .1, .2 -> 1; t = 0.3 + ulp -> .8 (only recall .4 is above);
    t = .4 -> .8; t >= .5 -> 0: AP (3 + .8 + .8) / 11, not (4 + .8) / 11 as exact tenths give."""
    assert voc.VOC07_RECALL_THRESHOLDS[3] == 3 * 0.1 > 0.3 == 3 / 10
    assert voc.VOC07_RECALL_THRESHOLDS[6:8] == (0.6, 0.7)  # second half: 1 - k * 0.1
    rec, prec = [0.1, 0.2, 0.3, 0.3, 0.4], [1, 1, 1, 0.75, 0.8]
    assert voc_ap(rec, prec, "2007") == pytest.approx(4.6 / 11, abs=1e-15)


# --- voc_evaluate: known answers --------------------------------------------------------------


def test_tp_fp_tp_known_answer() -> None:
    """3 boxes in 2 images; detections TP (0.9), FP (0.8, nothing there), TP (0.7): the curve
    of ``test_voc_ap_known_answers``; 2007 and 2010 differ: 6/11 and 5/9."""
    gt = _gt([(1, 1, A, 0), (1, 1, B, 0), (2, 1, C, 0)])
    results = [_det(2, C, 0.7), _det(1, A, 0.9), _det(2, NOWHERE, 0.8)]
    for version, expected in [("2007", 6 / 11), ("2010", 5 / 9), ("2012", 5 / 9)]:
        scores = voc_evaluate(gt, results, version=version)
        assert scores.map_50 == pytest.approx(100 * expected, abs=1e-12)
        assert scores.per_class == [
            {"category_id": 1, "name": "cat", "ap": pytest.approx(100 * expected), "num_gt": 3}
        ]
        assert (scores.version, scores.iou_threshold, scores.pixel_offset) == (version, 0.5, 0.0)


def test_iou_threshold_is_inclusive() -> None:
    # [0, 0, 10, 5] on A: intersection 50, union 100, IoU exactly 0.5 -> TP
    gt = _gt([(1, 1, A, 0)])
    assert _ap(gt, [_det(1, [0, 0, 10, 5], 0.9)], "2010") == 100.0
    assert _ap(gt, [_det(1, [0, 0, 10, 4.9], 0.9)], "2010") == 0.0
    assert _ap(gt, [_det(1, [0, 0, 10, 4.9], 0.9)], "2010", iou_threshold=0.45) == 100.0


def test_detection_on_a_difficult_object_is_neither_tp_nor_fp() -> None:
    """Image 1: A non-difficult, B difficult. Detections on B (0.9) and A (0.8). Ignoring the
    first: recall 1, precision 1, AP 100. Were it a FP: precision 1/2, AP 50; were B a
    positive: recall 1/2 at most, AP 50 (area) or 6/11 (11-point)."""
    gt = _gt([(1, 1, A, 0), (1, 1, B, 1)])
    results = [_det(1, B, 0.9), _det(1, A, 0.8)]
    for version in ("2007", "2010"):
        scores = voc_evaluate(gt, results, version=version)
        assert scores.per_class[0]["ap"] == pytest.approx(100.0, abs=1e-12)
        assert scores.per_class[0]["num_gt"] == 1  # difficult boxes are not in the recall


def test_iscrowd_without_a_difficult_key_is_difficult() -> None:
    gt = _gt([(1, 1, A, 0), (1, 1, B, 0)])
    gt["annotations"][1]["iscrowd"] = 1  # no "difficult" key
    scores = voc_evaluate(gt, [_det(1, B, 0.9), _det(1, A, 0.8)])
    assert scores.per_class[0]["num_gt"] == 1
    assert scores.per_class[0]["ap"] == pytest.approx(100.0, abs=1e-12)


def test_best_box_difficult_wins_over_a_non_difficult_one() -> None:
    """The devkit looks only at the box of highest IoU: a detection overlapping a difficult box
    (IoU 1) and a non-difficult one (IoU 2/3) counts as neither, and the non-difficult box
    stays unmatched: recall 0, AP 0."""
    shifted = [2, 0, 12, 10]  # IoU with A: 80 / 120
    gt = _gt([(1, 1, shifted, 0), (1, 1, A, 1)])
    assert box_overlaps(np.array([A], float), np.array([shifted], float))[0, 0] == 80 / 120
    assert _ap(gt, [_det(1, A, 0.9)], "2010") == 0.0


def test_duplicate_detections_are_false_positives() -> None:
    """Boxes A and S (S overlaps A with IoU 2/3). Detections: A (0.9) TP; A again (0.8): its
    best box A is taken, so FP even though S is free at IoU 2/3; S (0.7) TP.
    Recall .5 .5 1, precision 1 .5 2/3: area .5 + .5 * 2/3 = 5/6;
    11-point: t <= .5 -> 1 (6 values), t >= .6 -> 2/3 (5 values): (6 + 10/3) / 11 = 28/33."""
    shifted = [2, 0, 12, 10]
    gt = _gt([(1, 1, A, 0), (1, 1, shifted, 0)])
    results = [_det(1, A, 0.9), _det(1, A, 0.8), _det(1, shifted, 0.7)]
    assert _ap(gt, results, "2010") == pytest.approx(100 * 5 / 6, abs=1e-12)
    assert _ap(gt, results, "2007") == pytest.approx(100 * 28 / 33, abs=1e-12)


def test_equal_scores_keep_the_input_order() -> None:
    # one box; a FP and a TP with the same score: FP first -> precision 1/2 at recall 1
    gt = _gt([(1, 1, A, 0)])
    fp_first = [_det(1, NOWHERE, 0.5), _det(1, A, 0.5)]
    assert _ap(gt, fp_first, "2010") == pytest.approx(50.0, abs=1e-12)
    assert _ap(gt, fp_first[::-1], "2010") == 100.0


def test_detections_in_an_image_without_ground_truth_are_false_positives() -> None:
    # image 2 has no annotation at all: FP (0.9), then TP on A (0.8): recall 0, 1 and
    # precision 0, 1/2 -> both versions give 1/2
    gt = _gt([(1, 1, A, 0)])
    results = [_det(2, A, 0.9), _det(1, A, 0.8)]
    assert _ap(gt, results, "2010") == pytest.approx(50.0, abs=1e-12)
    assert _ap(gt, results, "2007") == pytest.approx(50.0, abs=1e-12)


def test_class_without_detections_has_ap_zero_and_counts_in_the_mean() -> None:
    gt = _gt([(1, 1, A, 0), (2, 2, B, 0)], categories=((1, "cat"), (2, "dog")))
    scores = voc_evaluate(gt, [_det(1, A, 0.9, category=1)])
    assert [row["ap"] for row in scores.per_class] == [100.0, 0.0]
    assert scores.map_50 == 50.0


def test_class_without_non_difficult_ground_truth_has_no_ap() -> None:
    """'dog' has only a difficult box, 'bird' none: AP None, left out of the mean."""
    categories = ((3, "bird"), (1, "cat"), (2, "dog"))  # per_class comes sorted by id
    gt = _gt([(1, 1, A, 0), (1, 2, B, 1)], categories=categories)
    results = [_det(1, A, 0.9, category=1), _det(1, B, 0.9, category=2), _det(2, C, 0.5, 3)]
    scores = voc_evaluate(gt, results)
    assert [(r["name"], r["ap"], r["num_gt"]) for r in scores.per_class] == [
        ("cat", 100.0, 1),
        ("dog", None, 0),
        ("bird", None, 0),
    ]
    assert scores.map_50 == 100.0
    assert voc_evaluate(_gt([]), []).map_50 is None


def test_image_ids_restrict_ground_truth_and_results() -> None:
    """Image 2's box and detections are left out: image 1 alone has a FP (0.8), a TP (0.7)."""
    gt = _gt([(1, 1, A, 0), (2, 1, A, 0)])
    results = [_det(2, A, 0.95), _det(1, NOWHERE, 0.8), _det(1, A, 0.7)]
    assert _ap(gt, results, "2010") == pytest.approx(100 * (0.5 * 1 + 0.5 * 2 / 3), abs=1e-12)
    scores = voc_evaluate(gt, results, image_ids=[1])
    assert scores.per_class[0]["num_gt"] == 1
    assert scores.per_class[0]["ap"] == pytest.approx(50.0, abs=1e-12)


# --- boxes ------------------------------------------------------------------------------------


def test_box_overlaps_known_answers() -> None:
    # devkit boxes [1, 1, 10, 10] and [6, 1, 15, 10] (1-based pixel indices, inclusive):
    # with +1 each is 10 x 10 and they share 5 columns: 50 / 150; without it 36 / 126
    raw = np.array([[1.0, 1, 10, 10]]), np.array([[6.0, 1, 15, 10]])
    assert box_overlaps(*raw, pixel_offset=1.0)[0, 0] == pytest.approx(1 / 3, abs=1e-15)
    assert box_overlaps(*raw)[0, 0] == pytest.approx(36 / 126, abs=1e-15)
    # the same pixels as continuous boxes (x0 = xmin - 1): 1/3 without an offset
    continuous = np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 15, 10]])
    assert box_overlaps(*continuous)[0, 0] == pytest.approx(1 / 3, abs=1e-15)
    # touching boxes do not overlap (the devkit needs a positive intersection)
    assert box_overlaps(np.array([A], float), np.array([[10.0, 0, 20, 10]]))[0, 0] == -np.inf


def _random_objects(seed: int, num_images: int = 25, num_classes: int = 3):
    """Devkit-style data: 1-based integer boxes (xmin, ymin, xmax, ymax), inclusive.

    Returns:
        gt rows (image, class, box, difficult) and detection rows (image, class, box, score),
        detections being jittered copies of boxes (duplicates included), random boxes and
        scores on a coarse grid (many ties).
    """
    rng = random.Random(seed)
    objects, detections = [], []
    for image in range(1, num_images + 1):
        for _ in range(rng.randint(0, 4)):
            xmin, ymin = rng.randint(1, 60), rng.randint(1, 60)
            box = (xmin, ymin, xmin + rng.randint(0, 30), ymin + rng.randint(0, 30))
            objects.append((image, rng.randint(1, num_classes), box, rng.random() < 0.2))
    for image, category, box, _ in objects:
        for _ in range(rng.choice([0, 1, 1, 2])):
            jittered = [v + rng.randint(-3, 3) for v in box]
            jittered[2], jittered[3] = max(jittered[2], jittered[0]), max(jittered[3], jittered[1])
            detections.append((image, category, tuple(jittered), rng.randint(0, 10) / 10))
    for _ in range(40):
        xmin, ymin = rng.randint(1, 70), rng.randint(1, 70)
        box = (xmin, ymin, xmin + rng.randint(0, 25), ymin + rng.randint(0, 25))
        detections.append((rng.randint(1, num_images + 2), rng.randint(1, num_classes), box,
                           rng.randint(0, 10) / 10))  # fmt: skip
    rng.shuffle(detections)
    return objects, detections, num_images + 2  # the last 2 images have no ground truth


def _as_coco(objects, detections, num_images, num_classes=3, continuous=True):
    """COCO gt and results from devkit rows: continuous boxes (x0 = xmin - 1, x1 = xmax) or
    the raw integers (x0 = xmin, x1 = xmax, for ``pixel_offset=1``)."""
    shift = 1 if continuous else 0
    categories = [(c, f"class{c}") for c in range(1, num_classes + 1)]
    rows = [(i, c, (b[0] - shift, b[1] - shift, b[2], b[3]), d) for i, c, b, d in objects]
    gt = _gt(rows, num_images=num_images, categories=categories)
    results = [_det(i, [b[0] - shift, b[1] - shift, b[2], b[3]], s, c) for i, c, b, s in detections]
    return gt, results


def test_continuous_boxes_equal_the_devkit_pixel_convention() -> None:
    objects, detections, num_images = _random_objects(seed=11)
    continuous = voc_evaluate(*_as_coco(objects, detections, num_images))
    raw = voc_evaluate(*_as_coco(objects, detections, num_images, continuous=False),
                       pixel_offset=1.0)  # fmt: skip
    assert continuous.per_class == raw.per_class  # exactly: the IoUs are the same doubles
    # the offset matters on raw boxes: devkit box [1, 1, 1, 1] is one pixel, area 1 with the
    # +1, an empty box (no overlap, a FP) without it
    gt, results = _as_coco([(1, 1, (1, 1, 1, 1), 0)], [(1, 1, (1, 1, 1, 1), 0.9)], 1, 1, False)
    assert _ap(gt, results, "2010", pixel_offset=1.0) == 100.0
    assert _ap(gt, results, "2010") == 0.0
    assert (
        _ap(*_as_coco([(1, 1, (1, 1, 1, 1), 0)], [(1, 1, (1, 1, 1, 1), 0.9)], 1, 1), "2010")
        == 100.0
    )


# --- the devkit, transcribed ------------------------------------------------------------------


def _matlab_colon(a: float, d: float, b: float) -> list[float]:
    """MATLAB's a:d:b: the first half from a, the second half back from b, the middle
    (n even) at (a + b) / 2."""
    n = round((b - a) / d)
    k = n // 2
    values = [0.0] * (n + 1)
    for i in range(k):
        values[i] = a + i * d
        values[n - i] = b - i * d
    if n % 2 == 0:
        values[k] = (a + b) / 2
    else:
        values[k], values[k + 1] = a + k * d, b - k * d
    return values


def _matlab_max(values: list[float]) -> float:
    """MATLAB's max: NaNs ignored, NaN if all are NaN, [] (None here) if empty."""
    if not values:
        return None
    numbers = [v for v in values if not math.isnan(v)]
    return max(numbers) if numbers else math.nan


def _devkit_ap(objects, detections, category: int, use_07: bool) -> float | None:
    """VOCevaldet.m for one class, with the devkit's +1 on 1-based integer boxes."""
    gt = {}  # image -> {"BB": [...], "diff": [...], "det": [...]}
    npos = 0
    for image, c, box, difficult in objects:
        if c == category:
            g = gt.setdefault(image, {"BB": [], "diff": [], "det": []})
            g["BB"].append(box)
            g["diff"].append(difficult)
            g["det"].append(False)
            npos += not difficult
    if npos == 0:
        return None
    dets = [d for d in detections if d[1] == category]
    si = sorted(range(len(dets)), key=lambda d: -dets[d][3])  # [sc,si] = sort(-confidence)
    nd = len(dets)
    tp, fp = [0] * nd, [0] * nd
    for d in range(nd):
        image, _, bb, _ = dets[si[d]]
        ovmax, jmax = -math.inf, None
        g = gt.get(image, {"BB": [], "diff": [], "det": []})
        for j, bbgt in enumerate(g["BB"]):
            bi = [max(bb[0], bbgt[0]), max(bb[1], bbgt[1]), min(bb[2], bbgt[2]),
                  min(bb[3], bbgt[3])]  # fmt: skip
            iw = bi[2] - bi[0] + 1
            ih = bi[3] - bi[1] + 1
            if iw > 0 and ih > 0:
                ua = ((bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1)
                      + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1) - iw * ih)  # fmt: skip
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        if ovmax >= 0.5:
            if not g["diff"][jmax]:
                if not g["det"][jmax]:
                    tp[d] = 1
                    g["det"][jmax] = True
                else:
                    fp[d] = 1
        else:
            fp[d] = 1
    rec, prec = [], []
    ctp = cfp = 0
    for d in range(nd):
        ctp, cfp = ctp + tp[d], cfp + fp[d]
        rec.append(ctp / npos)
        prec.append(ctp / (ctp + cfp) if ctp + cfp else math.nan)  # 0/0 is NaN in MATLAB
    if use_07:
        ap = 0.0
        for t in _matlab_colon(0, 0.1, 1):
            p = _matlab_max([p for r, p in zip(rec, prec, strict=True) if r >= t])
            ap += (0.0 if p is None else p) / 11
        return ap
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]  # VOCap.m
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = _matlab_max([mpre[i], mpre[i + 1]])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec))
               if mrec[i] != mrec[i - 1])  # fmt: skip


def test_matlab_colon_transcription() -> None:
    assert _matlab_colon(0, 0.1, 1) == list(voc.VOC07_RECALL_THRESHOLDS)
    assert _matlab_colon(0, 0.1, 0.3)[2] == 0.3 - 0.1 != 0.2  # the forum's example


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("version", ["2007", "2010"])
def test_random_cases_equal_the_devkit_transcription(seed: int, version: str) -> None:
    objects, detections, num_images = _random_objects(seed)
    scores = voc_evaluate(*_as_coco(objects, detections, num_images), version=version)
    checked = 0
    for row in scores.per_class:
        expected = _devkit_ap(objects, detections, row["category_id"], version == "2007")
        if expected is None:
            assert row["ap"] is None
        elif math.isnan(expected):  # all detections on difficult boxes: NaN there, 0 here
            assert row["ap"] == 0.0
        else:
            assert row["ap"] == pytest.approx(100 * expected, abs=1e-10)
            checked += 0 < expected < 1
    assert checked >= 1  # the case is not trivial
    aps = [row["ap"] for row in scores.per_class if row["ap"] is not None]
    assert scores.map_50 == pytest.approx(sum(aps) / len(aps), abs=1e-12)


def test_random_cases_hit_the_corners() -> None:
    """The seeds of the random test have tied scores, detections on difficult boxes and in
    images without ground truth, so the comparison with the devkit covers them."""
    ties = difficult_hits = empty_image_dets = 0
    for seed in range(6):
        objects, detections, num_images = _random_objects(seed)
        scores = [s for *_, s in detections]
        ties += len(scores) - len(set(scores))
        for image, category, box, difficult in objects:
            near = [d[2] for d in detections if d[:2] == (image, category)]
            if difficult and near:
                ious = box_overlaps(np.array(near, float), np.array([box], float), 1.0)
                difficult_hits += int((ious >= 0.5).sum())
        empty_image_dets += sum(1 for i, *_ in detections if i > num_images - 2)
    assert ties > 0 and difficult_hits > 0 and empty_image_dets > 0


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"image_id": 9, "category_id": 1, "bbox": A, "score": 1.0}, "not in the ground truth"),
        ({"image_id": 1, "category_id": 7, "bbox": A, "score": 1.0}, "category_id 7 is not"),
        ({"image_id": 1, "category_id": 1, "bbox": A[:3], "score": 1.0}, "is malformed"),
        ({"image_id": 1, "category_id": 1, "bbox": A}, "is malformed"),
        ({"image_id": 1, "category_id": 1, "bbox": A, "score": math.nan}, "not finite"),
    ],
)
def test_malformed_results_name_the_record(result: dict, message: str) -> None:
    gt = _gt([(1, 1, A, 0)])
    with pytest.raises(ValueError, match=rf"results\[1\] \(image_id .*{message}"):
        voc_evaluate(gt, [_det(1, A, 0.5), result])


def test_bad_options_are_errors() -> None:
    gt = _gt([(1, 1, A, 0)])
    with pytest.raises(ValueError, match="version '2006' is unknown"):
        voc_evaluate(gt, [], version="2006")
    with pytest.raises(ValueError, match=r"iou_threshold is 0.0; expected a value in \(0, 1\]"):
        voc_evaluate(gt, [], iou_threshold=0.0)
    with pytest.raises(ValueError, match=r"image_ids: image ids \[5\] are not in the ground"):
        voc_evaluate(gt, [], image_ids=[1, 5])

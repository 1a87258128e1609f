"""ICDAR 2015 text detection metric against hand-made cases, IoU of rotated quadrilaterals
rasterised on a fine grid (matplotlib's point-in-polygon, not shapely), an independent loop over
rectangles in the RRC script's manner, and two real gloo processes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from matplotlib.path import Path as MplPath
from torch.utils.data import DistributedSampler

from cvbench.metrics.text_detection import (
    TextDetectionMetric,
    dont_care_predictions,
    hmean_scores,
    match_icdar2015,
    one_to_one_matches,
    polygon_iou,
)


def rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    """Clockwise (image coordinates) corners of an axis-aligned rectangle."""
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def quad(cx: float, cy: float, w: float, h: float, angle: float, skew: float = 0.0) -> list:
    """A rotated quadrilateral; ``skew`` shifts the top edge sideways (a non-rectangle)."""
    corners = [(-w / 2 + skew, -h / 2), (w / 2 + skew, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    c, s = math.cos(angle), math.sin(angle)
    return [[cx + c * x - s * y, cy + s * x + c * y] for x, y in corners]


def raster_iou(a: list, b: list, step: float = 0.01) -> float:
    """IoU counted on the cell centres of a fine grid (independent of shapely)."""
    points = np.asarray(a + b)
    lo, hi = points.min(0) - step, points.max(0) + step
    xs = np.arange(lo[0], hi[0], step) + step / 2
    ys = np.arange(lo[1], hi[1], step) + step / 2
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    in_a, in_b = MplPath(a).contains_points(grid), MplPath(b).contains_points(grid)
    return (in_a & in_b).sum() / (in_a | in_b).sum()


def scored(gt: list, ignore: list, pred: list, scores: list | None = None, **options) -> dict:
    """The metric on one image."""
    metric = TextDetectionMetric(**options)
    scores = [1.0] * len(pred) if scores is None else scores
    metric.update(
        [torch.tensor(pred, dtype=torch.float32).reshape(-1, 4, 2)],
        [torch.tensor(scores)],
        [torch.tensor(gt, dtype=torch.float32).reshape(-1, 4, 2)],
        [torch.tensor(ignore, dtype=torch.bool)],
        torch.tensor([0]),
    )
    return metric.compute()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (quad(10, 10, 12, 4, 0.3), quad(10.5, 10.2, 11, 4.5, 0.45)),
        (quad(10, 10, 12, 4, -0.7, skew=2.0), quad(11, 9.5, 10, 5, -0.5, skew=-1.0)),
        (quad(5, 5, 6, 6, math.pi / 4), rect(2, 2, 8, 8)),
    ],
)
def test_rotated_quadrilateral_iou_equals_rasterised(a: list, b: list) -> None:
    iou = polygon_iou([a], [b])[0, 0]
    assert 0.1 < iou < 0.95
    assert iou == pytest.approx(raster_iou(a, b), abs=3e-3)


def test_iou_known_answers_and_invalid_polygon() -> None:
    # a diamond inscribed in a square has half its area: IoU 1/2
    assert polygon_iou([rect(0, 0, 2, 2)], [[[1, 0], [2, 1], [1, 2], [0, 1]]])[0, 0] == 0.5
    # a self-intersecting "bowtie" is mended with buffer(0) as MMOCR does: one lobe of area 1
    bowtie = [[0, 0], [2, 2], [2, 0], [0, 2]]
    assert polygon_iou([rect(0, 0, 2, 2)], [bowtie])[0, 0] == pytest.approx(0.25)
    assert polygon_iou([rect(0, 0, 1, 1)], [[[5, 5], [5, 5], [5, 5], [5, 5]]])[0, 0] == 0.0
    assert polygon_iou(np.zeros((0, 4, 2)), [rect(0, 0, 1, 1)]).shape == (0, 1)
    with pytest.raises(ValueError, match="not finite"):
        polygon_iou([rect(0, 0, math.nan, 1)], [rect(0, 0, 1, 1)])


def test_iou_at_exactly_the_threshold_does_not_match() -> None:
    """IoU > 0.5, strictly, as MMOCR and the RRC script."""
    result = scored([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 5)])
    assert (result["precision"], result["recall"]) == (0.0, 0.0)
    result = scored([rect(0, 0, 10, 10)], [False], [rect(0, 0, 10, 5.1)])
    assert (result["precision"], result["recall"]) == (1.0, 1.0)


def test_dont_care_regions() -> None:
    gt = [rect(0, 0, 10, 10), rect(20, 0, 40, 10)]  # the second is "###"
    ignore = [False, True]
    mostly_inside = rect(25, 0, 35, 12)  # 10 x 10 of its 10 x 12 in the "###" region
    half_inside = rect(30, 0, 50, 10)  # exactly half: not above 0.5, a false positive
    pred = [rect(0, 0, 10, 10), mostly_inside, half_inside]
    assert dont_care_predictions(pred, [gt[1]]).tolist() == [False, True, False]
    assert match_icdar2015(gt, ignore, pred) == (1, 2, 1)
    result = scored(gt, ignore, pred)
    assert result["precision"] == 0.5 and result["recall"] == 1.0
    assert result["hmean"] == pytest.approx(2 / 3)
    # a "don't care" region is never needed: nothing predicted there costs no recall
    assert scored(gt, ignore, [rect(0, 0, 10, 10)])["hmean"] == 1.0


def test_one_to_one_with_duplicates() -> None:
    gt = [rect(0, 0, 10, 10), rect(20, 0, 30, 10)]
    twice = [rect(0, 0, 10, 10), rect(0.5, 0, 10, 10), rect(20, 0, 30, 10)]
    result = scored(gt, [False, False], twice)
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == 1.0
    assert match_icdar2015(gt, [False, False], twice) == (2, 3, 2)


def test_first_come_first_matched_is_not_a_maximum_matching() -> None:
    """gt A and B overlap; p1 matches both, p2 only A. In (gt, pred) order A takes p1 and B is
    left out, as MMOCR's vanilla strategy does (the maximum matching would pair 2)."""
    gt = [rect(0, 0, 10, 10), rect(3, 0, 13, 10)]
    pred = [rect(1.5, 0, 11.5, 10), rect(-1, 0, 9, 10)]
    iou = polygon_iou(gt, pred)
    assert (iou > 0.5).tolist() == [[True, True], [True, False]]
    assert match_icdar2015(gt, [False, False], pred) == (2, 2, 1)
    # the detector's order matters: p2 first gives A -> p2, B -> p1
    assert match_icdar2015(gt, [False, False], pred[::-1]) == (2, 2, 2)
    assert one_to_one_matches(np.zeros((0, 3), dtype=bool)) == 0


def test_empty_ground_truth_or_predictions() -> None:
    assert hmean_scores(0, 0, 0) == (1.0, 1.0, 1.0)  # MMOCR compute_hmean
    no_gt = scored([], [], [rect(0, 0, 5, 5)])
    assert (no_gt["precision"], no_gt["recall"], no_gt["hmean"]) == (0.0, 1.0, 0.0)
    no_pred = scored([rect(0, 0, 5, 5)], [False], [])
    assert (no_pred["precision"], no_pred["recall"], no_pred["hmean"]) == (0.0, 0.0, 0.0)
    only_dont_care = scored([rect(0, 0, 5, 5)], [True], [rect(0, 0, 5, 5)])
    assert only_dont_care["hmean"] == 1.0  # nothing to find, nothing wrongly found
    with pytest.warns(UserWarning, match="called before the ``update``"):
        assert TextDetectionMetric().compute()["hmean"] is None


def test_score_threshold_and_best_over_thresholds() -> None:
    gt = [rect(0, 0, 10, 10), rect(20, 0, 30, 10), rect(40, 0, 50, 10)]
    pred = [rect(0, 0, 10, 10), rect(20, 0, 30, 10), rect(40, 0, 50, 10), rect(60, 0, 70, 10)]
    scores = [0.95, 0.55, 0.35, 0.25]
    result = scored(gt, [False] * 3, pred, scores, score_threshold=0.5)
    assert (result["precision"], result["recall"]) == (1.0, pytest.approx(2 / 3))
    # 0.3: 3 of 3 found, 3 of 3 predictions right; 0.2: a false positive more; ties: lowest
    assert result["hmean_best_thr"] == 1.0 and result["best_thr"] == 0.3
    assert result["hmean"] == pytest.approx(0.8)
    # a score equal to the threshold is kept
    assert scored(gt, [False] * 3, pred, [0.5] * 4, score_threshold=0.5)["recall"] == 1.0
    assert scored(gt, [False] * 3, pred, [0.7] * 4, score_threshold=0.7)["recall"] == 1.0
    result = scored(gt, [False] * 3, pred, scores, score_threshold=0.9, thresholds=(0.9, 0.6))
    assert result["best_thr"] == 0.6 and result["recall"] == pytest.approx(1 / 3)


def rrc_reference(images: list[dict], score_threshold: float) -> tuple[float, float, float]:
    """The RRC script's loops over axis-aligned rectangles (closed-form areas), dataset sums."""

    def area(r: tuple) -> float:
        return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])

    def inter(a: tuple, b: tuple) -> float:
        return area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))

    total_gt = total_det = total_matched = 0
    for image in images:
        dets = [
            d for d, s in zip(image["pred"], image["scores"], strict=True) if s >= score_threshold
        ]
        care = [g for g, ig in zip(image["gt"], image["ignore"], strict=True) if not ig]
        dont = [g for g, ig in zip(image["gt"], image["ignore"], strict=True) if ig]
        dets = [d for d in dets if not any(inter(d, g) / (area(d) + 1e-5) > 0.5 for g in dont)]
        gt_used, det_used, matched = set(), set(), 0
        for gi, g in enumerate(care):
            for di, d in enumerate(dets):
                union = area(g) + area(d) - inter(g, d)
                if gi not in gt_used and di not in det_used and inter(g, d) / union > 0.5:
                    gt_used.add(gi)
                    det_used.add(di)
                    matched += 1
        total_gt, total_det, total_matched = (
            total_gt + len(care),
            total_det + len(dets),
            total_matched + matched,
        )
    return hmean_scores(total_gt, total_det, total_matched)


def random_images(seed: int, count: int) -> list[dict]:
    """Rectangles: ground truth, some "don't care", predictions near some of them (several
    near one), and noise, with scores."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        n = int(rng.integers(0, 6))
        gt = [
            tuple(float(v) for v in (x, y, x + w, y + h))
            for x, y, w, h in zip(
                rng.uniform(0, 80, n),
                rng.uniform(0, 80, n),
                rng.uniform(8, 30, n),
                rng.uniform(4, 12, n),
                strict=True,
            )
        ]
        ignore = (rng.random(n) < 0.25).tolist()
        pred = []
        for g in gt:
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 2.0, 4)
                pred.append(tuple(float(v) for v in np.asarray(g) + jitter))
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, 90, 2)
            pred.append((float(x), float(y), float(x + 10), float(y + 6)))
        order = rng.permutation(len(pred))
        pred = [pred[k] for k in order if pred[k][2] > pred[k][0] and pred[k][3] > pred[k][1]]
        images.append(
            {"gt": gt, "ignore": ignore, "pred": pred, "scores": rng.random(len(pred)).tolist()}
        )
    return images


def _tensors(image: dict) -> tuple:
    def polys(rects: list) -> torch.Tensor:
        return torch.tensor([rect(*r) for r in rects], dtype=torch.float64).reshape(-1, 4, 2)

    return (
        polys(image["pred"]),
        torch.tensor(image["scores"]),
        polys(image["gt"]),
        torch.tensor(image["ignore"], dtype=torch.bool),
    )


def update_all(metric: TextDetectionMetric, images: list[dict], order: list[int], batch: int):
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        parts = list(zip(*(_tensors(images[i]) for i in chunk), strict=True))
        metric.update(*parts, torch.tensor(chunk))


def test_random_rectangles_equal_the_rrc_loops() -> None:
    images = random_images(0, 40)
    metric = TextDetectionMetric(score_threshold=0.3, thresholds=(0.3, 0.6))
    update_all(metric, images, list(range(len(images))), batch=4)
    result = metric.compute()
    precision, recall, hmean = rrc_reference(images, 0.3)
    assert (result["precision"], result["recall"], result["hmean"]) == pytest.approx(
        (precision, recall, hmean), abs=1e-12
    )
    assert 0.2 < hmean < 0.95
    best = max((rrc_reference(images, t)[2], -t) for t in (0.3, 0.6))
    assert (result["hmean_best_thr"], -result["best_thr"]) == pytest.approx(best)
    assert result["num_images"] == 40 and len(metric.last_per_image) == 40


def test_repeated_index_counted_once() -> None:
    images = random_images(3, 5)
    metric = TextDetectionMetric()
    update_all(metric, images, [0, 1, 2, 3, 4], batch=2)
    expected = metric.compute()
    again = TextDetectionMetric()
    update_all(again, images, [0, 1, 2, 3, 4, 2, 0], batch=3)
    assert again.compute() == expected
    with pytest.raises(ValueError, match=r"image 0 of the batch \(dataset index 7\)"):
        again.update(
            [torch.zeros(2, 4, 2)],
            [torch.ones(1)],
            [torch.zeros(0, 4, 2)],
            [torch.zeros(0, dtype=torch.bool)],
            torch.tensor([7]),
        )


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list | None) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        images = random_images(1, 7)
        shard = list(DistributedSampler(range(7), num_replicas=world, rank=rank, shuffle=False))
        metric = TextDetectionMetric(score_threshold=0.4)
        update_all(metric, images, shard, batch=2)
        result = metric.compute()
        Path(out, f"{rank}.json").write_text(
            json.dumps({"shard": shard, "stats": result, "per_image": metric.last_per_image})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_equal_one(tmp_path: Path) -> None:
    results = run_two_processes(_ddp_worker, tmp_path)
    images = random_images(1, 7)
    single = TextDetectionMetric(score_threshold=0.4)
    update_all(single, images, list(range(7)), batch=3)
    expected = single.compute()
    assert results[1]["shard"] == [1, 3, 5, 0]
    for got in results:
        assert got["stats"] == expected
        assert got["per_image"] == single.last_per_image

"""ILSVRC CLS-LOC errors: known answers per image, a loop-based recomputation on random cases,
and the ``LocalizationError`` metric under batching and distributed-sampler padding."""

from __future__ import annotations

import doctest
import random

import pytest
import torch
from torch.utils.data import DistributedSampler

import cvbench.metrics.localization as localization
from cvbench.metrics.classification import NOT_RANKED
from cvbench.metrics.localization import LocalizationError, localization_ranks

OBJECT = [10.0, 10.0, 30.0, 30.0]  # x0, y0, x1, y1 pixels
OTHER = [60.0, 60.0, 80.0, 80.0]  # no overlap with OBJECT
PAD = [0.0, 0.0, 0.0, 0.0]


def test_doctests() -> None:
    result = doctest.testmod(localization)
    assert result.attempted > 0
    assert result.failed == 0


def _known_case():
    """Eight images, 5 guesses each unless padded with -1; target class of image i in
    ``target``; comments give (class rank, loc rank)."""
    rows = [
        # right class, wrong box: (0, -)
        ([7, 1, 2, 3, 4], [OBJECT] + [OTHER] * 4, 7, [OTHER]),
        # right box, wrong class: (-, -)
        ([1, 2, 3, 4, 5], [OBJECT] * 5, 7, [OBJECT]),
        # right at the third guess (rank 2): (2, 2)
        ([1, 2, 7, 4, 5], [OBJECT] * 5, 7, [OBJECT]),
        # two boxes of the class; guess box [10, 60, 20, 80] covers half of the second one
        # (intersection 200, union 400 + 200 - 200 = 400: IoU exactly 0.5 counts): (0, 0)
        ([7, 1, 2, 3, 4], [[10.0, 60, 20, 80]] + [PAD] * 4, 7, [OBJECT, [10.0, 60, 30, 80]]),
        # IoU just below 0.5 ([10, 60, 19.9, 80]: 198 / 400) does not: (0, -)
        ([7, 1, 2, 3, 4], [[10.0, 60, 19.9, 80]] + [PAD] * 4, 7, [OBJECT, [10.0, 60, 30, 80]]),
        # the class twice: first with a wrong box, then a right one: (0, 1)
        ([7, 7, 2, 3, 4], [OTHER, OBJECT, PAD, PAD, PAD], 7, [OBJECT]),
        # two guesses only, padded with -1; right at the second: (1, 1)
        ([3, 0, -1, -1, -1], [OTHER, OBJECT, PAD, PAD, PAD], 0, [OBJECT]),
        # right at the fifth guess: (4, 4)
        ([1, 2, 3, 4, 9], [OBJECT] * 5, 9, [OBJECT]),
    ]
    labels = torch.tensor([r[0] for r in rows])
    boxes = torch.tensor([r[1] for r in rows])
    target = torch.tensor([r[2] for r in rows])
    gt = [torch.tensor(r[3]) for r in rows]
    expected_class = [0, NOT_RANKED, 2, 0, 0, 0, 1, 4]
    expected_loc = [NOT_RANKED, NOT_RANKED, 2, 0, NOT_RANKED, 1, 1, 4]
    return labels, boxes, target, gt, expected_class, expected_loc


def test_localization_ranks_known_answers() -> None:
    labels, boxes, target, gt, expected_class, expected_loc = _known_case()
    class_rank, loc_rank = localization_ranks(labels, boxes, target, gt)
    assert class_rank.tolist() == expected_class
    assert loc_rank.tolist() == expected_loc
    assert class_rank.dtype == loc_rank.dtype == torch.int64


def test_metric_known_answers() -> None:
    # class ranks 0, -, 2, 0, 0, 0, 1, 4: top-1 misses 4 of 8, top-5 misses 1.
    # loc ranks -, -, 2, 0, -, 1, 1, 4: top-1 misses 7 of 8, top-5 misses 3.
    labels, boxes, target, gt, _, _ = _known_case()
    metric = LocalizationError()
    metric.update(labels, boxes, target, gt, torch.arange(8))
    assert metric.compute() == {
        "top1_error": 50.0,
        "top5_error": 12.5,
        "top1_loc_error": 87.5,
        "top5_loc_error": 37.5,
        "num_images": 8,
    }
    assert metric.last_images["index"].tolist() == list(range(8))
    assert metric.last_images["loc_rank"].tolist()[:3] == [NOT_RANKED, NOT_RANKED, 2]


def test_fewer_than_five_guesses() -> None:
    # two guesses per image: top-5 counts what there is
    labels = torch.tensor([[4, 2], [1, 3], [0, 0]])
    boxes = torch.tensor([[OBJECT, OBJECT], [OTHER, OBJECT], [OBJECT, OBJECT]])
    target = torch.tensor([2, 3, 5])
    gt = [torch.tensor([OBJECT])] * 3
    class_rank, loc_rank = localization_ranks(labels, boxes, target, gt)
    assert class_rank.tolist() == loc_rank.tolist() == [1, 1, NOT_RANKED]
    metric = LocalizationError()
    metric.update(labels, boxes, target, gt, torch.arange(3))
    result = metric.compute()
    assert result["top1_error"] == 100.0
    assert result["top5_error"] == result["top5_loc_error"] == pytest.approx(100 / 3, abs=1e-12)
    # one guess, and an image without a box of its class (its localization can never be right)
    class_rank, loc_rank = localization_ranks(
        torch.tensor([[2]]), torch.tensor([[OBJECT]]), torch.tensor([2]), [torch.zeros(0, 4)]
    )
    assert (class_rank.item(), loc_rank.item()) == (0, NOT_RANKED)


def test_more_than_five_guesses_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"shape \(1, 6\); expected \(B, G\) with G <= 5"):
        LocalizationError().update(
            torch.zeros(1, 6, dtype=torch.int64),
            torch.zeros(1, 6, 4),
            torch.zeros(1, dtype=torch.int64),
            [torch.zeros(1, 4)],
            torch.arange(1),
        )
    with pytest.raises(ValueError, match="expected \\(B, G\\), \\(B, G, 4\\), \\(B,\\) and B"):
        localization_ranks(
            torch.zeros(2, 5, dtype=torch.int64),
            torch.zeros(2, 4, 4),
            torch.zeros(2, dtype=torch.int64),
            [torch.zeros(1, 4)] * 2,
        )


# --- random cases, recomputed with plain Python ---------------------------------------------


def _iou(a: list[float], b: list[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _random_case(seed: int, n: int = 60, num_classes: int = 4):
    """Integer boxes (exact IoUs), few classes (frequent right guesses), 1-3 boxes per image;
    half the guessed boxes are one of the image's boxes moved by up to 3 pixels."""
    rng = random.Random(seed)

    def box() -> list[float]:
        x0, y0 = rng.randint(0, 20), rng.randint(0, 20)
        return [x0, y0, x0 + rng.randint(1, 12), y0 + rng.randint(1, 12)]

    def near(gt_boxes: list[list[float]]) -> list[float]:
        x0, y0, x1, y1 = (v + rng.randint(-3, 3) for v in rng.choice(gt_boxes))
        return [x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)]

    gt = [[box() for _ in range(rng.randint(1, 3))] for _ in range(n)]
    labels = [[rng.randrange(num_classes) for _ in range(5)] for _ in range(n)]
    boxes = [[near(g) if rng.random() < 0.5 else box() for _ in range(5)] for g in gt]
    target = [rng.randrange(num_classes) for _ in range(n)]
    return labels, boxes, target, gt


def _errors_by_loops(labels, boxes, target, gt) -> dict[str, float]:
    """The definition read literally: an image is right at k if one of its first k guesses is."""
    out = {}
    for k in (1, 5):
        wrong_class = wrong_loc = 0
        for guesses, guess_boxes, t, gt_boxes in zip(labels, boxes, target, gt, strict=True):
            hits = [g == t for g in guesses[:k]]
            located = [
                g == t and any(_iou(b, gb) >= 0.5 for gb in gt_boxes)
                for g, b in zip(guesses[:k], guess_boxes[:k], strict=True)
            ]
            wrong_class += not any(hits)
            wrong_loc += not any(located)
        out[f"top{k}_error"] = 100.0 * wrong_class / len(target)
        out[f"top{k}_loc_error"] = 100.0 * wrong_loc / len(target)
    return out


def _tensors(labels, boxes, target, gt):
    return (
        torch.tensor(labels),
        torch.tensor(boxes, dtype=torch.float32),
        torch.tensor(target),
        [torch.tensor(g, dtype=torch.float32) for g in gt],
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_equal_the_definition(seed: int) -> None:
    case = _random_case(seed)
    expected = _errors_by_loops(*case)
    assert 0 < expected["top5_loc_error"] < 100  # neither trivial nor hopeless
    assert expected["top5_loc_error"] > expected["top5_error"]
    metric = LocalizationError()
    labels, boxes, target, gt = _tensors(*case)
    for rows in torch.arange(len(target)).split([7, 20, 1, 32]):
        metric.update(labels[rows], boxes[rows], target[rows], [gt[i] for i in rows], rows)
    result = metric.compute()
    assert result == pytest.approx({**expected, "num_images": len(target)}, abs=1e-12)


def test_padded_distributed_sampler_counts_each_index_once() -> None:
    """61 images on 4 processes: DistributedSampler pads to 64 by repeating indices 0, 1, 2."""
    labels, boxes, target, gt = _tensors(*_random_case(seed=5, n=61))
    expected = _errors_by_loops(*_random_case(seed=5, n=61))
    metric = LocalizationError()
    seen = []
    for rank in range(4):
        shard = torch.tensor(list(DistributedSampler(range(61), num_replicas=4, rank=rank)))
        seen += shard.tolist()
        for rows in shard.split(5):
            metric.update(labels[rows], boxes[rows], target[rows], [gt[i] for i in rows], rows)
    assert len(seen) == 64 and len(set(seen)) == 61  # the padding is really there
    result = metric.compute()
    assert result == pytest.approx({**expected, "num_images": 61}, abs=1e-12)
    assert metric.last_images["index"].tolist() == list(range(61))


def test_duplicates_do_not_weigh_twice() -> None:
    """Repeating the images that are wrong would raise the errors if they counted twice."""
    labels, boxes, target, gt, expected_class, _ = _known_case()
    rows = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 1, 1, 4])  # image 1 is wrong everywhere
    metric = LocalizationError()
    metric.update(labels[rows], boxes[rows], target[rows], [gt[i] for i in rows], rows)
    result = metric.compute()
    assert result["num_images"] == 8
    assert result["top1_error"] == 50.0 and result["top5_loc_error"] == 37.5
    assert metric.last_images["class_rank"].tolist() == expected_class

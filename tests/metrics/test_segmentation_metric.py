"""Semantic segmentation scores against scikit-learn's confusion matrix and the FCN paper's
``score.py`` arithmetic in numpy, on cases built to hit the corners (void pixels, absent and
predicted-only classes, images of different sizes, repeated images, two real processes), and
against torchmetrics' ``MulticlassJaccardIndex``."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from torch.utils.data import DistributedSampler
from torchmetrics.classification import MulticlassJaccardIndex

import cvbench.metrics.segmentation as segmentation_module
from cvbench.metrics.segmentation import (
    SEGMENTATION_STATS,
    SegmentationMetric,
    confusion_matrix,
    segmentation_scores,
)

IGNORE = 255


# --- references ---------------------------------------------------------------------------------


def sk_confusion(
    pairs: list[tuple[np.ndarray, np.ndarray]], num_classes: int, ignore_index: int = IGNORE
) -> np.ndarray:
    """scikit-learn's confusion matrix of all pixels pooled, void pixels removed first."""
    pred = np.concatenate([p.ravel() for p, _ in pairs])
    target = np.concatenate([t.ravel() for _, t in pairs])
    keep = target != ignore_index
    return sk_confusion_matrix(target[keep], pred[keep], labels=list(range(num_classes)))


def numpy_scores(hist: np.ndarray) -> dict[str, float]:
    """The FCN paper's ``score.py`` (shelhamer/fcn.berkeleyvision.org) on a confusion matrix,
    x100; NaN IoU for classes in neither ground truth nor prediction, ``nanmean`` over the rest."""
    hist = hist.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
        acc = np.diag(hist) / hist.sum(1)
    freq = hist.sum(1) / hist.sum()
    return {
        "miou": 100 * np.nanmean(iu),
        "pixel_acc": 100 * np.diag(hist).sum() / hist.sum(),
        "mean_acc": 100 * np.nanmean(acc),
        "fwiou": 100 * (freq[freq > 0] * iu[freq > 0]).sum(),
        "iou": 100 * iu,
        "acc": 100 * acc,
    }


def assert_scores(stats: dict, per_class: list[dict], hist: np.ndarray) -> None:
    expected = numpy_scores(hist)
    for key in SEGMENTATION_STATS:
        assert stats[key] == pytest.approx(expected[key], abs=1e-9), key
    for c, row in enumerate(per_class):
        assert row["class_id"] == c
        for key in ("iou", "acc"):
            if np.isnan(expected[key][c]):
                assert row[key] is None, (key, c)
            else:
                assert row[key] == pytest.approx(expected[key][c], abs=1e-9), (key, c)
        assert row["gt_pixels"] == hist[c].sum()
        assert row["pred_pixels"] == hist[:, c].sum()


def random_pairs(
    seed: int, sizes: list[tuple[int, int]], num_classes: int, *, void: float = 0.1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pred, target) int64 label maps: predictions right ~70% of the time, ``void`` of the
    targets 255."""
    rng = np.random.default_rng(seed)
    pairs = []
    for h, w in sizes:
        target = rng.integers(0, num_classes, (h, w))
        pred = np.where(rng.random((h, w)) < 0.7, target, rng.integers(0, num_classes, (h, w)))
        target[rng.random((h, w)) < void] = IGNORE
        pairs.append((pred, target))
    return pairs


def metric_of(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    *,
    batch: int = 2,
    order: list[int] | None = None,
) -> SegmentationMetric:
    """A metric updated with lists of (H, W) tensors, ``batch`` images a call."""
    metric = SegmentationMetric(num_classes=num_classes, ignore_index=IGNORE)
    order = list(range(len(pairs))) if order is None else order
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        metric.update(
            [torch.from_numpy(pairs[i][0]) for i in chunk],
            [torch.from_numpy(pairs[i][1]) for i in chunk],
            torch.tensor(chunk),
        )
    return metric


# --- pure functions -----------------------------------------------------------------------------


def test_doctests() -> None:
    result = doctest.testmod(segmentation_module)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_equals_sklearn_without_void_pixels(seed: int) -> None:
    ((pred, target),) = random_pairs(seed, [(37, 53)], 6, void=0.2)
    got = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), num_classes=6)
    assert got.dtype == torch.int64 and got.shape == (6, 6)
    np.testing.assert_array_equal(got.numpy(), sk_confusion([(pred, target)], 6))
    assert int(got.sum()) == int((target != IGNORE).sum()) < target.size


def test_confusion_matrix_takes_small_integer_dtypes_and_any_ignore_index() -> None:
    ((pred, target),) = random_pairs(3, [(20, 30)], 5)
    target[target == IGNORE] = 7
    expected = sk_confusion([(pred, target)], 5, ignore_index=7)
    got = confusion_matrix(
        torch.from_numpy(pred).to(torch.uint8),
        torch.from_numpy(target).to(torch.int16),
        num_classes=5,
        ignore_index=7,
    )
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("pred", 4, "prediction value 4; expected class ids 0..3 (num_classes 4)"),
        ("pred", -1, "prediction value -1; expected class ids 0..3"),
        ("pred", 255, "prediction value 255; expected class ids 0..3"),
        ("target", 4, "target value 4; expected class ids 0..3 (num_classes 4) or ignore_index"),
        ("target", 254, "target value 254; expected class ids 0..3"),
        ("target", -3, "target value -3; expected"),
    ],
)
def test_confusion_matrix_names_a_bad_value(where: str, value: int, message: str) -> None:
    pred, target = torch.zeros(3, 5, dtype=torch.int64), torch.full((3, 5), IGNORE)
    (pred if where == "pred" else target)[1, 2] = value
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        confusion_matrix(pred, target, num_classes=4)


def test_confusion_matrix_input_errors() -> None:
    ok = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"pred shape \(2, 3\) != target shape \(3, 2\)"):
        confusion_matrix(ok, ok.T, num_classes=2)
    with pytest.raises(ValueError, match="pred has dtype torch.float32; expected integer"):
        confusion_matrix(ok.float(), ok, num_classes=2)
    with pytest.raises(ValueError, match="ignore_index 0 is a class id .num_classes 2."):
        confusion_matrix(ok, ok, num_classes=2, ignore_index=0)
    with pytest.raises(ValueError, match="num_classes 0; expected an integer >= 1"):
        confusion_matrix(ok, ok, num_classes=0)


def test_scores_with_void_absent_and_predicted_only_classes() -> None:
    """Class 2 is in neither ground truth nor prediction (left out of the means), class 3 only
    in the prediction (IoU 0, counted), and void pixels predicted as class 3 count nowhere."""
    target = np.array([[0, 0, 0, 1, 1, 1, IGNORE, IGNORE]])
    pred = np.array([[0, 0, 3, 1, 1, 0, 3, 3]])
    hist = sk_confusion([(pred, target)], 4)
    scores = segmentation_scores(torch.from_numpy(hist), ["road", "car", "bus", "sky"])
    assert_scores(scores.stats, scores.per_class, hist)
    by_name = {c["name"]: c for c in scores.per_class}
    assert by_name["bus"]["iou"] is None and by_name["bus"]["acc"] is None
    assert by_name["sky"]["iou"] == 0.0 and by_name["sky"]["acc"] is None
    assert by_name["sky"]["pred_pixels"] == 1 and by_name["sky"]["gt_pixels"] == 0
    # road: TP 2, FP 1, FN 1 -> 50; car: TP 2, FN 1 -> 66.7; sky 0; bus left out
    assert scores.stats["miou"] == pytest.approx((50 + 200 / 3 + 0) / 3, abs=1e-12)
    assert scores.stats["mean_acc"] == pytest.approx(200 / 3, abs=1e-12)
    # FW IoU: ground-truth frequency 1/2 each for road and car; sky has no ground truth
    assert scores.stats["fwiou"] == pytest.approx(0.5 * 50 + 0.5 * 200 / 3, abs=1e-12)


def test_scores_undefined_without_pixels() -> None:
    scores = segmentation_scores(torch.zeros(3, 3, dtype=torch.int64))
    assert scores.stats == dict.fromkeys(SEGMENTATION_STATS)
    assert [c["name"] for c in scores.per_class] == ["0", "1", "2"]
    assert all(c["iou"] is None and c["acc"] is None for c in scores.per_class)


def test_scores_input_errors() -> None:
    with pytest.raises(ValueError, match=r"confusion shape \(2, 3\); expected \(K, K\)"):
        segmentation_scores(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="1 class names for 2 classes"):
        segmentation_scores(torch.zeros(2, 2, dtype=torch.int64), ["a"])
    with pytest.raises(ValueError, match="negative counts"):
        segmentation_scores(-torch.eye(2, dtype=torch.int64))


# --- SegmentationMetric -------------------------------------------------------------------------


SIZES = [(13, 17), (40, 31), (8, 8), (25, 60), (19, 23), (33, 33), (5, 41)]


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_metric_over_images_of_different_sizes_equals_pooled_sklearn(batch: int) -> None:
    pairs = random_pairs(4, SIZES, 5)
    metric = metric_of(pairs, 5, batch=batch)
    metric.class_names = list("abcde")
    out = metric.compute()
    hist = sk_confusion(pairs, 5)
    np.testing.assert_array_equal(metric.last_confusion.numpy(), hist)
    assert out["num_images"] == len(SIZES)
    assert_scores(out, metric.last_scores.per_class, hist)
    assert [c["name"] for c in metric.last_scores.per_class] == list("abcde")


def test_metric_batch_tensor_equals_list_and_forward_only_updates() -> None:
    pairs = random_pairs(5, [(21, 34)] * 4, 3)
    preds = torch.stack([torch.from_numpy(p) for p, _ in pairs]).to(torch.uint8)
    target = torch.stack([torch.from_numpy(t) for _, t in pairs])
    metric = SegmentationMetric(num_classes=3)
    assert metric(preds, target, torch.arange(4)) is None
    out = metric.compute()
    reference = metric_of(pairs, 3, batch=3)
    assert out == reference.compute()
    np.testing.assert_array_equal(metric.last_confusion.numpy(), sk_confusion(pairs, 3))


def test_dataset_level_is_not_the_mean_of_images() -> None:
    """A small image all right and a large one mostly wrong: the per-image mean of mIoU or
    pixel accuracy weighs the small image as much as the large one; the dataset-level scores
    weigh pixels."""
    small_target = np.zeros((2, 2), dtype=np.int64)
    large_target = np.ones((10, 10), dtype=np.int64)
    large_pred = large_target.copy()
    large_pred[:6] = 0
    pairs = [(small_target.copy(), small_target), (large_pred, large_target)]
    metric = metric_of(pairs, 2, batch=1)
    out = metric.compute()
    hist = sk_confusion(pairs, 2)
    assert_scores(out, metric.last_scores.per_class, hist)
    per_image = metric.last_per_image
    assert per_image["index"].tolist() == [0, 1]
    expected = [numpy_scores(sk_confusion([pair], 2)) for pair in pairs]
    np.testing.assert_allclose(per_image["miou"].numpy(), [e["miou"] for e in expected])
    np.testing.assert_allclose(per_image["pixel_acc"].numpy(), [e["pixel_acc"] for e in expected])
    # per image: (100 + 40) / 2 = 70 pixel accuracy; pooled: 44 / 104
    assert per_image["pixel_acc"].mean().item() == pytest.approx(70.0)
    assert out["pixel_acc"] == pytest.approx(100 * 44 / 104)
    assert abs(per_image["miou"].mean().item() - out["miou"]) > 10


def test_per_image_scores_of_random_images() -> None:
    pairs = random_pairs(6, SIZES, 4, void=0.3)
    pairs[2][1][:] = IGNORE  # an image without a scored pixel
    metric = metric_of(pairs, 4, batch=2, order=[3, 1, 2, 0, 6, 5, 4])
    metric.compute()
    per_image = metric.last_per_image
    assert per_image["index"].tolist() == list(range(len(SIZES)))
    for i, pair in enumerate(pairs):
        expected = numpy_scores(sk_confusion([pair], 4)) if i != 2 else None
        if expected is None:
            assert np.isnan(per_image["miou"][i]) and np.isnan(per_image["pixel_acc"][i])
        else:
            assert per_image["miou"][i].item() == pytest.approx(expected["miou"], abs=1e-9)
            assert per_image["pixel_acc"][i].item() == pytest.approx(expected["pixel_acc"])


def test_a_repeated_index_is_counted_once_first_copy_kept() -> None:
    """Image 1 is updated again in a later batch with another prediction (as a padded sampler
    shard, or a second pass, would): the first copy counts, once."""
    pairs = random_pairs(7, SIZES[:4], 4)
    metric = metric_of(pairs, 4, batch=2)
    other = np.zeros_like(pairs[1][0])
    metric.update([torch.from_numpy(other)], [torch.from_numpy(pairs[1][1])], torch.tensor([1]))
    out = metric.compute()
    assert out["num_images"] == 4
    hist = sk_confusion(pairs, 4)
    np.testing.assert_array_equal(metric.last_confusion.numpy(), hist)
    assert_scores(out, metric.last_scores.per_class, hist)
    # the test can fail: counting the copy would change the matrix
    assert (sk_confusion([*pairs, (other, pairs[1][1])], 4) != hist).any()


def test_sampler_shards_concatenated_as_the_gather_does() -> None:
    """The states of two shards of a padded DistributedSampler, concatenated (what the gather
    hands compute), score as one pass over the images."""
    pairs = random_pairs(8, SIZES, 5)
    metric = SegmentationMetric(num_classes=5)
    for rank in range(2):
        shard = list(DistributedSampler(range(7), num_replicas=2, rank=rank, shuffle=False))
        for i in shard:
            p, t = (torch.from_numpy(a)[None] for a in pairs[i])
            metric.update(p, t, torch.tensor([i]))
    assert metric.compute()["num_images"] == 7
    np.testing.assert_array_equal(metric.last_confusion.numpy(), sk_confusion(pairs, 5))


def test_metric_without_update_or_without_scored_pixels() -> None:
    metric = SegmentationMetric(num_classes=3)
    with pytest.warns(UserWarning, match="compute.*before.*update"):
        out = metric.compute()
    assert out == {**dict.fromkeys(SEGMENTATION_STATS), "num_images": 0}
    metric = SegmentationMetric(num_classes=3)
    metric.update(torch.zeros(1, 4, 4, dtype=torch.int64), torch.full((1, 4, 4), 255), [0])
    assert metric.compute() == {**dict.fromkeys(SEGMENTATION_STATS), "num_images": 1}
    assert metric.last_scores.per_class[0]["pred_pixels"] == 0


def test_metric_errors_name_the_image() -> None:
    metric = SegmentationMetric(num_classes=3)
    good, bad = torch.zeros(2, 5, 6, dtype=torch.int64), torch.zeros(2, 5, 6, dtype=torch.int64)
    bad[1, 4, 5] = 3
    with pytest.raises(
        ValueError,
        match=r"^SegmentationMetric: image 1 of the batch \(dataset index 8\): prediction "
        r"value 3; expected class ids 0..2",
    ):
        metric.update(bad, good, torch.tensor([7, 8]))
    with pytest.raises(ValueError, match=r"image 1 of the batch \(dataset index 8\): target value"):
        metric.update([good[0], good[1]], [good[0], bad[1]], torch.tensor([7, 8]))
    with pytest.raises(
        ValueError,
        match=r"image 1 of the batch \(dataset index 8\): prediction shape \(5, 6\), target "
        r"shape \(6, 5\); expected the same \(H, W\)",
    ):
        metric.update([good[0], good[1]], [good[0], good[1].T], torch.tensor([7, 8]))
    with pytest.raises(ValueError, match="2 predictions, 2 targets, 3 dataset indices"):
        metric.update(good, good, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="prediction has dtype torch.float32.*argmax"):
        metric.update(good.float(), good, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="ignore_index 2 is a class id"):
        SegmentationMetric(num_classes=3, ignore_index=2)
    assert not metric.index  # nothing half-added
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        metric.update(good, good, torch.tensor([1, 2]))
        metric.class_names = ["a", "b"]
        metric.compute()


# --- torchmetrics -------------------------------------------------------------------------------


def test_miou_equals_torchmetrics_when_every_class_appears() -> None:
    pairs = random_pairs(9, [(30, 40)] * 5, 6)
    metric = metric_of(pairs, 6, batch=2)
    out = metric.compute()
    assert all(c["gt_pixels"] > 0 for c in metric.last_scores.per_class)
    jaccard = MulticlassJaccardIndex(num_classes=6, average="macro", ignore_index=IGNORE)
    for p, t in pairs:
        jaccard.update(torch.from_numpy(p)[None], torch.from_numpy(t)[None])
    # torchmetrics divides in float32
    assert out["miou"] == pytest.approx(100 * float(jaccard.compute()), abs=1e-4)


def test_torchmetrics_on_absent_and_predicted_only_classes() -> None:
    """What torchmetrics 1.9 does where the conventions could differ: ``_jaccard_index_reduce``
    gives weight 0 to classes whose confusion row and column are both empty, so a class absent
    from ground truth and prediction is left out of its macro mean, and a predicted-only class
    counts 0 - as here and in MMSegmentation. (Older torchmetrics averaged absent classes in
    with ``absent_score``.) Its remaining differences: it divides in float32; its confusion
    matrix is summed across processes, so images repeated by a padded DistributedSampler count
    twice; every batch is one (B, H, W) tensor; with no scored pixel it gives NaN, not None.
    Its ``segmentation.MeanIoU`` averages per image and is not this metric (METRICS.md)."""
    target = torch.tensor([[[0, 0, 0, 1, 1, 1, IGNORE, IGNORE]]])
    pred = torch.tensor([[[0, 0, 3, 1, 1, 0, 3, 3]]])
    metric = SegmentationMetric(num_classes=4)
    metric.update(pred, target, [0])
    jaccard = MulticlassJaccardIndex(num_classes=4, average="macro", ignore_index=IGNORE)
    jaccard.update(pred, target)
    assert metric.compute()["miou"] == pytest.approx(100 * float(jaccard.compute()), abs=1e-4)


# --- two real processes -------------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list | None) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        pairs = random_pairs(10, SIZES, 5)
        if shards is None:
            sampler = DistributedSampler(range(7), num_replicas=world, rank=rank, shuffle=False)
            shard = list(sampler)
        else:
            shard = shards[rank]
        metric = metric_of(pairs, 5, batch=2, order=shard)
        result = metric.compute()
        Path(out, f"{rank}.json").write_text(
            json.dumps(
                {
                    "shard": shard,
                    "stats": result,
                    "confusion": metric.last_confusion.tolist(),
                    "per_image_index": metric.last_per_image["index"].tolist(),
                }
            )
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_gather_once(tmp_path: Path) -> None:
    """Two gloo processes, 7 images of different sizes (rank 1's shard repeats image 0): every
    rank computes what one process computes on the 7 images."""
    results = run_two_processes(_ddp_worker, tmp_path)
    pairs = random_pairs(10, SIZES, 5)
    expected = metric_of(pairs, 5, batch=3).compute()
    hist = sk_confusion(pairs, 5)
    assert results[1]["shard"] == [1, 3, 5, 0]  # the padding repeats image 0
    for got in results:
        assert got["stats"] == pytest.approx(expected, abs=1e-12)
        assert got["stats"]["num_images"] == 7
        np.testing.assert_array_equal(np.array(got["confusion"]), hist)
        assert got["per_image_index"] == list(range(7))
    # counting image 0 twice would change the matrix
    assert (sk_confusion([*pairs, pairs[0]], 5) != hist).any()


@pytest.mark.timeout(120)
def test_two_processes_one_without_images(tmp_path: Path) -> None:
    """A process that scored no image (torchmetrics sends an empty float32 placeholder for its
    states) still gathers with the other's int64 states."""
    results = run_two_processes(_ddp_worker, tmp_path, shards=[[2, 0], []])
    pairs = random_pairs(10, SIZES, 5)
    hist = sk_confusion([pairs[0], pairs[2]], 5)
    for got in results:
        assert got["stats"]["num_images"] == 2
        np.testing.assert_array_equal(np.array(got["confusion"]), hist)

"""Top-k error (ILSVRC devkit): known answers, scikit-learn's ``top_k_accuracy_score``, the
``TopKError`` metric under batching and distributed-sampler padding, non-finite scores (wrong
at every k, also through the devkit files), and two real gloo processes, one without images."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from gloo import run_two_processes
from sklearn.metrics import top_k_accuracy_score
from torch.utils.data import DistributedSampler

import cvbench.metrics.classification as classification
import cvbench.tasks.classification_report as classification_report
from cvbench.metrics.classification import (
    NO_GUESS,
    NOT_RANKED,
    TopKError,
    first_occurrence,
    guesses_rank,
    target_rank,
    top_guesses,
    topk_error,
)
from cvbench.metrics.ilsvrc_files import score_ilsvrc_files
from cvbench.metrics.localization import localization_ranks
from cvbench.tasks.classification_report import submission_guesses

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("module", [classification, classification_report])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


# --- target_rank ------------------------------------------------------------------------------


def test_target_rank_known_answers() -> None:
    scores = torch.tensor([[0.1, 0.7, 0.2]]).repeat(3, 1)
    assert target_rank(scores, torch.tensor([1, 2, 0])).tolist() == [0, 1, 2]


def test_target_rank_ties_go_to_the_lower_class_index() -> None:
    all_tied = torch.full((4, 4), 0.5)
    assert target_rank(all_tied, torch.arange(4)).tolist() == [0, 1, 2, 3]
    scores = torch.tensor([[0.2, 0.9, 0.9, 0.1]]).repeat(4, 1)
    # order: class 1, class 2 (tied with 1, higher index), class 0, class 3
    assert target_rank(scores, torch.tensor([0, 1, 2, 3])).tolist() == [2, 0, 1, 3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_rank_equals_position_in_a_stable_sort(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (64, 7), generator=gen).float()  # many ties
    target = torch.randint(0, 7, (64,), generator=gen)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    expected = (order == target[:, None]).int().argmax(dim=1)
    assert torch.equal(target_rank(scores, target), expected)


def test_sklearn_breaks_ties_the_other_way() -> None:
    """Why the comparison with scikit-learn uses tie-free scores: it ranks a tie's higher
    class index first (reversed mergesort), the devkit convention ranks the lower first."""
    scores = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([0, 0])
    assert topk_error(target_rank(scores, target), 1) == 0.0
    assert top_k_accuracy_score(target.numpy(), scores.numpy(), k=1, labels=[0, 1, 2]) == 0.0


# --- topk_error, guesses_rank, first_occurrence -----------------------------------------------


def test_topk_error_known_answers() -> None:
    ranks = torch.tensor([0, 1, 5, 2, NOT_RANKED])
    assert [topk_error(ranks, k) for k in (1, 2, 3, 5, 6)] == [80.0, 60.0, 40.0, 40.0, 20.0]
    assert topk_error(torch.tensor([0, 0, 0]), 1) == 0.0
    assert topk_error(torch.tensor([3]), 1) == 100.0
    third = topk_error(torch.tensor([1, 0, 0]), 1)
    assert isinstance(third, float)
    assert third == pytest.approx(100.0 / 3, abs=1e-12)  # float64: float32 is 1e-6 off


def test_topk_error_of_no_images_is_an_error() -> None:
    with pytest.raises(ValueError, match="zero images"):
        topk_error(torch.tensor([], dtype=torch.int64), 1)


def test_guesses_rank_known_answers() -> None:
    guesses = torch.tensor(
        [
            [3, 1, -1, -1, -1],  # target 1 is the second guess
            [2, 0, 1, 4, 5],  # target 7 absent
            [7, 7, 2, -1, -1],  # repeated guess: the first position counts
            [5, 6, 7, 8, 9],  # target 9 is the fifth guess
            [-1, -1, -1, -1, -1],  # no guesses at all
            [0, -1, -1, -1, -1],  # class 0 is an id like any other
        ]
    )
    target = torch.tensor([1, 7, 7, 9, 4, 0])
    ranks = guesses_rank(guesses, target)
    assert ranks.tolist() == [1, NOT_RANKED, 0, 4, NOT_RANKED, 0]
    assert topk_error(ranks, 1) == pytest.approx(400.0 / 6, abs=1e-12)
    assert topk_error(ranks, 5) == pytest.approx(200.0 / 6, abs=1e-12)


def test_guesses_rank_of_the_top5_of_scores_equals_target_rank() -> None:
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(200, 20, generator=gen)
    target = torch.randint(0, 20, (200,), generator=gen)
    guesses = scores.topk(5, dim=1).indices
    from_guesses = guesses_rank(guesses, target)
    from_scores = target_rank(scores, target)
    assert torch.equal(from_guesses, torch.where(from_scores < 5, from_scores, NOT_RANKED))


def test_first_occurrence_known_answers() -> None:
    # distinct values in increasing order: 2 (first at 1), 4 (at 0), 7 (at 3)
    assert first_occurrence(torch.tensor([4, 2, 4, 7, 2])).tolist() == [1, 0, 3]
    assert first_occurrence(torch.tensor([5, 5, 5])).tolist() == [0]
    assert first_occurrence(torch.tensor([0, 1, 2])).tolist() == [0, 1, 2]
    assert first_occurrence(torch.tensor([9, 3, 9, 3, 1])).tolist() == [4, 1, 0]


# --- scikit-learn -----------------------------------------------------------------------------


def _sklearn_error(target: torch.Tensor, scores: torch.Tensor, k: int) -> float:
    """100 x (1 - top-k accuracy) from scikit-learn."""
    num_classes = scores.shape[1]
    y_score = scores.double().numpy()
    if num_classes == 2:  # scikit-learn wants P(class 1) for two classes
        y_score = torch.softmax(scores.double(), dim=1)[:, 1].numpy()
    accuracy = top_k_accuracy_score(target.numpy(), y_score, k=k, labels=np.arange(num_classes))
    return 100.0 * (1.0 - accuracy)


@pytest.mark.parametrize("num_classes", [2, 3, 4, 5, 10, 100])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_tie_free_scores(seed: int, num_classes: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = 300
    scores = torch.randn(n, num_classes, generator=gen, dtype=torch.float64)
    target = torch.randint(0, num_classes, (n,), generator=gen)
    assert all(len(row.unique()) == num_classes for row in scores)  # tie-free

    ranks = target_rank(scores, target)
    metric = TopKError(num_classes=num_classes)
    metric.update(
        scores, target, torch.arange(n), F.cross_entropy(scores, target, reduction="none")
    )
    result = metric.compute()

    ks = [k for k in (1, 5) if k < num_classes]  # scikit-learn warns for k >= num_classes
    for k in ks:
        expected = _sklearn_error(target, scores, k)
        assert topk_error(ranks, k) == pytest.approx(expected, abs=1e-12)
        assert result[f"top{k}_error"] == pytest.approx(expected, abs=1e-12)
    if num_classes < 5:
        assert "top5_error" not in result  # k > num_classes is dropped
    elif num_classes == 5:
        assert result["top5_error"] == 0.0
    assert result["num_images"] == n


def test_topk_error_drops_k_above_num_classes() -> None:
    assert TopKError(num_classes=3).topk == (1,)
    assert TopKError(topk=(1, 3, 5), num_classes=3).topk == (1, 3)
    assert TopKError(topk=(5,), num_classes=3).topk == (1,)  # nothing left: top-1
    metric = TopKError(num_classes=1)
    metric.update(
        torch.zeros(4, 1), torch.zeros(4, dtype=torch.int64), torch.arange(4), torch.zeros(4)
    )
    assert metric.compute()["top1_error"] == 0.0


# --- TopKError: batches, duplicates, loss -----------------------------------------------------


def _dataset(seed: int, n: int = 103, num_classes: int = 10):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, num_classes, generator=gen)
    target = torch.randint(0, num_classes, (n,), generator=gen)
    loss = F.cross_entropy(scores, target, reduction="none")
    return scores, target, loss


def _one_shot(scores, target, loss) -> dict[str, float]:
    metric = TopKError(num_classes=scores.shape[1])
    metric.update(scores, target, torch.arange(len(target)), loss)
    return metric.compute()


@pytest.mark.parametrize("seed", [0, 1])
def test_batches_equal_one_shot(seed: int) -> None:
    scores, target, loss = _dataset(seed)
    expected = _one_shot(scores, target, loss)
    metric = TopKError(num_classes=10)
    for rows in torch.arange(len(target)).split([1, 16, 16, 7, 32, 31]):
        metric.update(scores[rows], target[rows], rows, loss[rows])
    result = metric.compute()
    assert result == pytest.approx(expected, abs=1e-12)
    assert result["num_images"] == len(target)


def test_one_shot_known_answer() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.3, 0.2, 0.5], [0.5, 0.4, 0.1]])
    target = torch.tensor([0, 2, 1, 2])  # ranks 0, 0, 2, 2
    loss = torch.tensor([1.0, 2.0, 3.0, 6.0])
    metric = TopKError(topk=(1, 2, 3), num_classes=3)
    metric.update(scores, target, torch.arange(4), loss)
    assert metric.compute() == {
        "top1_error": 50.0,
        "top2_error": 50.0,
        "top3_error": 0.0,
        "loss": 3.0,
        "num_images": 4,
    }


def test_padded_distributed_sampler_counts_each_index_once() -> None:
    """103 images on 4 processes: DistributedSampler pads to 104 by repeating index 0."""
    scores, target, loss = _dataset(seed=5)
    n = len(target)
    expected = _one_shot(scores, target, loss)
    metric = TopKError(num_classes=10)
    seen = []
    for rank in range(4):  # the gather concatenates every process's state
        shard = torch.tensor(
            list(DistributedSampler(range(n), num_replicas=4, rank=rank, shuffle=False))
        )
        seen += shard.tolist()
        for rows in shard.split(8):
            metric.update(scores[rows], target[rows], rows, loss[rows])
    assert len(seen) == 104 and len(set(seen)) == n  # the padding is really there
    result = metric.compute()
    assert result["num_images"] == n
    assert result == pytest.approx(expected, abs=1e-12)


def test_duplicates_do_not_weigh_twice() -> None:
    """Repeating the worst samples would raise the error and the loss if they counted twice."""
    scores, target, loss = _dataset(seed=6)
    n = len(target)
    worst = loss.topk(10).indices
    rows = torch.cat([torch.arange(n), worst, worst])
    metric = TopKError(num_classes=10)
    metric.update(scores[rows], target[rows], rows, loss[rows])
    result = metric.compute()
    assert result["num_images"] == n
    assert result["loss"] == pytest.approx(loss.double().mean().item(), abs=1e-12)
    ranks = target_rank(scores, target)
    assert result["top1_error"] == topk_error(ranks, 1)
    assert result["top5_error"] == topk_error(ranks, 5)
    counted_twice = loss[rows].double().mean().item()
    assert counted_twice > result["loss"] + 1e-3  # the case would catch a missing dedup


def test_loss_is_the_mean_over_unique_indices_not_over_batches() -> None:
    scores, target, _ = _dataset(seed=7, n=5, num_classes=3)
    loss = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0])
    metric = TopKError(num_classes=3)
    metric.update(scores[:4], target[:4], torch.arange(4), loss[:4])  # batch mean 2.5
    metric.update(scores[4:], target[4:], torch.tensor([4]), loss[4:])  # batch mean 10
    metric.update(scores[:1], target[:1], torch.tensor([0]), loss[:1])  # padding repeat
    assert metric.compute()["loss"] == 4.0  # (1 + 2 + 3 + 4 + 10) / 5, not (2.5 + 10 + 1) / 3


# --- non-finite scores: wrong at every k --------------------------------------------------------


def test_all_nan_scores_are_wrong_at_every_k() -> None:
    """A diverged model: NaN logits everywhere. Sorting ranks NaN first, so before the fix the
    target of every image came out rank 0 (top-1 error 0)."""
    scores = torch.full((6, 10), NAN)
    target = torch.tensor([0, 1, 2, 3, 4, 9])
    assert target_rank(scores, target).tolist() == [NOT_RANKED] * 6
    assert top_guesses(scores, 5).tolist() == [[NO_GUESS] * 5] * 6
    metric = TopKError(num_classes=10, keep_guesses=True)
    metric.update(
        scores, target, torch.arange(6), F.cross_entropy(scores, target, reduction="none")
    )
    result = metric.compute()
    assert result["top1_error"] == 100.0 and result["top5_error"] == 100.0
    assert np.isnan(result["loss"])  # the loss says it too
    assert (metric.last_images["guesses"] == NO_GUESS).all()


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_one_non_finite_score_makes_the_image_wrong(bad: float) -> None:
    """Any NaN or +-inf in a row, on the target or elsewhere, makes the image wrong at every k,
    however its other scores rank; the finite rows are untouched."""
    scores = torch.tensor([[0.9, 0.1, 0.0, 0.2]]).repeat(4, 1)  # target 0 is the best guess
    scores[0, 0] = bad  # on the target
    scores[1, 3] = bad  # on another class
    scores[2] = bad  # the whole row
    target = torch.zeros(4, dtype=torch.int64)
    assert target_rank(scores, target).tolist() == [NOT_RANKED, NOT_RANKED, NOT_RANKED, 0]
    guesses = top_guesses(scores, 4)
    assert guesses[:3].tolist() == [[NO_GUESS] * 4] * 3
    assert guesses[3].tolist() == [0, 3, 1, 2]
    for k in (1, 2, 3, 4):
        assert topk_error(target_rank(scores, target), k) == 75.0


@pytest.mark.parametrize("seed", [0, 1])
def test_nan_rows_equal_sklearn_on_the_rest_plus_all_wrong(seed: int) -> None:
    """A random quarter of the rows gets a NaN or inf somewhere: top-k error = (images wrong by
    scikit-learn among the finite rows + the non-finite rows) / all images, and the devkit
    guesses (``guesses_rank`` of ``top_guesses``) agree with the ranks."""
    gen = torch.Generator().manual_seed(seed)
    n, num_classes = 400, 12
    scores = torch.randn(n, num_classes, generator=gen, dtype=torch.float64)
    target = torch.randint(0, num_classes, (n,), generator=gen)
    bad = torch.rand(n, generator=gen) < 0.25
    where = torch.randint(0, num_classes, (n,), generator=gen)
    values = torch.tensor([NAN, INF, -INF], dtype=torch.float64)
    rows = bad.nonzero()[:, 0]
    scores[rows, where[rows]] = values[torch.arange(len(rows)) % 3]
    scores[rows[:5], target[rows[:5]]] = NAN  # a few on the target itself
    good = ~bad
    ranks = target_rank(scores, target)
    guesses = top_guesses(scores, 5)
    assert (ranks[bad] == NOT_RANKED).all() and (guesses[bad] == NO_GUESS).all()
    assert torch.equal(guesses_rank(guesses, target), torch.where(ranks < 5, ranks, NOT_RANKED))
    metric = TopKError(topk=(1, 3, 5), num_classes=num_classes)
    metric.update(scores, target, torch.arange(n), torch.zeros(n))
    result = metric.compute()
    for k in (1, 3, 5):
        sk_error = _sklearn_error(target[good], scores[good], k)
        expected = (sk_error * int(good.sum()) + 100.0 * int(bad.sum())) / n
        assert result[f"top{k}_error"] == pytest.approx(expected, abs=1e-9)


def test_nan_rows_through_the_devkit_files_score_as_the_metric(tmp_path: Path) -> None:
    """``ClassificationReport``'s files for NaN rows stay valid devkit files (non-negative ids:
    ``num_classes``, no class) and ``cvbench score`` re-scores them to the metric's errors."""
    gen = torch.Generator().manual_seed(4)
    scores = torch.randn(50, 7, generator=gen)
    target = torch.randint(0, 7, (50,), generator=gen)
    scores[::4, 2] = NAN
    scores[1::9] = NAN
    metric = TopKError(num_classes=7, keep_guesses=True)
    metric.update(scores, target, torch.arange(50), torch.zeros(50))
    result = metric.compute()
    images = metric.last_images
    guesses = submission_guesses(images["guesses"].numpy(), 7)
    assert guesses.min() >= 0 and (guesses[::4] == 7).all()  # no -1 in the file
    (tmp_path / "labels.txt").write_text("".join(f"{t}\n" for t in images["target"].tolist()))
    (tmp_path / "pred.txt").write_text("".join(" ".join(map(str, g)) + "\n" for g in guesses))
    rescored = score_ilsvrc_files(tmp_path / "labels.txt", tmp_path / "pred.txt")
    assert rescored["top1_error"] == result["top1_error"]
    assert rescored["top5_error"] == result["top5_error"]
    assert result["top1_error"] >= 100.0 * len(set(range(0, 50, 4)) | set(range(1, 50, 9))) / 50


def test_nan_scores_are_wrong_for_localization_too() -> None:
    """The localization task guesses with ``top_guesses``: a NaN row's guesses (-1) match no
    class, so even a perfect box does not make the image right."""
    scores = torch.tensor([[NAN, 0.0, 0.0], [2.0, 0.0, 1.0]])
    guesses = top_guesses(scores, 3)
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    class_rank, loc_rank = localization_ranks(
        guesses, box.expand(2, 3, 4), torch.tensor([0, 0]), [box, box]
    )
    assert class_rank.tolist() == [NOT_RANKED, 0]
    assert loc_rank.tolist() == [NOT_RANKED, 0]


# --- two real gloo processes --------------------------------------------------------------------


def _gloo_data():
    """23 images of 10 classes, image 3 with NaN scores."""
    scores, target, loss = _dataset(seed=8, n=23)
    scores[3] = NAN
    return scores, target, loss


def _expected() -> TopKError:
    """The single-process metric on every image, computed."""
    scores, target, loss = _gloo_data()
    metric = TopKError(topk=(1, 2, 5), num_classes=10, keep_guesses=True)
    metric.update(scores, target, torch.arange(23), loss)
    metric.compute()
    return metric


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        scores, target, loss = _gloo_data()
        metric = TopKError(topk=(1, 2, 5), num_classes=10, keep_guesses=True)
        for rows in torch.tensor(shards[rank], dtype=torch.int64).split(4):
            metric.update(scores[rows], target[rows], rows, loss[rows])
        result = metric.compute()
        images = {name: value.tolist() for name, value in metric.last_images.items()}
        Path(out, f"{rank}.json").write_text(json.dumps({"stats": result, "images": images}))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_rank", [0, 1])
def test_two_processes_one_without_images(tmp_path: Path, empty_rank: int) -> None:
    """One process never updates (torchmetrics sends a 1-D float32 placeholder for each of its
    states, which gloo cannot gather with the int64, float64 and (N, 5) states of the other):
    both compute what one process computes on every image, guesses included."""
    order = [5, *range(23), 5, 0]  # with repeats
    shards = [order, []] if empty_rank == 1 else [[], order]
    results = run_two_processes(_ddp_worker, tmp_path, shards)
    expected = _expected()
    stats = expected.compute()
    for got in results:
        assert got["stats"] == pytest.approx(stats, abs=1e-12)
        assert got["stats"]["num_images"] == 23
        assert got["images"]["index"] == list(range(23))
        assert got["images"]["guesses"] == expected.last_images["guesses"].tolist()
        assert got["images"]["guesses"][3] == [NO_GUESS] * 5


@pytest.mark.timeout(120)
def test_two_processes_with_images_on_both(tmp_path: Path) -> None:
    """The ordinary case through the same gather: two padded sampler shards."""
    shards = [list(DistributedSampler(range(23), num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0] + shards[1]) == 24  # padding repeats an image
    results = run_two_processes(_ddp_worker, tmp_path, shards)
    expected = _expected()
    stats = expected.compute()
    for got in results:
        assert got["stats"] == pytest.approx(stats, abs=1e-12)
        assert got["images"]["guesses"] == expected.last_images["guesses"].tolist()

"""Top-k error (ILSVRC devkit): known answers, scikit-learn's ``top_k_accuracy_score``, and
the ``TopKError`` metric under batching and distributed-sampler padding."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import top_k_accuracy_score
from torch.utils.data import DistributedSampler

import cvbench.metrics.classification as classification
from cvbench.metrics.classification import (
    NOT_RANKED,
    TopKError,
    first_occurrence,
    guesses_rank,
    target_rank,
    topk_error,
)


def test_doctests() -> None:
    result = doctest.testmod(classification)
    assert result.attempted > 0
    assert result.failed == 0


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

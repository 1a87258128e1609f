"""Top-k classification error as in the ILSVRC devkit (Russakovsky et al., 2015).

top-k error = 100 x (share of images whose ground-truth class is not among the k best guesses),
averaged over images. The sufficient statistic is the rank of the ground truth in each image's
ranking, so one pass gives every k, and per-image results can be deduplicated by dataset index
(a distributed sampler pads shards with repeated samples; each index is counted once).

Ties: classes are ranked by score, then by class index (stable, lower index first).

Non-finite scores: an image whose score row has any NaN or +-inf (a diverged model) is wrong at
every k: its target rank is ``NOT_RANKED`` and its guesses are all ``NO_GUESS`` (-1, which
matches no label). Sorting would otherwise rank NaN first and could call it a right guess.

Per-image payload, gather and deduplication: ``cvbench.metrics.per_image``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric
from cvbench.metrics.per_image import first_occurrence as first_occurrence  # re-exported

NOT_RANKED = torch.iinfo(torch.int64).max
NO_GUESS = -1  # the guess of a non-finite score row; ``PAD`` of ilsvrc_files, never a label


def finite_rows(scores: Tensor) -> Tensor:
    """(N,) bool: rows of ``scores`` (N, C) without NaN or +-inf; only these can be right."""
    return torch.isfinite(scores).all(dim=1)


def target_rank(scores: Tensor, target: Tensor) -> Tensor:
    """0-based rank of the target class in each row of ``scores``.

    Args:
        scores: (N, C) float, higher is better (logits or probabilities).
        target: (N,) int64 in [0, C).

    Returns:
        (N,) int64: classes with a higher score, plus tied classes with a lower index;
        ``NOT_RANKED`` (wrong at every k) where the row has a NaN or +-inf.

    >>> target_rank(torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]]), torch.tensor([2, 1])).tolist()
    [1, 1]
    >>> target_rank(torch.tensor([[0.1, float("nan"), 0.2]]), torch.tensor([1])) == NOT_RANKED
    tensor([True])
    """
    s_t = scores.gather(1, target[:, None])
    lower_index = torch.arange(scores.shape[1], device=scores.device)[None, :] < target[:, None]
    rank = ((scores > s_t) | ((scores == s_t) & lower_index)).sum(dim=1)
    return torch.where(finite_rows(scores), rank, NOT_RANKED)


def top_guesses(scores: Tensor, k: int) -> Tensor:
    """The k best classes of each row, best first, ties broken by lower class index.

    Args:
        scores: (N, C) float.
        k: number of guesses, at most C.

    Returns:
        (N, k) int64 class ids; ``NO_GUESS`` (-1) throughout a row with a NaN or +-inf.

    >>> top_guesses(torch.tensor([[0.2, 0.5, 0.5, 0.1], [0.2, float("nan"), 0.5, 0.1]]), 3).tolist()
    [[1, 2, 0], [-1, -1, -1]]
    """
    guesses = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return torch.where(finite_rows(scores)[:, None], guesses, NO_GUESS)


def guesses_rank(guesses: Tensor, target: Tensor) -> Tensor:
    """0-based position of the target among ranked guesses (ILSVRC submission format).

    Args:
        guesses: (N, G) int64 class ids, best first; -1 pads rows with fewer guesses.
        target: (N,) int64.

    Returns:
        (N,) int64: first position where the guess equals the target, ``NOT_RANKED`` if none.

    >>> guesses_rank(torch.tensor([[3, 1, -1], [2, 0, 1]]), torch.tensor([1, 4])).tolist()[0]
    1
    """
    hit = guesses == target[:, None]
    position = torch.arange(guesses.shape[1], device=guesses.device).expand_as(guesses)
    return torch.where(hit, position, NOT_RANKED).min(dim=1).values


def topk_error(ranks: Tensor, k: int) -> float:
    """top-k error in percent from target ranks.

    Args:
        ranks: (N,) int64 0-based ranks of the ground truth, N > 0.
        k: number of guesses allowed.

    >>> topk_error(torch.tensor([0, 1, 5, 2]), 1), topk_error(torch.tensor([0, 1, 5, 2]), 5)
    (75.0, 25.0)
    """
    if ranks.numel() == 0:
        raise ValueError("top-k error of zero images is undefined")
    return 100.0 * (ranks >= k).double().mean().item()


class TopKError(PerImageMetric):
    """Dataset-level top-k errors (percent) and mean loss, exact under distributed sampling.

    ``update`` keeps, per image, its dataset index, the rank of its target and its loss;
    ``compute`` gathers them from every process once, keeps each index once, and returns
    ``{"top1_error": ..., "top5_error": ..., "loss": ...}`` (one key per ``k`` in ``topk``).

    ``per_image()`` gives the deduplicated per-image results in dataset-index order (those of
    every process are in ``last_images`` after ``compute``); with
    ``keep_guesses`` they include each image's ``max(topk)`` best classes (the predictions
    file of the ILSVRC devkit). An image whose scores have a NaN or +-inf is wrong at every k,
    its guesses all ``NO_GUESS`` (-1).

    Args:
        topk: the k values to report; k larger than the number of classes is dropped.
        num_classes: number of classes.
        keep_guesses: also keep each image's top guesses and target.
    """

    higher_is_better = False

    def __init__(
        self, *, topk: tuple[int, ...] = (1, 5), num_classes: int, keep_guesses: bool = False
    ) -> None:
        super().__init__()
        self.topk = tuple(k for k in topk if k <= num_classes) or (1,)
        self.keep_guesses = keep_guesses
        self.last_images: dict[str, Tensor] = {}
        self.add_field("rank", torch.int64)
        self.add_field("loss", torch.float64)
        if keep_guesses:
            self.add_field("target", torch.int64)
            self.add_field("guesses", torch.int64, (max(self.topk),))

    def update(self, scores: Tensor, target: Tensor, index: Tensor, loss: Tensor) -> None:
        """Add a batch.

        Args:
            scores: (B, C) float logits; a row with a NaN or +-inf counts as wrong.
            target: (B,) int64 class ids.
            index: (B,) int64 dataset indices.
            loss: (B,) float per-sample loss.
        """
        scores, target = scores.detach(), target.detach()
        values = {"rank": target_rank(scores, target), "loss": loss}
        if self.keep_guesses:
            values |= {"target": target, "guesses": top_guesses(scores, max(self.topk))}
        self.add_images(index, values)

    def per_image(self) -> dict[str, Tensor]:
        """Each image once, in dataset-index order (gathered from every process when synced).

        Returns:
            ``index``, ``rank``, ``loss`` (N,), and with ``keep_guesses`` ``target`` (N,) and
            ``guesses`` (N, max(topk)).
        """
        images = self.kept_images()
        return {"index": images.index, **images.values}

    def compute(self) -> dict[str, float]:
        # compute() runs on the states gathered from every process, per_image() alone on this
        # process's: keep what compute saw for reports (``last_images``).
        images = self.last_images = self.per_image()
        out = {f"top{k}_error": topk_error(images["rank"], k) for k in self.topk}
        out["loss"] = images["loss"].mean().item()
        out["num_images"] = int(len(images["index"]))
        return out

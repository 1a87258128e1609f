"""Semantic segmentation scores from one dataset-level confusion matrix (METRICS.md).

Reference: MMSegmentation's ``IoUMetric`` (``mIoU``, ``aAcc``, ``mAcc``): the intersection and
union of every class are summed over all pixels of the split, then divided once; never a mean
of per-image or per-batch values. Frequency-weighted IoU is the FCN paper's (Long et al.,
"Fully Convolutional Networks for Semantic Segmentation", CVPR 2015, its ``score.py``).

Protocol: pixels whose label is ``ignore_index`` (default 255, "void") are dropped; the other
labels are class ids 0..K-1, and so are predictions. The confusion matrix has ground truth in
rows and prediction in columns (scikit-learn's layout). For class c, TP = C[c, c], FP = column
sum - TP, FN = row sum - TP:

- IoU_c = TP / (TP + FP + FN); ``miou`` = the mean over classes with TP + FP + FN > 0. A class
  absent from both ground truth and prediction is left out (its IoU is None); one predicted but
  absent from the ground truth counts 0. (MMSeg: ``nanmean`` of 0/0 = NaN.)
- ``pixel_acc`` = trace / total; ``mean_acc`` = mean over classes with ground-truth pixels of
  TP / (ground-truth pixels).
- ``fwiou`` = sum over classes of freq_c x IoU_c, freq_c = ground-truth pixels of c / total
  (FCN ``score.py``: ``(freq[freq > 0] * iu[freq > 0]).sum()``). A class with freq_c > 0 has a
  positive denominator, so classes left out of the mIoU add nothing here either.

All scores are percent, float64, None where undefined (no scored pixel at all).

``SegmentationMetric`` keeps each image's confusion counts sparsely with its dataset index, so
that under a ``DistributedSampler`` (which pads shards with repeated images) every image is
counted once (``cvbench.metrics.per_image``), as ``CocoMAP`` does with detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from cvbench.metrics.per_image import KeptImages, PerImageMetric

SEGMENTATION_STATS = ("miou", "pixel_acc", "mean_acc", "fwiou")


@dataclass
class SegmentationScores:
    """Scores of one confusion matrix.

    Attributes:
        stats: ``SEGMENTATION_STATS`` keys, percent float64, None where undefined.
        per_class: one dict per class id 0..K-1: ``class_id``, ``name``, ``iou`` (percent, None
            when the class is in neither ground truth nor prediction), ``acc`` (percent, None
            without ground-truth pixels), ``gt_pixels`` and ``pred_pixels`` (int, ignored
            pixels excluded).
    """

    stats: dict[str, float | None]
    per_class: list[dict[str, Any]]


def _check_classes(num_classes: int, ignore_index: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes {num_classes!r}; expected an integer >= 1")
    if 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index {ignore_index} is a class id (num_classes {num_classes}); it must be "
            f"outside 0..{num_classes - 1} (ADE20K-style data with 0 = void: reduce_zero_label)"
        )


def _check_integer(tensor: Tensor, what: str) -> None:
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ValueError(
            f"{what} has dtype {tensor.dtype}; expected integer class ids "
            "(for logits (B, K, H, W) pass logits.argmax(1))"
        )


def _codes(pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int) -> Tensor:
    """``target * K + pred`` per pixel (int64, the shape of ``target``), ``K * K`` where the
    target is ``ignore_index``.

    Raises:
        ValueError: naming the first prediction not in [0, K), or else the first target neither
            in [0, K) nor ``ignore_index``.
    """
    if pred.numel():
        low, high = torch.aminmax(pred)
        if low < 0 or high >= num_classes:
            value = pred[(pred < 0) | (pred >= num_classes)].flatten()[0]
            raise ValueError(
                f"prediction value {int(value)}; expected class ids 0..{num_classes - 1} "
                f"(num_classes {num_classes})"
            )
    # One int64 buffer, then in place: each fresh image-sized buffer costs page faults (they
    # were most of the update's time before, see scripts/bench_miou.py), and a boolean
    # compaction (target[valid], as torchmetrics does) is slower still.
    valid = target != ignore_index
    codes = torch.where(valid, target, 0).long()
    if codes.numel():
        low, high = torch.aminmax(codes)
        if low < 0 or high >= num_classes:
            value = target[valid & ((target < 0) | (target >= num_classes))].flatten()[0]
            raise ValueError(
                f"target value {int(value)}; expected class ids 0..{num_classes - 1} "
                f"(num_classes {num_classes}) or ignore_index {ignore_index}"
            )
    codes.mul_(num_classes).add_(pred)
    return codes.masked_fill_(valid.logical_not_(), num_classes * num_classes)


def confusion_matrix(
    pred: Tensor, target: Tensor, *, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """Pixel confusion matrix, ground truth in rows, prediction in columns (as scikit-learn).

    Args:
        pred: integer class ids in [0, K), any shape.
        target: integer labels in [0, K) or ``ignore_index``, the shape of ``pred``.
        num_classes: K.
        ignore_index: the void label, outside [0, K); its pixels are not counted.

    Returns:
        (K, K) int64; entry [g, p] counts pixels labelled g and predicted p.

    Raises:
        ValueError: shapes differ, a float input, or a value out of range (named).

    >>> confusion_matrix(torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0, 1], [255, 1]]),
    ...                  num_classes=3).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    """
    _check_classes(num_classes, ignore_index)
    _check_integer(pred, "pred")
    _check_integer(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    codes = _codes(pred, target, num_classes=num_classes, ignore_index=ignore_index)
    bins = torch.bincount(codes.reshape(-1), minlength=num_classes * num_classes + 1)
    return bins[: num_classes * num_classes].reshape(num_classes, num_classes)


def _percent(num: Tensor, den: Tensor) -> list[float | None]:
    """100 x num / den element-wise, None where den is 0."""
    pairs = zip(num.tolist(), den.tolist(), strict=True)
    return [None if d == 0 else 100.0 * n / d for n, d in pairs]


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


def segmentation_scores(
    confusion: Tensor, class_names: Sequence[str] | None = None
) -> SegmentationScores:
    """mIoU, pixel accuracy, mean class accuracy and FW IoU of a confusion matrix.

    Args:
        confusion: (K, K) non-negative integer counts, ground truth in rows.
        class_names: K names; None = "0".."K-1".

    Returns:
        ``SegmentationScores`` (percent float64, None where undefined; see the module).

    Class 2 is absent (left out of the mean), class 3 is only predicted (IoU 0):

    >>> scores = segmentation_scores(torch.tensor([[3, 1, 0, 0], [0, 2, 0, 2],
    ...                                            [0, 0, 0, 0], [0, 0, 0, 0]]))
    >>> {k: round(v, 4) for k, v in scores.stats.items()}
    {'miou': 38.3333, 'pixel_acc': 62.5, 'mean_acc': 62.5, 'fwiou': 57.5}
    >>> [c["iou"] for c in scores.per_class]
    [75.0, 40.0, None, 0.0]
    """
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion shape {tuple(confusion.shape)}; expected (K, K)")
    num_classes = confusion.shape[0]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    confusion = confusion.detach().cpu().to(torch.int64)
    if (confusion < 0).any():
        raise ValueError("confusion has negative counts")
    tp = confusion.diagonal()
    gt, pred = confusion.sum(1), confusion.sum(0)
    total = int(gt.sum())
    iou = _percent(tp, gt + pred - tp)
    acc = _percent(tp, gt)
    fwiou = None
    if total:  # classes without ground truth have freq 0 and add nothing
        fwiou = sum(g * i for g, i in zip(gt.tolist(), iou, strict=True) if g) / total
    names = [str(c) for c in range(num_classes)] if class_names is None else list(class_names)
    return SegmentationScores(
        stats={
            "miou": _mean(iou),
            "pixel_acc": 100.0 * int(tp.sum()) / total if total else None,
            "mean_acc": _mean(acc),
            "fwiou": fwiou,
        },
        per_class=[
            {
                "class_id": c,
                "name": names[c],
                "iou": iou[c],
                "acc": acc[c],
                "gt_pixels": int(gt[c]),
                "pred_pixels": int(pred[c]),
            }
            for c in range(num_classes)
        ],
    )


def _pairs(
    preds: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor], indices: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """(pred, target) per image, checked: same count as ``indices``, same (H, W) each."""
    if len(preds) != len(target) or len(preds) != len(indices):
        raise ValueError(
            f"{len(preds)} predictions, {len(target)} targets, {len(indices)} dataset indices; "
            "expected one of each per image"
        )
    pairs = list(zip(preds, target, strict=True))
    for i, (p, t) in enumerate(pairs):
        _check_integer(p, "prediction")
        _check_integer(t, "target")
        if p.ndim != 2 or p.shape != t.shape:
            raise ValueError(
                f"image {i} of the batch (dataset index {int(indices[i])}): prediction shape "
                f"{tuple(p.shape)}, target shape {tuple(t.shape)}; expected the same (H, W) "
                "(resize the prediction to the label's size)"
            )
    return pairs


class SegmentationMetric(PerImageMetric):
    """Dataset-level mIoU, pixel accuracy, mean accuracy and FW IoU, exact under DDP.

    ``update`` keeps, per image, its dataset index and the nonzero entries of its confusion
    matrix (code ``gt * K + pred`` and count: rows of group ``entry``); ``compute`` gathers them
    from every process once, keeps for each dataset index only its first copy (a
    ``DistributedSampler`` pads shards with repeated images), sums them into the (K, K) matrix
    and scores it with ``segmentation_scores``.

    After ``compute``: ``last_confusion`` (K, K) int64, ``last_scores`` (``SegmentationScores``,
    names from ``class_names``) and ``last_per_image``: ``index`` (N,) int64 dataset indices
    ascending, ``pixel_acc`` and ``miou`` (N,) float64 percent of each image alone (NaN where
    undefined), for per-image analyses; the reported scores never average them.

    Call ``update``: ``forward`` only updates (per-batch values would be meaningless).

    Args:
        num_classes: K; labels and predictions are class ids 0..K-1.
        ignore_index: the void label (outside 0..K-1), never scored.
        class_names: K names for ``last_scores``; may be set later as ``class_names``.
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        _check_classes(num_classes, ignore_index)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = None if class_names is None else list(class_names)
        self.last_confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.last_scores: SegmentationScores | None = None
        self.last_per_image: dict[str, Tensor] = {}
        self.add_field("code", torch.int64, rows="entry")
        self.add_field("count", torch.int64, rows="entry")

    def update(
        self,
        preds: Tensor | Sequence[Tensor],
        target: Tensor | Sequence[Tensor],
        indices: Tensor,
    ) -> None:
        """Add a batch.

        Args:
            preds: (B, H, W) integer class ids in [0, K), or a list of B (H_i, W_i) tensors.
            target: (B, H, W) integer labels in [0, K) or ``ignore_index``, or a list of B
                (H_i, W_i); each image's target has the shape of its prediction.
            indices: (B,) int64 dataset indices of the images.
        """
        indices = torch.as_tensor(indices).reshape(-1)
        pairs = _pairs(preds, target, indices)
        if not pairs:
            return
        k, device = self.num_classes, self.device
        if isinstance(preds, Tensor) and isinstance(target, Tensor):  # (B, H, W): vectorized
            batch = [(preds.detach().to(device), target.detach().to(device))]
        else:
            batch = [(p.detach().to(device)[None], t.detach().to(device)[None]) for p, t in pairs]
        histograms = []
        for p, t in batch:
            try:
                codes = _codes(p, t, num_classes=k, ignore_index=self.ignore_index)
            except ValueError:
                self._raise_bad_value(pairs, indices)
                raise
            histograms += [torch.bincount(c.reshape(-1), minlength=k * k + 1) for c in codes]
        hist = torch.stack(histograms)[:, : k * k]  # (B, K^2), the last bin was the ignored
        image, code = hist.nonzero(as_tuple=True)  # row-major: each image's entries in turn
        entries = torch.bincount(image, minlength=len(pairs))
        self.add_images(indices, {"code": code, "count": hist[image, code]}, {"entry": entries})

    def _raise_bad_value(self, pairs: list[tuple[Tensor, Tensor]], indices: Tensor) -> None:
        """Raise the ValueError naming the first image with an out-of-range value."""
        for i, (p, t) in enumerate(pairs):
            try:
                _codes(p, t, num_classes=self.num_classes, ignore_index=self.ignore_index)
            except ValueError as err:
                raise ValueError(
                    f"SegmentationMetric: image {i} of the batch (dataset index "
                    f"{int(indices[i])}): {err}"
                ) from None

    def _per_image(self, images: KeptImages) -> None:
        """``last_per_image`` from the kept sparse entries (no dense (N, K, K) array)."""
        k, n = self.num_classes, len(images.index)
        image, code, count = images.image_of_row("entry"), images["code"], images["count"]
        gt, pred = code // k, code % k
        sums = {}
        for name, column, weight in (
            ("gt", gt, count),
            ("pred", pred, count),
            ("tp", gt, torch.where(gt == pred, count, 0)),
        ):
            sums[name] = torch.zeros(n, k, dtype=torch.float64).index_put_(
                (image, column), weight.double(), accumulate=True
            )
        union = sums["gt"] + sums["pred"] - sums["tp"]
        iou = torch.where(union > 0, sums["tp"] / union, torch.nan)
        self.last_per_image = {
            "index": images.index,
            "pixel_acc": 100.0 * sums["tp"].sum(1) / sums["gt"].sum(1),  # 0/0 = NaN
            "miou": 100.0 * iou.nanmean(1),
        }

    def compute(self) -> dict[str, float | int | None]:
        """``SEGMENTATION_STATS`` (percent, None where undefined) and ``num_images``."""
        k = self.num_classes
        images = self.kept_images(device="cpu")
        confusion = torch.zeros(k * k, dtype=torch.int64).index_add_(
            0, images["code"], images["count"]
        )
        self.last_confusion = confusion.reshape(k, k)
        self.last_scores = segmentation_scores(self.last_confusion, self.class_names)
        self._per_image(images)
        return {**self.last_scores.stats, "num_images": len(images.index)}

"""Text detection with differentiable binarization (DBNet: Liao et al., AAAI 2020) as one
LightningModule: the network gives the probability map P, the threshold map T and the
approximate binary map B; training minimises

    L = w_p L_s + alpha L_b + beta L_t

with L_s the binary cross-entropy of P against the shrunk text map, hard negatives mined 3:1
(the paper's OHEM), L_b the dice loss of B against the same map, L_t the L1 distance of T to its
target inside the dilated text regions (targets: :mod:`cvbench.tasks.text_detection_targets`);
the paper's weights are w_p = 1, alpha = 1, beta = 10 (MMOCR's: w_p = 5). Evaluation extracts
quadrilaterals from P, scales them back to each image's original pixels and scores them with
:class:`~cvbench.metrics.text_detection.TextDetectionMetric` (ICDAR 2015: IoU > 0.5, one-to-one,
"###" ignored) at ``score_threshold``; ``hmean_best_thr`` is the best over the metric's
thresholds, under its own name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cvbench.data.batches import TextDetectionBatch
from cvbench.metrics.per_image import PerImageMetric
from cvbench.metrics.text_detection import TextDetectionMetric
from cvbench.tasks.base import EVAL_STAGES, TaskModule
from cvbench.tasks.text_detection_targets import boxes_from_prob, db_targets

EPS = 1e-6


@dataclass
class TextDetectionTestOutput:
    """What the last test leaves for the report.

    Attributes:
        images: per test image in dataset-index order: ``index``, ``name`` (file stem),
            ``polygons`` (M, 4, 2) float64 and ``scores`` (M,) of every extracted box, in the
            image's original pixels, and at ``score_threshold`` ``num_gt_care``, ``num_pred``,
            ``num_matched``, ``precision``, ``recall``, ``hmean`` (ICDAR 2015, per image).
        samples: the first test images this process saw: ``image`` (H, W, 3) uint8 as fed to
            the network, ``polygons`` (N, 4, 2), ``ignore`` (N,), ``pred`` (M, 4, 2) and
            ``scores`` (M,), in that image's pixels, and ``name``.
        score_threshold: the metric's: boxes scoring below it are not counted.
    """

    images: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    score_threshold: float


class DetectionCollector(PerImageMetric):
    """Keeps each test image's boxes, scores and name, gathered from every process once (not a
    score: what the report writes as ICDAR result files)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_field("polygons", torch.float64, (4, 2), rows="box")
        self.add_field("scores", torch.float64, rows="box")
        self.add_field("name", torch.int64, rows="char")  # file stems as code points

    def update(
        self, polygons: list[Tensor], scores: list[Tensor], names: list[str], index: Tensor
    ) -> None:
        """Add a batch: B tensors (M_i, 4, 2) and (M_i,), B names, (B,) dataset indices."""
        codes = [torch.tensor([ord(c) for c in name], dtype=torch.int64) for name in names]
        self.add_images(
            index,
            {
                "polygons": torch.cat([p.reshape(-1, 4, 2) for p in polygons]),
                "scores": torch.cat([s.reshape(-1) for s in scores]),
                "name": torch.cat(codes),
            },
            rows={"box": [len(s) for s in scores], "char": [len(c) for c in codes]},
        )

    def compute(self) -> list[dict[str, Any]]:
        """One dict per image, ascending index: ``index``, ``name``, ``polygons``, ``scores``."""
        kept = self.kept_images(device="cpu")
        boxes = torch.split(kept["polygons"], kept.rows["box"].tolist())
        scores = torch.split(kept["scores"], kept.rows["box"].tolist())
        names = torch.split(kept["name"], kept.rows["char"].tolist())
        return [
            {
                "index": int(i),
                "name": "".join(map(chr, n.tolist())),
                "polygons": b.numpy(),
                "scores": s.numpy(),
            }
            for i, b, s, n in zip(kept.index.tolist(), boxes, scores, names, strict=True)
        ]


def _checked_kwargs(values: Mapping[str, Any] | None, function: Callable, key: str) -> dict:
    """``values`` as keyword arguments of ``function``, an unknown key an error naming ``key``."""
    values = dict(values or {})
    known = [
        n for n, p in inspect.signature(function).parameters.items() if p.kind is p.KEYWORD_ONLY
    ]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{key}: unknown key(s) {unknown}; expected some of {known}")
    return values


def balanced_bce(prob: Tensor, target: Tensor, mask: Tensor, negative_ratio: float) -> Tensor:
    """Binary cross-entropy of P over the positives and the hardest negatives, at most
    ``negative_ratio`` per positive (the paper's OHEM), averaged over the pixels used.

    Args:
        prob: (B, 1, H, W) probabilities; target, mask: same shape, {0, 1}.
    """
    loss = F.binary_cross_entropy(prob, target, reduction="none")
    positive, negative = target * mask, (1 - target) * mask
    num_positive = int(positive.sum())
    num_negative = min(int(negative.sum()), int(num_positive * negative_ratio))
    hardest = torch.topk((loss * negative).flatten(), num_negative).values
    return ((loss * positive).sum() + hardest.sum()) / (num_positive + num_negative + EPS)


def dice_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """1 - 2 |P T| / (|P| + |T|) over the masked pixels."""
    intersection = (pred * target * mask).sum()
    return 1 - 2 * intersection / ((pred * mask).sum() + (target * mask).sum() + EPS)


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute difference over the masked pixels (0 without any)."""
    return ((pred - target).abs() * mask).sum() / (mask.sum() + EPS)


class TextDetectionTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.TextDetectionBatch` batches; reports per
    eval stage what its :class:`~cvbench.metrics.text_detection.TextDetectionMetric` computes
    (``{stage}/precision``, ``recall``, ``hmean`` in [0, 1], ``hmean_best_thr``, ``best_thr``,
    ``num_images``) and the protocol string ``{stage}/detection_protocol``; ``train/loss``,
    ``train/loss_step``, ``train/loss_prob``, ``train/loss_binary``, ``train/loss_thresh``
    (logged every ``log_every_n_steps`` batches). ``test_output`` is a
    :class:`TextDetectionTestOutput`.

    Args:
        prob_weight: weight of L_s (1 in the paper, 5 in MMOCR).
        binary_weight: alpha, weight of L_b (1).
        thresh_weight: beta, weight of L_t (10).
        negative_ratio: hard negatives per positive pixel in L_s (3).
        targets: keyword arguments of :func:`~cvbench.tasks.text_detection_targets.db_targets`
            (``shrink_ratio``, ``thresh_min``, ``thresh_max``, ``min_text_size``).
        postprocess: keyword arguments of
            :func:`~cvbench.tasks.text_detection_targets.boxes_from_prob` (``binary_threshold``,
            ``box_threshold``, ``unclip_ratio``, ``min_size``, ``max_candidates``).
        num_samples: test images kept for the report's sample grid.
        **base: ``nets`` (one, ``net``: images (B, 3, H, W) to a dict with ``prob`` and, in
            training, ``thresh`` and ``binary``, each (B, 1, H, W)), ``optimization`` and
            ``metrics`` (a ``TextDetectionMetric``), see :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    loss_stages = ("train",)
    progress_bar_key = "val/hmean"

    def __init__(
        self,
        *,
        prob_weight: float = 1.0,
        binary_weight: float = 1.0,
        thresh_weight: float = 10.0,
        negative_ratio: float = 3.0,
        targets: Mapping[str, Any] | None = None,
        postprocess: Mapping[str, Any] | None = None,
        num_samples: int = 8,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.weights = {"prob": prob_weight, "binary": binary_weight, "thresh": thresh_weight}
        self.negative_ratio = negative_ratio
        self.target_options = _checked_kwargs(targets, db_targets, "task.module.targets")
        self.postprocess = _checked_kwargs(postprocess, boxes_from_prob, "task.module.postprocess")
        self.num_samples = num_samples
        self.metric("test", TextDetectionMetric)  # declared: fail at build time
        self.collector = DetectionCollector()
        self._samples: list[dict[str, Any]] = []

    def forward(self, images: Tensor) -> Tensor:
        """Probability maps (B, 1, H, W) in (0, 1) of images (B, 3, H, W)."""
        return self.net(images)["prob"]

    @torch.no_grad()
    def detect(self, images: Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image, quadrilaterals (M, 4, 2) float32 in its pixels and scores (M,)."""
        prob = self(images)[:, 0].float().cpu().numpy()
        return [boxes_from_prob(p, **self.postprocess) for p in prob]

    def targets(self, batch: TextDetectionBatch) -> dict[str, Tensor]:
        """The DB maps of a batch, each (B, 1, H, W) float on the images' device."""
        height, width = batch.images.shape[-2:]
        maps = [
            db_targets(
                p.detach().cpu().numpy(),
                i.detach().cpu().numpy(),
                height,
                width,
                **self.target_options,
            )  # fmt: skip
            for p, i in zip(batch.polygons, batch.ignore, strict=True)
        ]
        return {
            name: torch.from_numpy(np.stack([getattr(m, name) for m in maps]))[:, None].to(
                batch.images.device
            )
            for name in ("prob", "prob_mask", "thresh", "thresh_mask")
        }

    def loss_terms(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict:
        """``loss`` (weighted sum), ``loss_prob``, ``loss_binary``, ``loss_thresh``."""
        mask = targets["prob_mask"]
        parts = {
            "prob": balanced_bce(outputs["prob"], targets["prob"], mask, self.negative_ratio),
            "binary": dice_loss(outputs["binary"], targets["prob"], mask),
            "thresh": masked_l1(outputs["thresh"], targets["thresh"], targets["thresh_mask"]),
        }
        total = sum(self.weights[name] * value for name, value in parts.items())
        return {"loss": total} | {f"loss_{name}": value for name, value in parts.items()}

    def training_step(self, batch: TextDetectionBatch, batch_idx: int) -> Tensor:
        losses = self.loss_terms(self.net(batch.images), self.targets(batch))
        size = len(batch.images)
        self.update_loss("train", losses["loss"], weight=size)
        parts = {name: value for name, value in losses.items() if name != "loss"}
        self.log_step(batch_idx, {"loss_step": losses["loss"]} | parts, batch_size=size)
        return losses["loss"]

    def _eval_step(self, batch: TextDetectionBatch, stage: str) -> None:
        detections = self.detect(batch.images)
        scales = batch.scales.detach().cpu().double()
        pred = [
            torch.from_numpy(q).double() / s for (q, _), s in zip(detections, scales, strict=True)
        ]
        scores = [torch.from_numpy(sc).double() for _, sc in detections]
        gt = [p.detach().cpu().double() / s for p, s in zip(batch.polygons, scales, strict=True)]
        ignore = [i.detach().cpu() for i in batch.ignore]
        self.metric(stage, TextDetectionMetric).update(pred, scores, gt, ignore, batch.indices)
        if stage == "test":
            self.collector.update(pred, scores, list(batch.names), batch.indices.cpu())
            self._keep_samples(batch, detections)

    def _keep_samples(self, batch: TextDetectionBatch, detections: list) -> None:
        for k in range(min(self.num_samples - len(self._samples), len(batch.images))):
            image = (batch.images[k].detach().float().clamp(0, 1) * 255).round().byte()
            self._samples.append(
                {
                    "name": batch.names[k],
                    "image": image.permute(1, 2, 0).cpu().numpy(),
                    "polygons": batch.polygons[k].detach().cpu().numpy(),
                    "ignore": batch.ignore[k].detach().cpu().numpy(),
                    "pred": detections[k][0],
                    "scores": detections[k][1],
                }
            )

    def validation_step(self, batch: TextDetectionBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: TextDetectionBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.collector.reset()
        self._samples = []

    def protocol(self) -> str:
        """The scoring protocol, one line (recorded as ``{stage}/detection_protocol``)."""
        metric = self.metric("test", TextDetectionMetric)
        return (
            f"ICDAR 2015 (MMOCR HmeanIOUMetric vanilla): IoU > {metric.iou_threshold}, "
            f"one-to-one, ### ignored (> {metric.ignore_threshold} of a box inside), "
            f"score >= {metric.score_threshold}, original image pixels"
        )

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        if stage == "train":
            return {}
        if stage == "test":
            per_image = {
                row["index"]: row for row in self.metric(stage, TextDetectionMetric).last_per_image
            }
            images = []
            for image in self.collector.compute():
                row = per_image[image["index"]]
                images.append(
                    image
                    | {"num_gt_care": row["num_gt"]}
                    | {
                        k: row[k]
                        for k in ("num_pred", "num_matched", "precision", "recall", "hmean")
                    }
                )
            self.collector.reset()
            self.test_output = TextDetectionTestOutput(
                images=images,
                samples=self._samples,
                score_threshold=self.metric(stage, TextDetectionMetric).score_threshold,
            )
        return {f"{stage}/detection_protocol": self.protocol()}

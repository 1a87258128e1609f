"""Classification with localization error as in ILSVRC CLS-LOC (Russakovsky et al., 2015).

Each image has one ground-truth class and one or more boxes of that class; a submission gives
up to 5 guesses of (class, box), best first. A guess is right for classification when its class
is the image's, and right for localization when, in addition, its box has IoU >= 0.5 with some
ground-truth box of the image. top-k error = 100 x (share of images without a right guess among
the first k), for k = 1, 5, averaged over images.

The sufficient statistics per image are two 0-based ranks: of the first guess with the right
class (class rank) and of the first guess right for localization (loc rank), ``NOT_RANKED`` if
none, so per-image results can be deduplicated by dataset index after the gather (a distributed
sampler pads shards with repeated samples; each index is counted once, by
``cvbench.metrics.per_image``).

Boxes are (x0, y0, x1, y1) pixels in continuous coordinates; IoU is
``torchvision.ops.box_iou`` in float64, without the devkit's "+1" on widths and heights
(continuous boxes from the devkit's 1-based integer ones, x0 = xmin - 1, x1 = xmax, give the
devkit's IoU).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

from cvbench.metrics.classification import NOT_RANKED, topk_error
from cvbench.metrics.per_image import PerImageMetric

MAX_GUESSES = 5


def localization_ranks(
    guess_labels: Tensor,
    guess_boxes: Tensor,
    target_labels: Tensor,
    gt_boxes: list[Tensor],
    iou_threshold: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Class rank and localization rank of each image.

    Args:
        guess_labels: (B, G) int64 class ids, best first; -1 pads rows with fewer guesses.
        guess_boxes: (B, G, 4) float xyxy pixels.
        target_labels: (B,) int64 ground-truth class ids (>= 0).
        gt_boxes: B tensors (N_i, 4) float xyxy pixels, the image's boxes of its class.
        iou_threshold: IoU a guess's box needs with some ground-truth box.

    Returns:
        class_rank, loc_rank: (B,) int64, 0-based position of the first guess with the right
        class (and, for loc_rank, IoU >= ``iou_threshold``), ``NOT_RANKED`` if none.

    Guess 0 has the right class and a box half on the object (IoU 0.5 counts):

    >>> labels, target = torch.tensor([[3, 1]]), torch.tensor([3])
    >>> boxes = torch.tensor([[[0.0, 0, 5, 10], [0, 0, 10, 10]]])
    >>> [r.tolist() for r in localization_ranks(labels, boxes, target, [boxes[0, 1:]])]
    [[0], [0]]
    """
    b, g = guess_labels.shape
    if guess_boxes.shape != (b, g, 4) or target_labels.shape != (b,) or len(gt_boxes) != b:
        raise ValueError(
            f"guess_labels {tuple(guess_labels.shape)}, guess_boxes {tuple(guess_boxes.shape)}, "
            f"target_labels {tuple(target_labels.shape)} and {len(gt_boxes)} gt_boxes; expected "
            "(B, G), (B, G, 4), (B,) and B"
        )
    if g == 0:
        none = torch.full((b,), NOT_RANKED, dtype=torch.int64, device=guess_labels.device)
        return none, none.clone()
    right_class = guess_labels == target_labels[:, None]
    box_ok = torch.zeros_like(right_class)
    for i, boxes in enumerate(gt_boxes):
        if len(boxes):
            iou = box_iou(guess_boxes[i].double(), boxes.to(guess_boxes.device).double())
            box_ok[i] = iou.max(dim=1).values >= iou_threshold
    position = torch.arange(g, device=guess_labels.device).expand(b, g)
    class_rank = torch.where(right_class, position, NOT_RANKED).min(dim=1).values
    loc_rank = torch.where(right_class & box_ok, position, NOT_RANKED).min(dim=1).values
    return class_rank, loc_rank


class LocalizationError(PerImageMetric):
    """ILSVRC CLS-LOC top-1/top-5 classification and localization errors (percent).

    ``update`` keeps, per image, its dataset index, class rank and loc rank; ``compute``
    gathers them from every process once, keeps each index once (its first occurrence) and
    returns ``{"top1_error", "top5_error", "top1_loc_error", "top5_loc_error", "num_images"}``.
    The deduplicated per-image results seen by the last ``compute`` are in ``last_images``
    (``index``, ``class_rank``, ``loc_rank``, in dataset-index order).

    Args:
        iou_threshold: IoU a guess's box needs (0.5 in ILSVRC).
    """

    higher_is_better = False

    def __init__(self, *, iou_threshold: float = 0.5) -> None:
        super().__init__()
        self.iou_threshold = iou_threshold
        self.last_images: dict[str, Tensor] = {}
        self.add_field("class_rank", torch.int64)
        self.add_field("loc_rank", torch.int64)

    def update(
        self,
        guess_labels: Tensor,
        guess_boxes: Tensor,
        target_labels: Tensor,
        gt_boxes: list[Tensor],
        indices: Tensor,
    ) -> None:
        """Add a batch.

        Args:
            guess_labels: (B, G) int64 class ids, best first, G <= 5; -1 pads short rows.
            guess_boxes: (B, G, 4) float xyxy pixels.
            target_labels: (B,) int64 ground-truth class ids.
            gt_boxes: B tensors (N_i, 4) float xyxy pixels, the image's boxes of its class.
            indices: (B,) int64 dataset indices.
        """
        if guess_labels.ndim != 2 or guess_labels.shape[1] > MAX_GUESSES:
            raise ValueError(
                f"guess_labels has shape {tuple(guess_labels.shape)}; expected (B, G) with "
                f"G <= {MAX_GUESSES} guesses"
            )
        if indices.shape != (len(guess_labels),):
            raise ValueError(
                f"indices has shape {tuple(indices.shape)}; expected ({len(guess_labels)},)"
            )
        class_rank, loc_rank = localization_ranks(
            guess_labels.detach(),
            guess_boxes.detach(),
            target_labels.detach(),
            [boxes.detach() for boxes in gt_boxes],
            self.iou_threshold,
        )
        self.add_images(indices, {"class_rank": class_rank, "loc_rank": loc_rank})

    def per_image(self) -> dict[str, Tensor]:
        """Each image once, in dataset-index order (gathered from every process when synced).

        Returns:
            ``index``, ``class_rank``, ``loc_rank``: (N,) int64.
        """
        images = self.kept_images()
        return {"index": images.index, **images.values}

    def compute(self) -> dict[str, float]:
        # compute() runs on the states gathered from every process, per_image() alone on this
        # process's: keep what compute saw for reports (``last_images``).
        images = self.last_images = self.per_image()
        return {
            "top1_error": topk_error(images["class_rank"], 1),
            "top5_error": topk_error(images["class_rank"], 5),
            "top1_loc_error": topk_error(images["loc_rank"], 1),
            "top5_loc_error": topk_error(images["loc_rank"], 5),
            "num_images": int(len(images["index"])),
        }

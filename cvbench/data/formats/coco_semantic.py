"""COCO instance annotations served as semantic label maps (any ``DetectionRecords`` with masks).

The instance masks (polygons or RLE, rasterized by pycocotools exactly as ``COCO.annToMask``
does) are painted into one label map per image: 0 = background, category c (contiguous index,
categories sorted by id) = c + 1. Conventions, close to torchvision's
``references/segmentation/coco_utils.py`` (``ConvertCocoPolysToMask``), which sets every pixel
covered by two or more instances to 255:

- pixels covered by instances of *different* classes -> ``ignore_index`` (the class is
  ambiguous); overlapping instances of the same class keep that class (torchvision ignores them
  too, though the class is certain there);
- crowd regions (``iscrowd`` 1) -> ``ignore_index`` (torchvision paints them as their class;
  COCO's own metrics treat them as "do not score");
- everything else -> 0.

Nothing is cached on disk; a label map is rasterized when it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pycocotools import mask as mask_utils

from cvbench.data.records import LabelMapRecords, ObjectRecords


def annotation_rle(segmentation: list | dict, height: int, width: int) -> dict:
    """One annotation's ``segmentation`` as a compressed RLE (pycocotools' ``annToRLE``).

    Args:
        segmentation: polygons ``[[x0, y0, x1, y1, ...], ...]``, an uncompressed RLE
            ``{"counts": [int, ...], "size": [h, w]}`` or a compressed one (``counts`` a string).
        height, width: the image size.
    """
    if isinstance(segmentation, list):
        if not segmentation:  # no polygon: an empty mask
            return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


class CocoSemanticRecords:
    """Semantic view of one split of a COCO-style instance dataset.

    Args:
        instances: the detection records (their ``coco`` dict must hold ``segmentation``).
        ignore_index: the value of crowd regions and of pixels claimed by different classes.

    Attributes:
        classes: ``["background", *instances.classes]``.
    """

    def __init__(self, instances: ObjectRecords, *, ignore_index: int = 255) -> None:
        self.instances = instances
        self.ignore_index = ignore_index
        self.classes = ["background", *instances.classes]
        if len(self.classes) > ignore_index >= 0:
            raise ValueError(
                f"{instances.source_file}: {len(self.classes)} classes with background, but "
                f"ignore_index {ignore_index} is a class id; set data.ignore_index above them"
            )
        self._label = {cid: c + 1 for c, cid in enumerate(instances.category_ids)}
        self._anns: dict[int, list[dict]] = {image_id: [] for image_id in instances.image_ids}
        for ann in instances.coco["annotations"]:
            self._anns[ann["image_id"]].append(ann)

    def __len__(self) -> int:
        return len(self.instances)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        return self.instances.load(index)

    def source(self, index: int) -> str:
        return self.instances.source(index)

    def mask_source(self, index: int) -> str:
        image_id = self.instances.image_ids[index]
        return f"{self.instances.source_file} (annotations of image id {image_id})"

    def load_mask(self, index: int) -> np.ndarray:
        """Label map of image ``index``: (H, W) int64 in {0..K, ignore_index}, see the module.

        Raises:
            ValueError: an annotation has no ``segmentation`` or one pycocotools cannot read;
                names the annotation file and the annotation id.
        """
        image = self.instances.coco["images"][index]
        height, width = image["height"], image["width"]
        label = np.zeros((height, width), dtype=np.int64)
        anns = self._anns[image["id"]]
        if not anns:
            return label
        by_class: dict[int, np.ndarray] = {}
        crowd = np.zeros((height, width), dtype=bool)
        for ann, mask in zip(anns, self._masks(anns, height, width), strict=True):
            if ann["iscrowd"]:
                crowd |= mask
            else:
                c = self._label[ann["category_id"]]
                by_class[c] = by_class[c] | mask if c in by_class else mask
        claims = np.zeros((height, width), dtype=np.uint8)  # classes covering each pixel
        for c, mask in by_class.items():
            label[mask] = c
            claims += mask
        label[(claims > 1) | crowd] = self.ignore_index
        return label

    def _masks(self, anns: list[dict], height: int, width: int) -> list[np.ndarray]:
        """(H, W) bool mask of each annotation, decoded in one pycocotools call."""
        rles = []
        for ann in anns:
            if "segmentation" not in ann:
                raise ValueError(
                    f"{self.instances.source_file}: annotation id {ann['id']} has no "
                    f"'segmentation'; semantic targets need instance masks (polygons or RLE)"
                )
            try:
                rles.append(annotation_rle(ann["segmentation"], height, width))
            except (TypeError, ValueError, KeyError, IndexError) as err:
                raise ValueError(
                    f"{self.instances.source_file}: annotation id {ann['id']} has a "
                    f"segmentation pycocotools cannot read ({err}); expected polygons "
                    f"[[x0, y0, ...]] or an RLE {{'counts': ..., 'size': [{height}, {width}]}}"
                ) from err
        decoded = mask_utils.decode(rles)  # (H, W, N) uint8, Fortran order
        return [decoded[:, :, k].astype(bool) for k in range(len(rles))]


def coco_semantic(
    split: str, *, instances: Callable[..., ObjectRecords], ignore_index: int = 255
) -> LabelMapRecords:
    """One split of an instance dataset as semantic label maps.

    Args:
        split: passed on as ``instances(split=split)``.
        instances: builds the detection records of a split, e.g. a partial of
            :func:`~cvbench.data.formats.coco.coco_instances` or
            :func:`~cvbench.data.embedded.shapes.shapes`.
        ignore_index: the value of crowd regions and of pixels claimed by different classes.

    Returns:
        records with ``load`` (H, W, 3) uint8, ``load_mask`` (H, W) int64 and
        ``classes = ["background", *categories]``.
    """
    return CocoSemanticRecords(instances(split=split), ignore_index=ignore_index)

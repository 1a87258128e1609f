"""A subset of a COCO instances dataset's categories, renumbered, as torchvision's segmentation
reference reads COCO with only the 20 Pascal VOC categories
(``references/segmentation/coco_utils.py``: ``FilterAndRemapCocoCategories`` and, for its
training split, ``_coco_remove_images_without_annotations``).

The annotations of other categories are dropped (their pixels become background in a semantic
view); the kept categories get the ids 1..K in the order given, so contiguous class c is the
c-th category listed. Images stay the dataset's own, ids included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cvbench.data.detection_records import DetectionRecords
from cvbench.data.records import ObjectRecords


def coco_category_subset(
    split: str,
    *,
    instances: Callable[..., ObjectRecords],
    category_ids: Sequence[int],
    min_area: Mapping[str, float] | None = None,
) -> ObjectRecords:
    """One split of a detection dataset with only the categories ``category_ids``.

    Args:
        split: passed on as ``instances(split=split)``.
        instances: builds the detection records of a split (e.g. a partial of
            :func:`~cvbench.data.formats.coco.coco_instances`).
        category_ids: the dataset's ids of the categories kept, in the order of the new ids
            1..K (torchvision's VOC order: 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1,
            64, 20, 63, 7, 72).
        min_area: split name -> area (pixels): in those splits, images whose kept annotations
            (crowd regions included) cover this area or less in sum are left out (torchvision
            keeps the training images above 1000).

    Returns:
        records whose ``coco`` holds only the kept categories (ids 1..K, names unchanged).

    Raises:
        ValueError: a listed id is not a category of the file, or one is listed twice.
    """
    records = instances(split=split)
    names = {c["id"]: c["name"] for c in records.coco["categories"]}
    unknown = [cid for cid in category_ids if cid not in names]
    if unknown or len(set(category_ids)) != len(category_ids):
        raise ValueError(
            f"{records.source_file}: data.records category_ids {list(category_ids)} must be "
            f"distinct ids of its categories; not categories there: {unknown}"
        )
    new_id = {cid: k + 1 for k, cid in enumerate(category_ids)}
    annotations = [
        {**ann, "category_id": new_id[ann["category_id"]]}
        for ann in records.coco["annotations"]
        if ann["category_id"] in new_id
    ]
    images = records.coco["images"]
    threshold = (min_area or {}).get(split)
    if threshold is not None:
        covered: dict[int, float] = {}
        for ann in annotations:
            covered[ann["image_id"]] = covered.get(ann["image_id"], 0.0) + float(ann["area"])
        images = [image for image in images if covered.get(image["id"], 0.0) > threshold]
        kept = {image["id"] for image in images}
        annotations = [ann for ann in annotations if ann["image_id"] in kept]
    coco = {
        **records.coco,
        "images": images,
        "annotations": annotations,
        "categories": [{"id": new_id[cid], "name": names[cid]} for cid in category_ids],
    }
    return DetectionRecords(coco, records.image_root, source=records.source_file)

"""COCO "instances" annotation files (Lin et al., 2014), as pycocotools' ``COCO`` reads them.

Reference: https://cocodataset.org/#format-data. ``root/annotations/instances_{split}.json``
holds "images", "annotations" (``bbox`` [x, y, w, h] in pixels, ``area`` = mask area,
``iscrowd``, ``segmentation`` as polygons or RLE) and "categories" (COCO's ids are 1..90 with
gaps); the images are ``root/{split}/<file_name>``. Ids stay the dataset's own. The
segmentation is kept in the dict for instance segmentation. cvbench never downloads the data.
"""

from __future__ import annotations

import json
from pathlib import Path

from cvbench.data.detection_records import DetectionRecords
from cvbench.data.records import ObjectRecords


def coco_instances(
    root: str,
    split: str,
    *,
    annotation_file: str = "annotations/instances_{split}.json",
    image_dir: str = "{split}",
    skip_invalid: bool = False,
) -> ObjectRecords:
    """One split of a COCO-format detection dataset.

    COCO 2017 keeps its files as ``annotations/instances_val2017.json`` and ``val2017/``: pass
    ``annotation_file="annotations/instances_{split}2017.json", image_dir="{split}2017"``.

    Args:
        root: dataset folder.
        split: substituted for ``{split}`` in ``annotation_file`` and ``image_dir``.
        annotation_file: the annotation JSON, relative to ``root``.
        image_dir: folder the images' ``file_name`` is relative to, relative to ``root``.
        skip_invalid: drop invalid annotations and images whose file is missing instead of
            raising (see :class:`~cvbench.data.detection_records.DetectionRecords`).

    Returns:
        records whose ``load`` gives (H, W, 3) uint8 and ``coco`` the validated dict.

    Raises:
        FileNotFoundError: the annotation file or image files are missing.
        ValueError: the file is not valid JSON (line and column named) or not a valid COCO
            instances dict (file and record named).
    """
    root_path = Path(root).expanduser()
    path = root_path / annotation_file.format(split=split)
    image_root = root_path / image_dir.format(split=split)
    if not path.is_file():
        raise FileNotFoundError(
            f"COCO annotation file {path} not found. Expected root/{annotation_file} and "
            f"root/{image_dir}/<file_name> with root = data.records.root={root_path} and "
            f"split={split!r}; for COCO 2017 set annotation_file="
            f"annotations/instances_{{split}}2017.json and image_dir={{split}}2017. "
            f"cvbench never downloads data."
        )
    try:
        with open(path, encoding="utf-8") as f:
            coco = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text: {err}") from err
    return DetectionRecords(coco, image_root, source=str(path), skip_invalid=skip_invalid)

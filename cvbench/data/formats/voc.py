"""Pascal VOC detection annotations (Everingham et al., 2010), as the VOC devkit reads them.

Reference: the VOC2007/VOC2012 devkits, http://host.robots.ox.ac.uk/pascal/VOC/. Under a
``VOCdevkit`` folder, ``VOC{year}/ImageSets/Main/{split}.txt`` lists image names, one a line;
``VOC{year}/Annotations/{name}.xml`` holds ``<size>`` and one ``<object>`` per box (``name``,
``difficult``, ``bndbox`` with 1-based inclusive pixel indices); images are
``VOC{year}/JPEGImages/{name}.jpg``. cvbench never downloads the data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from cvbench.data.detection_records import DetectionRecords
from cvbench.data.records import ObjectRecords

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def voc_detection(
    root: str, split: str, *, year: str = "2007", classes: Sequence[str] = VOC_CLASSES
) -> ObjectRecords:
    """One split of Pascal VOC detection as a COCO instances dict.

    Category ids are 1..len(classes) in the order of ``classes``; image ids are 0..N-1 in
    the order of the split file, and ``file_name`` is ``<name>.jpg`` under ``JPEGImages``.

    Boxes: VOC's ``xmin, ymin, xmax, ymax`` are 1-based inclusive pixel indices. They become
    continuous 0-based coordinates ``x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax``, so the
    COCO width is ``xmax - xmin + 1``, the devkit's width. IoU on these continuous boxes equals
    the devkit's "+1" IoU on the raw integer boxes. ``area`` is w * h.

    "difficult" objects get ``"difficult": 1`` and ``"iscrowd": 1``: COCO metrics ignore them as
    crowd regions, the VOC metric reads ``difficult``, and neither is a training target. An
    image whose XML has no ``<object>`` has no boxes.

    Args:
        root: the ``VOCdevkit`` folder (holding ``VOC{year}/``).
        split: name of the split file, e.g. "train", "val", "trainval" or "test".
        year: "2007" or "2012" (any ``VOC{year}`` folder works).
        classes: class names in category-id order.

    Returns:
        records with ``load`` giving (H, W, 3) uint8 and ``coco`` the dict.

    Raises:
        FileNotFoundError: the split file, an XML file or an image is missing.
        ValueError: a malformed XML (no ``<size>``, an object without ``name`` or ``bndbox``,
            a non-numeric or reversed box) or an unknown class name; names the XML file.
    """
    base = Path(root).expanduser() / f"VOC{year}"
    split_file = base / "ImageSets" / "Main" / f"{split}.txt"
    names = split_names(
        split_file,
        layout=f"root/VOC{year}/ImageSets/Main/{split}.txt, Annotations/ and JPEGImages/",
    )
    category = {name: c + 1 for c, name in enumerate(classes)}
    images, annotations = [], []
    for image_id, name in enumerate(names):
        width, height, objects = _read_xml(base / "Annotations" / f"{name}.xml", category)
        images.append(
            {"id": image_id, "file_name": f"{name}.jpg", "width": width, "height": height}
        )
        for category_id, difficult, (xmin, ymin, xmax, ymax) in objects:
            w, h = xmax - xmin + 1, ymax - ymin + 1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": [xmin - 1, ymin - 1, w, h],
                    "area": w * h,
                    "iscrowd": difficult,
                    "difficult": difficult,
                }
            )
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(classes)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    return DetectionRecords(coco, base / "JPEGImages", source=str(split_file))


def split_names(split_file: Path, *, layout: str) -> list[str]:
    """The image names a VOC ``ImageSets`` split file lists, one per line (first word).

    Args:
        split_file: e.g. ``VOC2007/ImageSets/Main/trainval.txt``.
        layout: the files expected around it, for the message when it is missing.

    Raises:
        FileNotFoundError: no split file; names it and the layout expected.
        ValueError: a name listed twice.
    """
    if not split_file.is_file():
        raise FileNotFoundError(
            f"VOC split file {split_file} not found. Expected {layout} with root = "
            f"data.records.root (the VOCdevkit folder). cvbench never downloads data."
        )
    names = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    if len(set(names)) < len(names):
        repeated = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{split_file} lists image {repeated!r} twice; expected unique names")
    return names


def _read_xml(
    path: Path, category: dict[str, int]
) -> tuple[int, int, list[tuple[int, int, tuple[float, ...]]]]:
    """(width, height, [(category id, difficult, (xmin, ymin, xmax, ymax))]) of one XML file."""
    if not path.is_file():
        raise FileNotFoundError(f"VOC annotation file {path} not found")
    try:
        tree = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path} is not valid XML: {err}") from err

    def number(node: ET.Element, field: str, where: str) -> float:
        text = node.findtext(field)
        try:
            return float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {where} has {field} {text!r}; expected a number") from None

    size = tree.find("size")
    if size is None:
        raise ValueError(f"{path}: no <size>; expected <size><width>, <height></size>")
    width, height = (int(number(size, f, "<size>")) for f in ("width", "height"))
    if width <= 0 or height <= 0:
        raise ValueError(f"{path}: <size> is {width}x{height}; expected a positive width, height")
    objects = []
    for k, obj in enumerate(tree.findall("object")):
        where = f"<object> {k}"
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise ValueError(f"{path}: {where} has no <name> or <bndbox>; expected both")
        if name not in category:
            raise ValueError(
                f"{path}: {where} has class {name!r}; expected one of {sorted(category)}"
            )
        xyxy = tuple(number(box, f, where) for f in ("xmin", "ymin", "xmax", "ymax"))
        if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
            raise ValueError(f"{path}: {where} has box {xyxy}; expected xmin <= xmax, ymin <= ymax")
        difficult = int(number(obj, "difficult", where)) if obj.find("difficult") is not None else 0
        objects.append((category[name], int(difficult != 0), xyxy))
    return width, height, objects

"""Ultralytics YOLO detection labels: one ``.txt`` per image, one ``class cx cy w h`` line per box.

Reference: https://docs.ultralytics.com/datasets/detect/. Images are ``root/images/{split}/``
(searched recursively), labels ``root/labels/{split}/`` with the same relative path and a
``.txt`` suffix. Values are normalized by the image width and height to [0, 1]; class
indices are 0-based. An image without a label file, or with an empty one, has no boxes.
cvbench never downloads the data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from cvbench.data.detection_records import DetectionRecords
from cvbench.data.records import ObjectRecords

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
TOLERANCE = 1e-3  # normalized values in [-TOLERANCE, 1 + TOLERANCE] are accepted


def yolo_detection(
    root: str,
    split: str,
    *,
    classes: Sequence[str],
    image_dir: str = "images/{split}",
    label_dir: str = "labels/{split}",
) -> ObjectRecords:
    """One split of a YOLO-format detection dataset as a COCO instances dict.

    Category ids are the class index + 1 (so 1..len(classes), names from ``classes``). Image
    ids are 0..N-1 in the order of the sorted relative image paths; ``file_name`` is the path
    relative to ``image_dir``. Image sizes come from the image headers (EXIF orientation is not
    applied). A box ``cx cy w h`` becomes ``[(cx - w/2) W, (cy - h/2) H, w W, h H]`` in pixels,
    clipped to the image; ``area`` is its w * h and ``iscrowd`` 0. Repeated identical lines
    are kept once, as Ultralytics does.

    Args:
        root: dataset folder.
        split: substituted for ``{split}`` in ``image_dir`` and ``label_dir``.
        classes: class names, index = YOLO class index (the ``names`` of the dataset YAML).
        image_dir: image folder relative to ``root``.
        label_dir: label folder relative to ``root``.

    Returns:
        records with ``load`` giving (H, W, 3) uint8 and ``coco`` the dict.

    Raises:
        FileNotFoundError: the image or label folder is missing.
        ValueError: a label file that is not UTF-8, a line with the wrong number of fields, a
            non-numeric value, a class that is not an integer in [0, len(classes)) (``inf``
            and ``nan`` included) or a value outside [0, 1]; names the file and line.
    """
    base = Path(root).expanduser()
    image_root = base / image_dir.format(split=split)
    label_root = base / label_dir.format(split=split)
    for folder, what in ((image_root, "image"), (label_root, "label")):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"YOLO {what} folder {folder} not found. Expected root/{image_dir}/<image> "
                f"and root/{label_dir}/<image stem>.txt with root = data.records.root and "
                f"split={split!r}. cvbench never downloads data."
            )
    paths = sorted(
        p.relative_to(image_root)
        for p in image_root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    images, annotations = [], []
    for image_id, relative in enumerate(paths):
        try:
            with Image.open(image_root / relative) as image:
                width, height = image.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot read image {image_root / relative}: {err}") from err
        images.append(
            {"id": image_id, "file_name": relative.as_posix(), "width": width, "height": height}
        )
        label_file = (label_root / relative).with_suffix(".txt")
        for class_index, cx, cy, w, h in _read_labels(label_file, len(classes)):
            x0, y0 = max(0.0, (cx - w / 2) * width), max(0.0, (cy - h / 2) * height)
            x1, y1 = min(width, (cx + w / 2) * width), min(height, (cy + h / 2) * height)
            box_w, box_h = max(0.0, x1 - x0), max(0.0, y1 - y0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": class_index + 1,
                    "bbox": [x0, y0, box_w, box_h],
                    "area": box_w * box_h,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(classes)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    return DetectionRecords(coco, image_root, source=str(label_root))


def _read_labels(path: Path, num_classes: int) -> list[tuple[int, float, float, float, float]]:
    """The (class, cx, cy, w, h) of the lines of one label file; [] if there is no file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{path}, line {line}: not UTF-8 text; expected 'class cx cy w h' lines"
        ) from None
    rows: dict[tuple, int] = {}  # row -> its line number, in file order
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) != 5:
            raise ValueError(
                f"{where}: {len(fields)} fields {line.strip()!r}; expected 5, 'class cx cy w h' "
                f"(segmentation polygons are not read)"
            )
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{where}: non-numeric field in {line.strip()!r}") from None
        # int() of inf raises OverflowError and of nan a ValueError naming neither file nor line.
        class_index = int(values[0]) if math.isfinite(values[0]) else -1
        if class_index != values[0] or not 0 <= class_index < num_classes:
            raise ValueError(
                f"{where}: class {fields[0]!r}; expected an integer in [0, {num_classes})"
            )
        if not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in values[1:]):
            raise ValueError(
                f"{where}: values {fields[1:]} outside [0, 1]; expected cx cy w h normalized "
                f"by the image width and height"
            )
        row = (class_index, *values[1:])
        if row in rows:
            log.warning("%s repeats the box of line %d; kept once", where, rows[row])
            continue
        rows[row] = number
    return list(rows)

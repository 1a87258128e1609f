"""Writers of tiny text detection datasets in the ICDAR 2015 layout: ``<images>/img_N.jpg`` and
``<gt>/gt_img_N.txt``, UTF-8 with a byte-order mark and ``\\r\\n`` line ends as the official
ground truth, ``x1,y1,...,x4,y4,transcription`` lines (commas inside transcriptions, ``###``
don't care regions, an image without text and an empty file for it)."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from fakes_detection import write_image

# stem -> (file suffix, (width, height), [(x1, y1, ..., x4, y4), transcription])
REGIONS: dict[str, tuple[str, tuple[int, int], list[tuple[tuple[int, ...], str]]]] = {
    "img_1": (
        ".jpg",
        (80, 60),
        [
            ((10, 10, 50, 14, 48, 30, 8, 26), "Hello, world"),  # rotated, a comma inside
            ((60, 40, 75, 40, 75, 50, 60, 50), "###"),
        ],
    ),
    "img_2": (
        ".png",
        (50, 40),
        [((2, 3, 40, 3, 40, 20, 2, 20), "1,250"), ((5, 25, 30, 25, 30, 36, 5, 36), "Café")],
    ),
    "img_10": (".jpg", (40, 70), []),  # no text: an empty gt file
}


def write_icdar2015(
    root: Path,
    split: str = "test",
    *,
    image_dirs: Mapping[str, str] | None = None,
    gt_dirs: Mapping[str, str] | None = None,
) -> dict[str, dict]:
    """The :data:`REGIONS` images (random pixels) and their ground truth under ``root``.

    Args:
        root: the dataset folder.
        split: the split whose folders are written.
        image_dirs, gt_dirs: split -> folder names (a data YAML's ``records.image_dirs`` /
            ``gt_dirs``); None: ``{split}_images`` and ``{split}_gt``.

    Returns:
        stem -> ``{"size": (w, h), "polygons": (N, 4, 2) float32, "texts": [...]}``, in the
        order the reader lists them (img_1, img_2, img_10).
    """
    images = Path(root) / (image_dirs[split] if image_dirs else f"{split}_images")
    gts = Path(root) / (gt_dirs[split] if gt_dirs else f"{split}_gt")
    gts.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, (stem, (suffix, (width, height), regions)) in enumerate(REGIONS.items()):
        write_image(images / f"{stem}{suffix}", width, height, seed=k)
        lines = "".join(f"{','.join(map(str, q))},{text}\r\n" for q, text in regions)
        (gts / f"gt_{stem}.txt").write_bytes(codecs.BOM_UTF8 + lines.encode("utf-8"))
        written[stem] = {
            "size": (width, height),
            "polygons": np.array([q for q, _ in regions], np.float32).reshape(-1, 4, 2),
            "texts": [text for _, text in regions],
        }
    return written

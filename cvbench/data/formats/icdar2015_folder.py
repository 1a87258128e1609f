"""ICDAR 2015 text detection as published: a folder of scene images and a folder of ground-truth
files, ``<images>/img_12.jpg`` <-> ``<gt>/gt_img_12.txt``.

The layout of the Robust Reading Competition's challenge 4 ("Incidental Scene Text",
Karatzas et al., 2015): ``ch4_training_images/`` + ``ch4_training_localization_transcription_gt/``
and ``ch4_test_images/`` + ``Challenge4_Test_Task1_GT/``. Each ground-truth line is a
quadrilateral and its transcription, ``###`` for "don't care" (read by
:func:`~cvbench.data.formats.icdar2015.read_icdar2015`). Images and ground-truth files must pair
one to one: an image without its ``gt_<stem>.txt``, or a ground-truth file without its image, is
an error naming the file. Every ground-truth file is read when the split is opened, so a bad
line fails before training starts, not in the middle of an epoch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.data.formats.icdar2015 import gt_name, read_icdar2015
from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES
from cvbench.data.records import TextDetectionRecords

__all__ = ["Icdar2015Folder", "icdar2015_folder"]

GT_FILE = re.compile(r"^gt_(?P<stem>.+)\.txt$")


def natural_key(stem: str) -> list[int | str]:
    """Sort key that puts ``img_2`` before ``img_10``.

    >>> sorted(["img_10", "img_2", "img_1"], key=natural_key)
    ['img_1', 'img_2', 'img_10']
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", stem)]


class Icdar2015Folder:
    """One split of an ICDAR 2015 detection dataset (a :class:`TextDetectionRecords`).

    Images are ordered by their file stems, numbers compared as numbers (``img_1``, ``img_2``,
    ..., ``img_10``). Regions are read once, here.

    Args:
        images_dir: folder of the images (``.jpg``, ``.png``, ...; not recursive).
        gt_dir: folder of the ``gt_<stem>.txt`` files.

    Raises:
        FileNotFoundError: a folder that does not exist.
        ValueError: no image, two images with one stem, an image without its ground-truth
            file or a ground-truth file without its image, or a bad ground-truth line (one
            line naming the file and the line).
    """

    def __init__(self, images_dir: Path | str, gt_dir: Path | str) -> None:
        self.images_dir, self.gt_dir = Path(images_dir), Path(gt_dir)
        for folder in (self.images_dir, self.gt_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: no such folder (ICDAR 2015 images and gt)")
        images: dict[str, Path] = {}
        for path in sorted(self.images_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            if path.stem in images:
                raise ValueError(
                    f"{path}: a second image of stem {path.stem!r} (also "
                    f"{images[path.stem].name}); each image's ground truth is "
                    f"{gt_name(path.stem)}, so stems must differ"
                )
            images[path.stem] = path
        gts = {}
        for path in self.gt_dir.iterdir():
            match = GT_FILE.match(path.name)
            if match is not None and path.is_file():
                gts[match.group("stem")] = path
        if not images:
            raise ValueError(f"{self.images_dir}: no image ({', '.join(IMAGE_SUFFIXES)})")
        for stem in sorted(images, key=natural_key):
            if stem not in gts:
                raise ValueError(
                    f"{images[stem]}: no ground-truth file {self.gt_dir / gt_name(stem)}; "
                    "every image needs one (an empty file for an image without text)"
                )
        for stem in sorted(gts, key=natural_key):
            if stem not in images:
                raise ValueError(
                    f"{gts[stem]}: no image {stem}.* in {self.images_dir}; expected an image "
                    "for every ground-truth file"
                )
        self.stems = sorted(images, key=natural_key)
        self.image_paths = [images[s] for s in self.stems]
        self.gt_paths = [gts[s] for s in self.stems]
        self._regions = [_regions(path) for path in self.gt_paths]

    def __len__(self) -> int:
        return len(self.stems)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB (gray repeated, alpha dropped)."""
        return read_rgb(self.image_paths[index])

    def regions(self, index: int) -> dict[str, Any]:
        """``polygons`` (N, 4, 2) float32 xy pixels of the original image, clockwise from the
        top-left corner as annotated; ``ignore`` (N,) bool (``###``); ``texts`` (N)."""
        found = self._regions[index]
        return {
            "polygons": found["polygons"].copy(),
            "ignore": found["ignore"].copy(),
            "texts": list(found["texts"]),
        }

    def name(self, index: int) -> str:
        """The image's file stem (``img_12``)."""
        return self.stems[index]

    def source(self, index: int) -> str:
        return str(self.image_paths[index])


def _regions(path: Path) -> dict[str, Any]:
    found = read_icdar2015(path, "gt")
    return {key: found[key] for key in ("polygons", "ignore", "texts")}


def icdar2015_folder(
    split: str, *, root: str, image_dirs: Mapping[str, str], gt_dirs: Mapping[str, str]
) -> TextDetectionRecords:
    """One split of an ICDAR 2015 layout under ``root``.

    Args:
        split: the dataset's split name (after the datamodule's ``split_names``).
        root: the dataset folder.
        image_dirs: split -> images folder relative to ``root`` (e.g. ``{train:
            ch4_training_images, test: ch4_test_images}``).
        gt_dirs: split -> ground-truth folder relative to ``root``.

    Returns:
        the split's :class:`Icdar2015Folder`.
    """
    for key, dirs in (("image_dirs", image_dirs), ("gt_dirs", gt_dirs)):
        if split not in dirs:
            raise ValueError(
                f"ICDAR 2015 split {split!r}: data.records.{key} names splits {sorted(dirs)}; "
                "add it, or map the split to one of them with data.split_names"
            )
    base = Path(root).expanduser()
    return Icdar2015Folder(base / image_dirs[split], base / gt_dirs[split])

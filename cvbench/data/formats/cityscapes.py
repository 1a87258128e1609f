"""Cityscapes fine annotations (Cordts et al., 2016), scored on the 19 evaluation classes.

Reference: https://github.com/mcordts/cityscapesScripts, ``cityscapesscripts/helpers/labels.py``.
Images are ``leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and label maps
``gtFine/{split}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (8-bit, the 34 label ids).
The label ids become the 19 train ids of the official table; every other id (void, parking,
rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer; license plate, id -1,
which is never drawn into the files) becomes the ignore value. The public test split has no
labels (all 0): score on val. cvbench never downloads the data.
"""

from __future__ import annotations

from pathlib import Path

from cvbench.data.formats.masks import MaskRecords, pair_files
from cvbench.data.records import LabelMapRecords

# (name, label id, train id) of cityscapesScripts' labels.py; train id 255 or -1: not evaluated.
LABELS = (
    ("unlabeled", 0, 255),
    ("ego vehicle", 1, 255),
    ("rectification border", 2, 255),
    ("out of roi", 3, 255),
    ("static", 4, 255),
    ("dynamic", 5, 255),
    ("ground", 6, 255),
    ("road", 7, 0),
    ("sidewalk", 8, 1),
    ("parking", 9, 255),
    ("rail track", 10, 255),
    ("building", 11, 2),
    ("wall", 12, 3),
    ("fence", 13, 4),
    ("guard rail", 14, 255),
    ("bridge", 15, 255),
    ("tunnel", 16, 255),
    ("pole", 17, 5),
    ("polegroup", 18, 255),
    ("traffic light", 19, 6),
    ("traffic sign", 20, 7),
    ("vegetation", 21, 8),
    ("terrain", 22, 9),
    ("sky", 23, 10),
    ("person", 24, 11),
    ("rider", 25, 12),
    ("car", 26, 13),
    ("truck", 27, 14),
    ("bus", 28, 15),
    ("caravan", 29, 255),
    ("trailer", 30, 255),
    ("train", 31, 16),
    ("motorcycle", 32, 17),
    ("bicycle", 33, 18),
    ("license plate", -1, -1),
)
CITYSCAPES_CLASSES = tuple(
    name for name, _, train_id in sorted(LABELS, key=lambda label: label[2]) if 0 <= train_id < 255
)
IMAGE_SUFFIX = "_leftImg8bit.png"


def label_id_to_train_id(ignore_index: int = 255) -> dict[int, int]:
    """Cityscapes label id -> train id in 0..18, or ``ignore_index`` for the other ids."""
    return {
        label_id: train_id if 0 <= train_id < 255 else ignore_index
        for _, label_id, train_id in LABELS
        if label_id >= 0
    }


def cityscapes(
    split: str, *, root: str, annotation: str = "gtFine", ignore_index: int = 255
) -> LabelMapRecords:
    """One split of Cityscapes with its label ids mapped to the 19 train ids.

    Args:
        split: "train", "val" or "test" (whose public labels are empty).
        root: folder holding ``leftImg8bit/`` and ``gtFine/``.
        annotation: "gtFine" (or "gtCoarse" for the coarse set, same naming).
        ignore_index: the value the non-evaluated label ids become.

    Returns:
        records whose ``load`` gives (H, W, 3) uint8 (2048 x 1024 for the real set) and
        ``load_mask`` (H, W) int64 train ids in {0..18, ignore_index}; classes
        ``CITYSCAPES_CLASSES``.

    Raises:
        FileNotFoundError: the split's image or label folder is missing.
        ValueError: no images; an image without its ``_labelIds.png`` or the reverse.
    """
    base = Path(root).expanduser()
    image_dir, label_dir = base / "leftImg8bit" / split, base / annotation / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Cityscapes folder {folder} not found. Expected root/leftImg8bit/{split}/<city>/"
                f"<name>{IMAGE_SUFFIX} and root/{annotation}/{split}/<city>/<name>_{annotation}"
                f"_labelIds.png with root = data.records.root={base} (unzip "
                f"leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip there). cvbench "
                f"never downloads data."
            )
    label_suffix = f"_{annotation}_labelIds.png"
    images = _by_name(image_dir, IMAGE_SUFFIX)
    if not images:
        raise ValueError(f"no *{IMAGE_SUFFIX} images under {image_dir}/<city>/")
    image_paths, mask_paths = pair_files(
        images,
        _by_name(label_dir, label_suffix),
        expected_mask=lambda key: label_dir / f"{key}{label_suffix}",
        expected_image=lambda key: str(image_dir / f"{key}{IMAGE_SUFFIX}"),
    )
    return MaskRecords(
        image_paths,
        mask_paths,
        classes=CITYSCAPES_CLASSES,
        value_map=label_id_to_train_id(ignore_index),
        ignore_index=ignore_index,
    )


def _by_name(folder: Path, suffix: str) -> dict[str, Path]:
    """``"<city>/<city>_<seq>_<frame>"`` -> file, for the files ``<city>/*{suffix}``."""
    return {
        p.relative_to(folder).as_posix()[: -len(suffix)]: p
        for p in sorted(folder.glob(f"*/*{suffix}"))
        if p.is_file()
    }

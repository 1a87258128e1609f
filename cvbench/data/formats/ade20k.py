"""ADE20K scene parsing (SceneParse150; Zhou et al., 2017), as ADEChallengeData2016 ships it.

Reference: http://sceneparsing.csail.mit.edu/ and its ``objectInfo150.csv``. Images are
``images/{training,validation}/ADE_*.jpg`` and label maps ``annotations/{training,validation}/
ADE_*.png``: 8-bit gray, 0 = "other / unlabelled", 1..150 the classes. As MMSegmentation
(``reduce_zero_label=True``) and the benchmark do, 0 becomes the ignore value and 1..150 become
class ids 0..149. cvbench never downloads the data.
"""

from __future__ import annotations

from pathlib import Path

from cvbench.data.formats.masks import MaskRecords, pair_files
from cvbench.data.records import LabelMapRecords

# The first name of each class in objectInfo150.csv (whose Name column lists WordNet synonyms
# separated by ";"), spaces restored: the list MMSegmentation's ADE20KDataset uses (without
# the trailing space of its "bed ").
ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip


def ade20k(split: str, *, root: str, ignore_index: int = 255) -> LabelMapRecords:
    """One split of ADE20K (SceneParse150) with 0 ignored and 1..150 shifted to 0..149.

    Args:
        split: "training" or "validation" (the data config maps train/val/test onto these).
        root: the ``ADEChallengeData2016`` folder.
        ignore_index: the value label 0 becomes.

    Returns:
        records whose ``load`` gives (H, W, 3) uint8 and ``load_mask`` (H, W) int64 in
        {0..149, ignore_index}; classes ``ADE20K_CLASSES``.

    Raises:
        FileNotFoundError: the split's image or annotation folder is missing.
        ValueError: no images; an image without its annotation or the reverse.
    """
    base = Path(root).expanduser()
    image_dir, label_dir = base / "images" / split, base / "annotations" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"ADE20K folder {folder} not found. Expected root/images/{split}/<name>.jpg "
                f"and root/annotations/{split}/<name>.png with root = data.records.root={base} "
                f"(the ADEChallengeData2016 folder of ADEChallengeData2016.zip); splits are "
                f"'training' and 'validation'. cvbench never downloads data."
            )
    images = {p.stem: p for p in sorted(image_dir.glob("*.jpg")) if p.is_file()}
    if not images:
        raise ValueError(f"no *.jpg images under {image_dir}")
    image_paths, mask_paths = pair_files(
        images,
        {p.stem: p for p in sorted(label_dir.glob("*.png")) if p.is_file()},
        expected_mask=lambda key: label_dir / f"{key}.png",
        expected_image=lambda key: str(image_dir / f"{key}.jpg"),
    )
    return MaskRecords(
        image_paths,
        mask_paths,
        classes=ADE20K_CLASSES,
        reduce_zero_label=True,
        ignore_index=ignore_index,
    )

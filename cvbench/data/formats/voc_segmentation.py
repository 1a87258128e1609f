"""Pascal VOC semantic segmentation (Everingham et al., 2010), as the VOC2012 devkit lays it out.

Reference: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/. Under a ``VOCdevkit`` folder,
``VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt`` lists image names, one a line;
images are ``VOC2012/JPEGImages/<name>.jpg`` and label maps ``VOC2012/SegmentationClass/
<name>.png``: palette PNGs whose pixel values are the class ids 0..20 (0 = background) and 255
for the void band along object borders and unlabelled regions, which is ignored in scoring. The
SBD-augmented set ("trainaug", 10,582 images) keeps its gray PNGs in ``SegmentationClassAug``:
pass ``mask_dir="SegmentationClassAug"``. cvbench never downloads the data.
"""

from __future__ import annotations

from pathlib import Path

from cvbench.data.formats.masks import MaskRecords
from cvbench.data.formats.voc import VOC_CLASSES, split_names
from cvbench.data.records import LabelMapRecords

VOC_SEGMENTATION_CLASSES = ("background", *VOC_CLASSES)


def voc_segmentation(
    split: str,
    *,
    root: str,
    year: str = "2012",
    mask_dir: str = "SegmentationClass",
    ignore_index: int = 255,
) -> LabelMapRecords:
    """One split of Pascal VOC segmentation: 21 classes, background first; 255 stays void.

    Args:
        split: name of the split file: "train", "val" or "trainval" (or "trainaug" if present).
        root: the ``VOCdevkit`` folder (holding ``VOC{year}/``).
        year: "2012" (or "2007", whose segmentation set is smaller).
        mask_dir: folder of the label maps under ``VOC{year}``.
        ignore_index: the void value (VOC's is 255).

    Returns:
        records whose ``load`` gives (H, W, 3) uint8 and ``load_mask`` (H, W) int64 in
        {0..20, 255}, classes ``VOC_SEGMENTATION_CLASSES``.

    Raises:
        FileNotFoundError: the split file, an image or a label map is missing; names it.
        ValueError: the split file lists a name twice.
    """
    base = Path(root).expanduser() / f"VOC{year}"
    split_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    names = split_names(
        split_file,
        layout=f"root/VOC{year}/ImageSets/Segmentation/{split}.txt, JPEGImages/<name>.jpg and "
        f"{mask_dir}/<name>.png",
    )
    images = [base / "JPEGImages" / f"{name}.jpg" for name in names]
    masks = [base / mask_dir / f"{name}.png" for name in names]
    for kind, paths in (("image", images), ("label map", masks)):
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"VOC {kind} {missing[0]} listed in {split_file} not found; {len(missing)} of "
                f"{len(paths)} are missing"
            )
    return MaskRecords(images, masks, classes=VOC_SEGMENTATION_CLASSES, ignore_index=ignore_index)

"""Image + mask folders: the layout many segmentation datasets publish (and that Kaggle-style
binary sets use): ``root/{images_dir}/{split}/<name>.jpg`` with its label map
``root/{masks_dir}/{split}/<name>{mask_suffix}.png``, subfolders allowed.

Masks are index images (gray, palette or 16-bit PNGs, read with
:func:`~cvbench.data.label_maps.read_label_map`). :class:`MaskRecords` is also what the
Pascal VOC, Cityscapes and ADE20K readers return: image paths, mask paths and a value mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cvbench.data.label_maps import read_raw_label_map, reduce_zero_label
from cvbench.data.records import LabelMapRecords

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class MaskRecords:
    """One split of a semantic segmentation dataset stored as image files and label-map files.

    The stored values are mapped as ``value_map`` first, then ``reduce_zero_label``; values
    that ``value_map`` does not name are kept, so an unexpected value is caught by the label
    checks instead of being silently ignored.

    Args:
        image_paths: one image per record.
        mask_paths: the label map of each image, same order.
        classes: class names (index = class id), or None.
        value_map: stored value -> label value (e.g. ``{255: 1}`` for 0/255 binary masks, or
            Cityscapes' labelId -> trainId table); negative keys are ignored (no file holds them).
        reduce_zero_label: 0 -> ``ignore_index``, every other value minus 1 (ADE20K).
        ignore_index: the void value.
    """

    def __init__(
        self,
        image_paths: Sequence[Path],
        mask_paths: Sequence[Path],
        *,
        classes: Sequence[str] | None = None,
        value_map: Mapping[int, int] | None = None,
        reduce_zero_label: bool = False,
        ignore_index: int = 255,
    ) -> None:
        if len(image_paths) != len(mask_paths):
            raise ValueError(f"{len(image_paths)} images but {len(mask_paths)} masks")
        self.image_paths = [Path(p) for p in image_paths]
        self.mask_paths = [Path(p) for p in mask_paths]
        self.classes = list(classes) if classes is not None else None
        self.value_map = {int(k): int(v) for k, v in (value_map or {}).items()}
        self.reduce_zero_label = reduce_zero_label
        self.ignore_index = ignore_index
        self._luts: dict[int, np.ndarray] = {}  # stored value -> label, by the file's bit depth

    def __len__(self) -> int:
        return len(self.image_paths)

    def source(self, index: int) -> str:
        return str(self.image_paths[index])

    def mask_source(self, index: int) -> str:
        return str(self.mask_paths[index])

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB (gray and RGBA converted), decoded with PIL.

        Raises:
            ValueError: the file is missing or unreadable; names it.
        """
        path = self.image_paths[index]
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot read image {path} (record {index}): {err}") from err

    def load_mask(self, index: int) -> np.ndarray:
        """Label map ``index`` as (H, W) int64 after ``value_map`` and ``reduce_zero_label``.

        Raises:
            FileNotFoundError, ValueError: the mask is missing, unreadable or not an index
                image; names the file.
        """
        return self.map_values(read_raw_label_map(self.mask_paths[index]))

    def map_values(self, raw: np.ndarray) -> np.ndarray:
        """(H, W) int64 label values of (H, W) stored values (any integer dtype)."""
        if not self.value_map and not self.reduce_zero_label:
            return raw.astype(np.int64)
        if raw.dtype in (np.uint8, np.uint16):  # one table lookup per pixel
            bits = raw.dtype.itemsize * 8
            if bits not in self._luts:
                self._luts[bits] = self._mapped(np.arange(2**bits, dtype=np.int64))
            return self._luts[bits][raw]
        return self._mapped(raw.astype(np.int64))

    def _mapped(self, values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for stored, label in self.value_map.items():
            out[values == stored] = label
        if self.reduce_zero_label:
            out = reduce_zero_label(out, self.ignore_index)
        return out


def pair_files(
    images: Mapping[str, Path],
    masks: Mapping[str, Path],
    *,
    expected_mask: Callable[[str], Path],
    expected_image: Callable[[str], str],
) -> tuple[list[Path], list[Path]]:
    """Images and masks matched by key (in key order), raising on a file without its partner.

    Args:
        images: key (e.g. the relative path without extension) -> image file.
        masks: key -> mask file.
        expected_mask: key -> the mask file an image of that key should have, for messages.
        expected_image: key -> the image file a mask of that key should have, for messages.

    Raises:
        ValueError: an image without a mask or a mask without an image; names the first such
            file, the file it expected and how many there are.
    """
    no_mask = sorted(set(images) - set(masks))
    if no_mask:
        raise ValueError(
            f"image {images[no_mask[0]]} has no mask: expected {expected_mask(no_mask[0])}; "
            f"{len(no_mask)} of {len(images)} images have none"
        )
    no_image = sorted(set(masks) - set(images))
    if no_image:
        raise ValueError(
            f"mask {masks[no_image[0]]} has no image: expected {expected_image(no_image[0])}; "
            f"{len(no_image)} of {len(masks)} masks have none"
        )
    keys = sorted(images)
    return [images[k] for k in keys], [masks[k] for k in keys]


def list_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files under ``folder`` (recursive) with one of ``suffixes``; hidden ones skipped."""
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _key(path: Path, folder: Path, suffix: str = "") -> str:
    """Relative path without extension (and without ``suffix``): ``"sub/0001"``."""
    stem = path.relative_to(folder).with_suffix("").as_posix()
    return stem[: len(stem) - len(suffix)] if suffix and stem.endswith(suffix) else stem


def mask_folders(
    split: str,
    *,
    root: str,
    images_dir: str = "images",
    masks_dir: str = "masks",
    mask_suffix: str = "",
    mask_extension: str = ".png",
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    value_map: Mapping[int, int] | None = None,
    reduce_zero_label: bool = False,
    ignore_index: int = 255,
    classes: Sequence[str] | None = None,
) -> LabelMapRecords:
    """One split of an image-folder + mask-folder dataset.

    Image ``root/{images_dir}/{split}/a/b.jpg`` has the mask
    ``root/{masks_dir}/{split}/a/b{mask_suffix}{mask_extension}``.

    Args:
        split: the subfolder of both folders ("train", "val", "test" or the dataset's own name).
        root: dataset folder.
        images_dir: folder of the images, relative to ``root``.
        masks_dir: folder of the masks, relative to ``root`` (may equal ``images_dir`` when the
            masks lie next to the images with a ``mask_suffix``).
        mask_suffix: what the mask's name adds to the image's, e.g. "" or "_mask".
        mask_extension: the masks' file extension.
        image_suffixes: extensions taken as images (case-insensitive).
        value_map: stored mask value -> class id, e.g. ``{255: 1}`` for 0/255 binary masks.
        reduce_zero_label: 0 -> ignore and the rest -1 (masks whose 0 is "unlabelled").
        ignore_index: the void value.
        classes: class names, or None.

    Returns:
        records whose ``load`` gives (H, W, 3) uint8 and ``load_mask`` (H, W) int64.

    Raises:
        FileNotFoundError: a split folder is missing (says where the data should be put).
        ValueError: no images; an image without a mask or a mask without an image; two images
            with the same name and different extensions.
    """
    base = Path(root).expanduser()
    image_dir, mask_dir = base / images_dir / split, base / masks_dir / split
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"folder {folder} not found. Expected images under root/{images_dir}/{split}/ "
                f"and masks root/{masks_dir}/{split}/<image name>{mask_suffix}{mask_extension} "
                f"with root = data.records.root={base}. cvbench never downloads data."
            )
    mask_files = list_files(mask_dir, [mask_extension])
    if mask_dir == image_dir:  # masks next to the images: tell them apart by the suffix
        if not mask_suffix:
            raise ValueError(
                f"data.records.images_dir and masks_dir are both {images_dir}: set "
                f"data.records.mask_suffix (e.g. _mask) to tell the masks from the images"
            )
        mask_files = [p for p in mask_files if p.stem.endswith(mask_suffix)]
    masked = set(mask_files)
    images: dict[str, Path] = {}
    for path in list_files(image_dir, image_suffixes):
        if path in masked:
            continue
        key = _key(path, image_dir)
        if key in images:
            raise ValueError(
                f"images {images[key]} and {path} have the same name; expected one image per "
                f"mask name"
            )
        images[key] = path
    if not images:
        raise ValueError(f"no images ({', '.join(image_suffixes)}) under {image_dir}")
    masks = {}
    for path in mask_files:
        if mask_suffix and not path.stem.endswith(mask_suffix):
            raise ValueError(
                f"mask {path} does not end with mask_suffix {mask_suffix!r}; expected "
                f"<image name>{mask_suffix}{mask_extension}"
            )
        masks[_key(path, mask_dir, mask_suffix)] = path
    image_paths, mask_paths = pair_files(
        images,
        masks,
        expected_mask=lambda key: mask_dir / f"{key}{mask_suffix}{mask_extension}",
        expected_image=lambda key: (
            f"{image_dir / key}.<{'|'.join(s.lstrip('.') for s in image_suffixes)}>"
        ),
    )
    return MaskRecords(
        image_paths,
        mask_paths,
        classes=classes,
        value_map=value_map,
        reduce_zero_label=reduce_zero_label,
        ignore_index=ignore_index,
    )

"""Semantic label maps on disk: reading index PNGs and checking their values.

A label map is an (H, W) integer image whose pixel values are class ids ``0..K-1``, with
``ignore_index`` (255 by default) marking void pixels that are never scored. Datasets publish
them as 8-bit gray PNGs ("L"), palette PNGs ("P", Pascal VOC: the pixel values are the class
ids, the palette only colours them for viewing), or 16-bit PNGs ("I;16") when there are more
than 256 classes. ``reduce_zero_label`` is MMSegmentation's ADE20K convention
(``mmseg.datasets.transforms.LoadAnnotations``): 0 (unlabelled) becomes ignore, the rest -1.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

# PIL modes whose pixel values are the label values themselves.
INDEX_MODES = ("1", "L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I")


def read_raw_label_map(path: str | Path) -> np.ndarray:
    """The pixel values of a label-map image, in the file's own integer type.

    Args:
        path: an index image ("L", "P", "1", "I;16", "I"), usually a PNG.

    Returns:
        (H, W) uint8 ("1", "L", "P"), uint16 ("I;16") or int32 ("I") label values; a palette
        image gives its indices, not its colours.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is unreadable, or not a single-channel index image (RGB, RGBA,
            gray with alpha, float); the message names the file and the fix.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in INDEX_MODES:
                raise ValueError(_not_an_index_image(path, image))
            values = np.asarray(image)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"label map {path} not found") from err
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read label map {path}: {err}") from err
    if mode == "1":
        values = values.astype(np.uint8)
    elif mode.startswith("I;16"):
        values = values.astype(np.uint16)
    return values


def _not_an_index_image(path: Path, image: Image.Image) -> str:
    """The message for a label map stored in a mode whose pixels are not class ids."""
    message = (
        f"label map {path} is a {image.mode} image; expected a single-channel index image "
        f"(PNG mode L, P, I;16 or I) whose pixel values are the class ids."
    )
    if image.mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return f"{message} Its three channels are equal: save it as an 8-bit gray PNG (L)."
        return (
            f"{message} A colour-coded mask must first be converted to class ids (map each "
            f"colour to its class index and save as a gray or palette PNG)."
        )
    return message


def read_label_map(path: str | Path) -> np.ndarray:
    """A label map file as (H, W) int64 label values.

    Args:
        path: an index PNG: 8-bit gray ("L"), palette ("P", read as the indices, not the
            colours), 1-bit ("1", read as 0/1), 16-bit ("I;16") or 32-bit ("I").

    Returns:
        (H, W) int64, the stored values unchanged.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, or an RGB / RGBA / other multi-channel image; names the file.
    """
    return read_raw_label_map(path).astype(np.int64)


def reduce_zero_label(mask: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """MMSegmentation's ``reduce_zero_label``: 0 becomes ``ignore_index``, others minus 1.

    Pixels already at ``ignore_index`` stay ignored (as in MMSeg, whose
    ``gt[gt == 0] = 255; gt = gt - 1; gt[gt == 254] = 255`` does the same for 255).

    Args:
        mask: (H, W) integer label map whose 0 means "unlabelled" (ADE20K).
        ignore_index: the void value.

    Returns:
        (H, W) int64.

    >>> reduce_zero_label(np.array([[0, 1, 2, 150, 255]])).tolist()
    [[255, 0, 1, 149, 255]]
    """
    mask = np.asarray(mask)
    out = mask.astype(np.int64) - 1
    out[(mask == 0) | (mask == ignore_index)] = ignore_index
    return out


def label_values(mask: np.ndarray) -> np.ndarray:
    """(V,) int64 sorted distinct values of a label map (a bincount when they are small).

    >>> label_values(np.array([[3, 0], [255, 3]])).tolist()
    [0, 3, 255]
    """
    flat = np.asarray(mask).ravel()
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = int(flat.min()), int(flat.max())
    if low >= 0 and high < 65536:  # np.unique sorts; counting is several times faster
        return np.flatnonzero(np.bincount(flat, minlength=high + 1)).astype(np.int64)
    return np.unique(flat).astype(np.int64)


def check_label_values(
    values: Iterable[int] | np.ndarray, *, num_classes: int, ignore_index: int, where: str
) -> None:
    """Raise if a label value is neither a class id in ``[0, num_classes)`` nor ``ignore_index``.

    Args:
        values: label values (e.g. the distinct values of one mask).
        num_classes: K.
        ignore_index: the void value.
        where: what the values come from (mask file, dataset and split), put in the message.

    Raises:
        ValueError: names ``where``, the first bad value and how to fix it.
    """
    values = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    values = values.ravel().astype(np.int64)
    bad = np.unique(values[((values < 0) | (values >= num_classes)) & (values != ignore_index)])
    if len(bad) == 0:
        return
    shown = ", ".join(str(v) for v in bad[:10].tolist()) + (", ..." if len(bad) > 10 else "")
    raise ValueError(
        f"{where}: label value {int(bad[0])} is outside [0, {num_classes}) and is not "
        f"ignore_index {ignore_index} (bad values: {shown}). Set data.num_classes to the number "
        f"of classes, data.ignore_index to the void value, or remap the mask values (e.g. "
        f"data.records.value_map, reduce_zero_label) so that they are class ids."
    )


def check_binary_trap(
    values_seen: Iterable[int] | np.ndarray, *, num_classes: int, ignore_index: int, where: str
) -> None:
    """Raise on the 0/255 binary-mask trap.

    Binary masks are often saved as black/white images: background 0, foreground 255. With two
    classes and ``ignore_index`` 255, every foreground pixel would be ignored and the model would
    learn that everything is background, with a perfect loss.

    Args:
        values_seen: the distinct label values of a whole split.
        num_classes: K.
        ignore_index: the void value.
        where: the dataset and split, put in the message.

    Raises:
        ValueError: ``num_classes == 2``, ``ignore_index == 255`` and the masks hold only the
            values 0 and 255; the message explains the trap and the fix.
    """
    seen = {int(v) for v in np.asarray(list(values_seen)).ravel()}
    if num_classes == 2 and ignore_index == 255 and 255 in seen and seen <= {0, 255}:
        raise ValueError(
            f"{where}: the masks hold only the values 0 and 255, data.num_classes is 2 and "
            f"data.ignore_index is 255: every foreground pixel would be ignored and the model "
            f"would learn background only (the 0/255 binary-mask trap). If 255 means "
            f"foreground, map it to class 1: data.records.value_map={{255: 1}} (mask folders), "
            f"or rewrite the masks with values 0 and 1. If 255 really is void, these masks have "
            f"no foreground at all; set data.check_labels=false to train on them anyway."
        )

"""Style images of style transfer: one image file or a folder of them, read strictly as RGB.

Content images follow :func:`~cvbench.data.formats.images.read_rgb` (a gray photo is repeated
to three channels), but a gray style image would silently turn every output gray, so a style
file must be colour: a missing file, one PIL cannot read, or one stored gray (PIL modes 1, L,
LA, I, F ...) is one error naming the file. Palette images are accepted (their colours are
converted to RGB); alpha is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cvbench.data.formats.images import ImageFiles, read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.records import ImageRecords

GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
"""PIL modes of gray images (bilevel, 8-bit, with alpha, 16/32-bit integer, float)."""
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA")
"""PIL modes a style image may have (8-bit RGB with or without alpha, palette)."""
EXPECTED = "style transfer needs an RGB image: save it in colour (PNG or JPEG, mode RGB)"


def check_style_file(path: Path) -> None:
    """Raise unless ``path`` is an image file stored in colour (reads the header only).

    Raises:
        FileNotFoundError: no such file.
        ValueError: PIL cannot open it, it is gray, or its mode is not RGB(A) or palette
            (CMYK, YCbCr ...); naming the file.
    """
    if not path.is_file():
        kind = "a folder, not an image file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"style image {path} {kind}; expected an RGB image file (PNG, JPEG) there "
            "(set data.styles)"
        )
    try:
        with Image.open(path) as image:
            mode = image.mode
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read style image {path} ({err}); {EXPECTED}") from None
    if mode in GRAY_MODES:
        raise ValueError(f"style image {path} is grayscale (mode {mode}); {EXPECTED}")
    if mode not in COLOUR_MODES:
        raise ValueError(f"style image {path} has PIL mode {mode}; {EXPECTED}")


def read_style_rgb(path: Path) -> np.ndarray:
    """The style image at ``path`` as (H, W, 3) uint8 RGB, checked by
    :func:`check_style_file` (16-bit files and decoding faults are named by
    :func:`~cvbench.data.formats.images.read_rgb`)."""
    check_style_file(Path(path))
    return read_rgb(Path(path))


class StyleImages(ImageFiles):
    """Style image files, each checked when listed and read strictly as RGB on ``load``.

    Args:
        paths: one file per style.
        root: the folder the names are relative to.

    Raises:
        FileNotFoundError, ValueError: a file is missing, unreadable or gray
            (:func:`check_style_file`), naming the first such file.
    """

    def __init__(self, paths: Sequence[Path], root: Path) -> None:
        super().__init__(paths, root)
        for path in self.paths:  # headers only: a bad file fails before training, not in it
            check_style_file(path)

    def load(self, index: int) -> np.ndarray:
        """Style ``index`` as (H, W, 3) uint8 RGB (see :func:`read_style_rgb`)."""
        return read_style_rgb(self.paths[index])


def _style_files(location: str, split: str) -> StyleImages:
    path = Path(location)
    if path.is_dir():
        files = list_files(path, IMAGE_SUFFIXES)
        if not files:
            raise ValueError(
                f"style folder {path} (split '{split}'): no image files "
                f"({', '.join(IMAGE_SUFFIXES)}) under this folder"
            )
        return StyleImages(files, path)
    return StyleImages([path], path.parent)


def style_images(
    split: str, *, train: str, val: str | None = None, test: str | None = None
) -> ImageRecords:
    """The style images of one split: one image file, or every image file under a folder
    (recursive, hidden files skipped).

    Args:
        split: "train", "val" or "test".
        train: the training styles' file or folder.
        val, test: the evaluation styles' file or folder; None: ``train``'s.

    Returns:
        (H, W, 3) uint8 RGB images named by their path relative to the folder (a single
        file: its file name).

    Raises:
        FileNotFoundError: the file or folder does not exist.
        ValueError: a folder without images; a style file that is unreadable or gray.
    """
    locations = {"train": train, "val": val or train, "test": test or train}
    if split not in locations:
        raise ValueError(f"style_images has splits {sorted(locations)}, got {split!r}")
    return _style_files(locations[split], split)

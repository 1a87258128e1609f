"""Folders of images without labels, the training and test sets of image restoration.

``root/<split>/**/<image>`` (recursive, hidden files skipped; ``split_dir`` changes the
sub-folder). Every image is read as 8-bit RGB: gray ones are repeated to three channels and
alpha is dropped, so super-resolution, colorization and inpainting see one format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.records import ImageRecords

# PIL modes and raw modes of more than 8 bits per channel. PIL opens a 16-bit RGB PNG or TIFF
# as mode RGB, silently keeping the high byte: only its raw mode (RGB;16B) tells.
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
WIDE_RAWMODE = re.compile(r";16[BLN]$")
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX")


def _is_wide(image: Image.Image) -> bool:
    """More than 8 bits per channel (checked before ``load``, while the raw mode is known)."""
    if image.mode in WIDE_MODES:
        return True
    for tile in image.tile:
        args = tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and WIDE_RAWMODE.search(rawmode):
            return True
    return False


def read_rgb(path: Path) -> np.ndarray:
    """The image at ``path`` as (H, W, 3) uint8 RGB; gray repeated, alpha dropped.

    Raises:
        ValueError: unreadable, 16-bit or float, or a mode that is not gray, palette or RGB
            (CMYK ...); naming the file.
    """
    try:
        with Image.open(path) as image:
            if _is_wide(image):
                raise ValueError(
                    f"{path}: more than 8 bits per channel (PIL mode {image.mode}); cvbench "
                    "reads 8-bit images: save them as 8-bit PNG"
                )
            if image.mode not in EIGHT_BIT_MODES:
                raise ValueError(
                    f"{path}: PIL mode {image.mode}; expected 8-bit gray, palette or RGB(A)"
                )
            image.load()
            return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None


class ImageFiles:
    """Image files decoded on ``load``, with names for reports.

    Args:
        paths: one file per record.
        root: the folder the names are relative to.
    """

    def __init__(self, paths: Sequence[Path], root: Path) -> None:
        self.paths = [Path(p) for p in paths]
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB (see :func:`read_rgb`)."""
        return read_rgb(self.paths[index])

    def name(self, index: int) -> str:
        """The file's path relative to the folder, e.g. ``"0801.png"``."""
        return self.paths[index].relative_to(self.root).as_posix()

    def source(self, index: int) -> str:
        return str(self.paths[index])


def image_folder(
    split: str,
    *,
    root: str,
    split_dir: str = "{split}",
    extensions: Sequence[str] = IMAGE_SUFFIXES,
) -> ImageRecords:
    """The images of one split: every image file under ``root/<split_dir>``.

    Args:
        split: "train", "val" or "test" (or the dataset's own name, see ``split_names``).
        root: the dataset folder.
        split_dir: the split's folder under ``root``; ``{split}`` is replaced by the split
            ("" reads ``root`` itself for every split).
        extensions: file suffixes read (any case).

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no image.
    """
    folder = Path(root) / split_dir.format(split=split)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {folder} (split '{split}') does not exist; expected images under "
            f"{Path(root) / split_dir.replace('{split}', '<split>')} (set data.records.root)"
        )
    paths = list_files(folder, extensions)
    if not paths:
        raise ValueError(f"{folder}: no image files ({', '.join(extensions)}) under this folder")
    return ImageFiles(paths, folder)

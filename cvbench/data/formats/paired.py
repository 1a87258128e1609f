"""Pre-paired super-resolution folders: high-resolution images and their bicubic inputs.

DIV2K (Agustsson and Timofte, 2017): ``DIV2K_train_HR/0001.png`` with
``DIV2K_train_LR_bicubic/X2/0001x2.png``. The benchmark sets as EDSR distributes them
(Set5, Set14, B100, Urban100): ``Set5/HR/baby.png`` with ``Set5/LR_bicubic/X2/babyx2.png``.
Both are ``hr_dir`` / ``lr_dir`` folders where the input of ``<stem>.<ext>`` is named
``<stem>x<scale>.<ext>`` (``lr_name``). A high-resolution image whose sides are not multiples of
the scale is cropped at the bottom and right (the papers' "modcrop"); its input must then be
exactly 1/scale of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.records import PairedRecords
from cvbench.data.resize import modcrop


class PairedFiles:
    """High-resolution images and their low-resolution inputs, decoded on load.

    Args:
        hr_paths: one high-resolution image per record.
        lr_paths: its input, same order.
        scale: the integer factor between them.
        root: the folder the names are relative to (the HR folder).
    """

    def __init__(
        self, hr_paths: Sequence[Path], lr_paths: Sequence[Path], *, scale: int, root: Path
    ) -> None:
        if len(hr_paths) != len(lr_paths):
            raise ValueError(f"{len(hr_paths)} HR images but {len(lr_paths)} LR images")
        self.hr_paths = [Path(p) for p in hr_paths]
        self.lr_paths = [Path(p) for p in lr_paths]
        self.scale = scale
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.hr_paths)

    def load(self, index: int) -> np.ndarray:
        """High-resolution image ``index``, modcropped: (H, W, 3) uint8, H and W multiples of
        the scale."""
        return modcrop(read_rgb(self.hr_paths[index]), self.scale)

    def load_input(self, index: int) -> np.ndarray:
        """Its low-resolution input (H / scale, W / scale, 3) uint8.

        Raises:
            ValueError: the input's size is not the HR image's divided by the scale; the
                message names both files.
        """
        lr = read_rgb(self.lr_paths[index])
        with Image.open(self.hr_paths[index]) as hr:  # the header only: no second decode
            hr_w, hr_h = hr.size
        want = (hr_h // self.scale, hr_w // self.scale)
        if lr.shape[:2] != want:
            raise ValueError(
                f"{self.lr_paths[index]}: input is {lr.shape[0]}x{lr.shape[1]} (HxW) but "
                f"{self.hr_paths[index]} needs {want[0]}x{want[1]} at x{self.scale} (its size "
                f"cropped to multiples of {self.scale}, divided by {self.scale}); is "
                "data.scale the scale of data.records.lr_dir?"
            )
        return lr

    def name(self, index: int) -> str:
        return self.hr_paths[index].relative_to(self.root).as_posix()

    def source(self, index: int) -> str:
        return f"{self.hr_paths[index]} (input {self.lr_paths[index]})"


def paired_folders(
    split: str,
    *,
    root: str,
    scale: int,
    hr_dir: str = "HR",
    lr_dir: str = "LR_bicubic/X{scale}",
    lr_name: str = "{stem}x{scale}{suffix}",
) -> PairedRecords:
    """One split of a paired super-resolution dataset.

    Args:
        split: the split's name, replaced for ``{split}`` in the folder names.
        root: the dataset folder.
        scale: 2, 3 or 4: the factor of the inputs in ``lr_dir``.
        hr_dir: the high-resolution folder under ``root`` (``{split}`` replaced).
        lr_dir: the input folder under ``root`` (``{split}`` and ``{scale}`` replaced).
        lr_name: the input's file name of an HR file ``<stem><suffix>`` (``{stem}``,
            ``{scale}`` and ``{suffix}`` replaced), relative to ``lr_dir``.

    Raises:
        FileNotFoundError: a folder, or the input of some HR image, is missing (named).
        ValueError: the HR folder holds no image.
    """
    hr_folder = Path(root) / hr_dir.format(split=split)
    lr_folder = Path(root) / lr_dir.format(split=split, scale=scale)
    for folder, key in ((hr_folder, "hr_dir"), (lr_folder, "lr_dir")):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} (split '{split}') does not exist; set data.records.root or "
                f"data.records.{key}"
            )
    hr_paths = list_files(hr_folder, IMAGE_SUFFIXES)
    if not hr_paths:
        raise ValueError(f"{hr_folder}: no image files under this folder")
    lr_paths = []
    for hr in hr_paths:
        rel = hr.relative_to(hr_folder)
        lr = lr_folder / rel.parent / lr_name.format(stem=hr.stem, scale=scale, suffix=hr.suffix)
        if not lr.is_file():
            raise FileNotFoundError(
                f"{lr}: missing; the x{scale} input of {hr} (data.records.lr_name {lr_name!r})"
            )
        lr_paths.append(lr)
    return PairedFiles(hr_paths, lr_paths, scale=scale, root=hr_folder)

"""Writers of tiny image-restoration datasets in the real on-disk layouts: image folders and
paired super-resolution folders (DIV2K, EDSR's benchmark sets) whose inputs are MATLAB's
bicubic downscaling of the high-resolution images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matlab_reference import imresize_reference
from PIL import Image


def write_image_folder(root: Path, split: str, *, size: tuple[int, int] = (60, 72)) -> None:
    """``root/{split}/a.jpg`` and ``root/{split}/sub/b.png``: random RGB images of ``size``
    (H, W)."""
    rng = np.random.default_rng(len(split))
    for name in ("a.jpg", "sub/b.png"):
        path = root / split / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def write_paired_folders(
    root: Path,
    split: str = "",
    *,
    hr_dir: str = "HR",
    lr_dir: str = "LR_bicubic/X{scale}",
    lr_name: str = "{stem}x{scale}{suffix}",
    scale: int,
    names: tuple[str, ...] = ("0001", "0002"),
) -> None:
    """High-resolution PNGs (60 x 72) ``root/<hr_dir>/<name>.png`` and their MATLAB-bicubic
    inputs ``root/<lr_dir>/<lr_name>``, the names formatted as
    :func:`cvbench.data.formats.paired.paired_folders` reads them (``{split}``, ``{scale}``,
    ``{stem}``, ``{suffix}``)."""
    rng = np.random.default_rng(len(names) + len(split))
    hr_folder = root / hr_dir.format(split=split, scale=scale)
    lr_folder = root / lr_dir.format(split=split, scale=scale)
    hr_folder.mkdir(parents=True, exist_ok=True)
    lr_folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        hr = rng.integers(0, 256, size=(60, 72, 3), dtype=np.uint8)
        Image.fromarray(hr).save(hr_folder / f"{name}.png")
        lr = imresize_reference(hr, 1 / scale)
        Image.fromarray(lr).save(lr_folder / lr_name.format(stem=name, scale=scale, suffix=".png"))

"""Image folders, one subfolder per class (the layout of torchvision's ``ImageFolder``).

``root/{train,val,test}/<class_name>/<image>``. The classes are the sorted subfolder
names of ``root/train``, the same list for every split. Images are read lazily with PIL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cvbench.data.records import ClassificationRecords

SPLITS = ("train", "val", "test")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFolderRecords:
    """Image files on disk with their class ids, decoded on ``load``.

    Args:
        paths: one file per record.
        targets: (N,) integer class ids.
        classes: class names, index = class id.
    """

    def __init__(self, paths: Sequence[Path], targets: np.ndarray, classes: Sequence[str]) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} paths but {len(targets)} targets")
        self.paths = list(paths)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """Image ``index``: (H, W) uint8 if stored as 8-bit gray ("L"), else (H, W, 3) uint8 RGB.

        Raises:
            ValueError: the file is missing, unreadable or not a valid image; the message
                names the file.
        """
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                image.load()
                if image.mode != "L":
                    image = image.convert("RGB")
                return np.array(image, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot read image {path} (record {index}): {err}") from err

    def source(self, index: int) -> str:
        return str(self.paths[index])


def imagefolder(
    split: str, *, root: str, extensions: Sequence[str] = EXTENSIONS
) -> ClassificationRecords:
    """One split of a folder-per-class image dataset.

    Files are found recursively under each class folder, sorted by path; hidden files
    and folders (names starting with ".") and other extensions are skipped.

    Args:
        split: "train", "val" or "test", the subfolder of ``root``.
        root: folder holding ``train/`` (which defines the classes) and the split.
        extensions: file suffixes taken as images, compared case-insensitively.

    Returns:
        records whose ``load`` gives (H, W) or (H, W, 3) uint8, targets (N,) in
        [0, number of class folders in ``root/train``).

    Raises:
        FileNotFoundError: ``root/train`` or ``root/<split>`` is not a folder.
        ValueError: unknown split, no class folders, or a class folder of ``split``
            that ``root/train`` does not have.
    """
    if split not in SPLITS:
        raise ValueError(f"imagefolder has splits {SPLITS}, got {split!r}")
    root_path = Path(root).expanduser()
    train_dir, split_dir = root_path / "train", root_path / split
    for folder in dict.fromkeys((train_dir, split_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"image folder {folder} not found. Expected root/{{train,val,test}}/"
                f"<class_name>/<image> with root = data.records.root={root_path}; the classes "
                f"are the subfolders of root/train. cvbench never downloads data."
            )
    classes = _subfolders(train_dir)
    if not classes:
        raise ValueError(f"{train_dir} has no class subfolders (root/train/<class_name>/<image>)")
    unknown = sorted(set(_subfolders(split_dir)) - set(classes))
    if unknown:
        raise ValueError(
            f"{split_dir} has class folder(s) {unknown} that {train_dir} does not have; "
            f"every split uses the classes of train: {classes}"
        )
    suffixes = tuple(e.lower() for e in extensions)
    paths, targets = [], []
    for target, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        files = sorted(
            p
            for p in class_dir.rglob("*")
            if p.suffix.lower() in suffixes
            and not any(part.startswith(".") for part in p.relative_to(class_dir).parts)
            and p.is_file()
        )
        paths.extend(files)
        targets.extend([target] * len(files))
    return ImageFolderRecords(paths, np.asarray(targets, dtype=np.int64), classes)


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

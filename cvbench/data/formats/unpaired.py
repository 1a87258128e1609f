"""CycleGAN's unpaired layout (Zhu et al., 2017; the datasets of
https://github.com/junyanz/CycleGAN such as horse2zebra): ``root/trainA``, ``root/trainB``,
``root/testA``, ``root/testB`` (images found recursively), with ``root/valA`` and ``root/valB``
for validation where the dataset has them. Without them, validation is a seeded holdout of
each training domain (``val_size`` images of A and of B), the rest trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cvbench.data.formats.images import ImageFiles
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.records import ImageRecords, UnpairedRecords, holdout_split

SPLITS = ("train", "val", "test")


class UnpairedImages:
    """Two image domains of one split, with no correspondence between them.

    Attributes:
        a: the images of domain A.
        b: the images of domain B.
    """

    def __init__(self, a: ImageRecords, b: ImageRecords) -> None:
        self.a = a
        self.b = b

    def __len__(self) -> int:
        """The larger domain's count: the samples of one evaluation pass (the shorter cycled)."""
        return max(len(self.a), len(self.b))


def _domain(folder: Path, extensions: Sequence[str]) -> ImageFiles:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CycleGAN folder {folder} does not exist; expected root/{{trainA,trainB,testA,"
            f"testB}} (set data.records.root)"
        )
    files = list_files(folder, extensions)
    if not files:
        raise ValueError(f"CycleGAN folder {folder} holds no image ({', '.join(extensions)})")
    return ImageFiles(files, folder)


def _held_out(domain: ImageFiles, split: str, val_size: int | float, seed: int) -> ImageFiles:
    chosen = holdout_split(len(domain), split, val_size=val_size, seed=seed)
    if len(chosen) == 0:
        raise ValueError(
            f"{domain.root}: no valA/valB folders and data.records.val_size={val_size} holds "
            f"nothing out for validation; set val_size (e.g. 0.1) or add valA/valB"
        )
    return ImageFiles([domain.paths[i] for i in chosen], domain.root)


def cyclegan_folders(
    split: str,
    *,
    root: str,
    val_size: int | float = 0.1,
    seed: int = 0,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
) -> UnpairedRecords:
    """One split of a CycleGAN dataset (see the module docstring).

    Args:
        split: "train", "val" or "test".
        root: the dataset folder.
        val_size: images (int) or share (float) of each training domain held out for "val"
            when ``root`` has no ``valA``/``valB`` (then "train" is the rest); unused otherwise.
        seed: seed of the holdout (independent of the run's seed).
        extensions: image suffixes read (any case).

    Returns:
        records with ``a`` and ``b`` (:class:`~cvbench.data.formats.images.ImageFiles`, named
        by their path relative to their domain folder).

    Raises:
        FileNotFoundError: a domain folder is missing, naming it.
        ValueError: a domain folder holds no image, or the holdout is empty.
    """
    if split not in SPLITS:
        raise ValueError(f"CycleGAN data has splits {SPLITS}, got {split!r}")
    base = Path(root).expanduser()
    has_val = (base / "valA").is_dir() or (base / "valB").is_dir()
    if split == "test" or has_val:
        return UnpairedImages(
            _domain(base / f"{split}A", extensions), _domain(base / f"{split}B", extensions)
        )
    train_a, train_b = _domain(base / "trainA", extensions), _domain(base / "trainB", extensions)
    if split == "train" and val_size == 0:
        return UnpairedImages(train_a, train_b)
    return UnpairedImages(
        _held_out(train_a, split, val_size, seed), _held_out(train_b, split, val_size, seed)
    )

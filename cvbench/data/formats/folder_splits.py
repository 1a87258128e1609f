"""A folder of images as train/val/test: either its own split subfolders
(``root/{train,val,test}/**/<image>``) or one folder split by a seeded permutation, as image
synthesis reads user data (e.g. a folder of faces). With ``labelled``, the first subfolder
level names the class (torchvision's ``ImageFolder``; the classes are the sorted subfolders of
``root/train``, or of ``root`` for one folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cvbench.data.formats.imagefolder import ImageFolderRecords, imagefolder
from cvbench.data.formats.images import ImageFiles, image_folder
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files

SPLITS = ("train", "val", "test")


def three_way_split(
    num_records: int, split: str, *, val_size: int | float, test_size: int | float, seed: int
) -> np.ndarray:
    """Sorted indices of ``split`` when one set of ``num_records`` is split three ways: a
    permutation fixed by ``seed`` gives test its first ``test_size``, val the next ``val_size``,
    train the rest (a share when a float in (0, 1), a count when an int).

    >>> [len(three_way_split(10, s, val_size=0.2, test_size=3, seed=0)) for s in SPLITS]
    [5, 2, 3]
    """

    def count(size: int | float) -> int:
        return int(round(size * num_records)) if isinstance(size, float) else int(size)

    n_val, n_test = count(val_size), count(test_size)
    if n_val < 0 or n_test < 0 or n_val + n_test >= num_records:
        raise ValueError(
            f"data.records.val_size={val_size}, test_size={test_size} must leave training "
            f"images among the {num_records}"
        )
    perm = np.random.default_rng(seed).permutation(num_records)
    bounds = {"test": (0, n_test), "val": (n_test, n_test + n_val), "train": (n_test + n_val, None)}
    start, stop = bounds[split]
    return np.sort(perm[start:stop])


def image_splits(
    split: str,
    *,
    root: str,
    split_dir: str = "{split}",
    labelled: bool = False,
    val_size: int | float = 0.1,
    test_size: int | float = 0.1,
    seed: int = 0,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
) -> ImageFiles | ImageFolderRecords:
    """The images of one split (see the module docstring).

    Args:
        split: "train", "val" or "test".
        root: the dataset folder.
        split_dir: "{split}": the splits are subfolders ``root/<split>``; "": ``root`` holds
            every image, split by ``val_size``, ``test_size`` and ``seed``.
        labelled: the first subfolder level names the class.
        val_size, test_size: images (int) or share (float) held out (one folder only).
        seed: seed of the permutation (one folder only; independent of the run's seed).
        extensions: image suffixes read (any case).

    Returns:
        :class:`~cvbench.data.formats.images.ImageFiles` (unlabelled), or
        :class:`~cvbench.data.formats.imagefolder.ImageFolderRecords` (``targets``,
        ``classes``).

    Raises:
        FileNotFoundError: the folder is missing. ValueError: no image, or an empty split.
    """
    if split not in SPLITS:
        raise ValueError(f"image folders have splits {SPLITS}, got {split!r}")
    if split_dir not in ("{split}", ""):
        raise ValueError(f'data.records.split_dir must be "{{split}}" or "", got {split_dir!r}')
    if split_dir:
        if labelled:
            return imagefolder(split, root=root, extensions=tuple(extensions))
        return image_folder(split, root=root, extensions=extensions)
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist (set data.records.root)")
    paths = list_files(folder, extensions)
    if not paths:
        raise ValueError(f"{folder}: no image files ({', '.join(extensions)}) under this folder")
    chosen = three_way_split(
        len(paths), split, val_size=val_size, test_size=test_size, seed=seed
    ).tolist()
    if not chosen:
        raise ValueError(f"{folder}: split '{split}' is empty; set data.records.{split}_size")
    if not labelled:
        return ImageFiles([paths[i] for i in chosen], folder)
    classes = sorted({p.relative_to(folder).parts[0] for p in paths if p.parent != folder})
    loose = [p.name for p in paths if p.parent == folder]
    if loose:
        raise ValueError(
            f"{folder}: labelled data keeps every image in a class subfolder; "
            f"{len(loose)} lie in the folder itself (first: {loose[:3]})"
        )
    targets = [classes.index(paths[i].relative_to(folder).parts[0]) for i in chosen]
    return ImageFolderRecords([paths[i] for i in chosen], np.asarray(targets), classes)

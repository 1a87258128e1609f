"""Image-classification records: the one interface every classification reader provides.

A reader (``formats/cifar.py``, ``formats/mnist.py``, ``formats/imagefolder.py``,
``embedded/digits.py``) returns an object with this interface for one split; the
datamodule wraps it with channel conversion, albumentations transforms and the sample index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class ImageRecords(Protocol):
    """One split of a labelled image dataset.

    Attributes:
        targets: (N,) int64 class ids in ``[0, num_classes)``.
        classes: class names, index = class id.
    """

    targets: np.ndarray
    classes: Sequence[str]

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W) or (H, W, C) uint8, C in {1, 3, 4}."""
        ...

    def source(self, index: int) -> str:
        """Where record ``index`` comes from, for error messages (a file, or a file and record)."""
        ...


class ArrayRecords:
    """Records held in memory as one uint8 array (CIFAR, MNIST, digits).

    Args:
        images: (N, H, W) or (N, H, W, C) uint8.
        targets: (N,) integer class ids.
        classes: class names.
        source: maps a record index to a human-readable origin, e.g.
            ``"cifar-10-batches-py/data_batch_2, record 17"``.
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        classes: Sequence[str],
        source: Callable[[int], str],
    ) -> None:
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self._source = source

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, index: int) -> np.ndarray:
        return self.images[index]

    def source(self, index: int) -> str:
        return self._source(index)

    def subset(self, indices: np.ndarray) -> ArrayRecords:
        """The records at ``indices`` (their sources still name the original records)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ArrayRecords(
            self.images[indices],
            self.targets[indices],
            self.classes,
            lambda i: self._source(int(indices[i])),
        )


def holdout_split(num_records: int, split: str, *, val_size: int | float, seed: int) -> np.ndarray:
    """Indices of ``split`` ("train" or "val") when val is held out of a training set.

    The permutation depends only on ``num_records`` and ``seed``, so train and val
    never overlap and are the same in every run and every process.

    Args:
        num_records: size of the official training set.
        split: "train" or "val".
        val_size: number of records (int) or share of them (float in (0, 1)) held out.
        seed: seed of the permutation.

    Returns:
        (M,) int64 sorted indices into the training set.

    >>> holdout_split(10, "val", val_size=0.2, seed=0).tolist()
    [2, 8]
    >>> len(holdout_split(10, "train", val_size=2, seed=0))
    8
    """
    n_val = int(round(val_size * num_records)) if isinstance(val_size, float) else int(val_size)
    if not 0 <= n_val < num_records:
        raise ValueError(f"val_size={val_size} must leave at least one of {num_records} records")
    perm = np.random.default_rng(seed).permutation(num_records)
    if split == "val":
        return np.sort(perm[:n_val])
    if split == "train":
        return np.sort(perm[n_val:])
    raise ValueError(f"split must be 'train' or 'val' here, got {split!r}")


def training_split(
    records: ArrayRecords, split: str, *, val_size: int | float, seed: int, title: str
) -> ArrayRecords:
    """The "train" or "val" part of an official training set (see :func:`holdout_split`).

    Raises:
        ValueError: "val" is asked for but ``val_size`` holds nothing out.
    """
    chosen = holdout_split(len(records), split, val_size=val_size, seed=seed)
    if len(chosen) == 0:
        raise ValueError(
            f"{title} split 'val' is empty because val_size={val_size}; set "
            f"data.records.val_size (e.g. 5000) to hold out part of the training set"
        )
    return records.subset(chosen)

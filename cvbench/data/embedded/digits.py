"""scikit-learn's handwritten digits (UCI ML optical recognition of digits, 1,797 8x8 images).

Shipped inside scikit-learn, so it is the embedded default: nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cvbench.data.records import ArrayRecords, ClassificationRecords

SPLITS = ("train", "val", "test")


def digits(
    split: str, *, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> ClassificationRecords:
    """One split of the digits, stratified and fixed by ``seed``.

    Pixel values 0..16 are scaled to 0..255 uint8 so the images look like any other.

    Args:
        split: "train", "val" or "test".
        val_fraction: share of all images in val.
        test_fraction: share of all images in test.
        seed: seed of the stratified split (independent of the run's ``seed``).

    Returns:
        records with images (N, 8, 8) uint8 and targets (N,) in [0, 10).
    """
    if split not in SPLITS:
        raise ValueError(f"digits has splits {SPLITS}, got {split!r}")
    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    index = np.arange(len(images))
    rest, test = train_test_split(
        index, test_size=test_fraction, random_state=seed, stratify=bunch.target
    )
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share, random_state=seed, stratify=bunch.target[rest]
    )
    chosen = np.sort({"train": train, "val": val, "test": test}[split])
    return ArrayRecords(
        images[chosen],
        bunch.target[chosen],
        [str(c) for c in range(10)],
        lambda i: f"sklearn digits, image {int(chosen[i])}",
    )

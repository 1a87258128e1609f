"""Writers of tiny image-synthesis and image-to-image translation datasets in the real on-disk
layouts: image folders (with or without class subfolders), pix2pix's paired ``A``/``B`` folders
and side-by-side ``AB`` images, CycleGAN's ``trainA``/``trainB``/``testA``/``testB``.

Each returns what it wrote (file path -> uint8 array), so tests compare what they read with it.
Sources of pix2pix pairs are label maps rendered in :data:`FAKE_PALETTE`, so their class ids
are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

FAKE_PALETTE = ((0, 0, 170), (255, 85, 0), (0, 170, 255))
"""The colour of classes 0, 1, 2 in the sources written by :func:`write_pix2pix_folders`."""


def _save(array: np.ndarray, path: Path) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def fake_pair(seed: int, size: tuple[int, int] = (20, 24)) -> tuple[np.ndarray, ...]:
    """``(source (H, W, 3), target (H, W, 3), labels (H, W))`` uint8: a random label map of
    :data:`FAKE_PALETTE`'s 3 classes (blocks of 4 x 4 px), rendered in its colours, and a
    random photo."""
    rng = np.random.default_rng(seed)
    h, w = size
    blocks = rng.integers(0, len(FAKE_PALETTE), (-(-h // 4), -(-w // 4)))
    labels = np.kron(blocks, np.ones((4, 4), np.int64))[:h, :w].astype(np.uint8)
    source = np.asarray(FAKE_PALETTE, np.uint8)[labels]
    return source, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), labels


def write_pix2pix_folders(
    root: Path,
    n: int = 3,
    *,
    split: str = "train",
    size: tuple[int, int] = (20, 24),
    labels: bool = False,
    b_suffix: str = ".png",
) -> dict[str, np.ndarray]:
    """``root/{split}/A/<k>.png`` (sources) and ``root/{split}/B/<k><b_suffix>`` (targets),
    k = 1..n, with ``root/{split}/labels/<k>.png`` (uint8 ids) when ``labels``."""
    written = {}
    for k in range(1, n + 1):
        source, target, ids = fake_pair(k + 100 * len(split), size)
        folder = Path(root) / split
        written[f"{split}/A/{k}.png"] = _save(source, folder / "A" / f"{k}.png")
        written[f"{split}/B/{k}{b_suffix}"] = _save(target, folder / "B" / f"{k}{b_suffix}")
        if labels:
            written[f"{split}/labels/{k}.png"] = _save(ids, folder / "labels" / f"{k}.png")
    return written


def write_aligned_images(
    root: Path, n: int = 3, *, split: str = "train", size: tuple[int, int] = (20, 24)
) -> dict[str, np.ndarray]:
    """``root/{split}/<k>.png``, k = 1..n: A (left half) and B (right half) side by side, as
    pix2pix's facades download holds them; returns ``{"<split>/<k>.png/A": ..., ".../B": ...}``."""
    written = {}
    for k in range(1, n + 1):
        source, target, _ = fake_pair(k + 100 * len(split), size)
        _save(np.concatenate([source, target], axis=1), Path(root) / split / f"{k}.png")
        written[f"{split}/{k}.png/A"], written[f"{split}/{k}.png/B"] = source, target
    return written


def write_cyclegan_folders(
    root: Path,
    n_a: int = 3,
    n_b: int = 5,
    *,
    val: bool = False,
    size: tuple[int, int] = (18, 22),
) -> dict[str, np.ndarray]:
    """``root/{train,test}{A,B}/<k>.png`` (and ``{val}{A,B}`` when ``val``): ``n_a`` random
    images of A and ``n_b`` of B in every split, A dark and B bright."""
    written = {}
    for split in ("train", "val", "test") if val else ("train", "test"):
        for domain, count, low in (("A", n_a, 0), ("B", n_b, 128)):
            for k in range(1, count + 1):
                rng = np.random.default_rng([len(split), ord(domain), k])
                image = rng.integers(low, low + 128, (*size, 3), dtype=np.uint8)
                name = f"{split}{domain}/{k}.png"
                written[name] = _save(image, Path(root) / name)
    return written


def write_image_folder(
    root: Path,
    n: int = 4,
    classes: Sequence[str] | None = None,
    *,
    split: str | None = None,
    size: tuple[int, int] = (12, 10),
) -> dict[str, np.ndarray]:
    """``n`` random RGB images per class (``<class>/<k>.png``), or ``n`` in all without
    classes (``<k>.png``, the last one gray), under ``root/{split}`` (``root`` itself when
    ``split`` is None)."""
    folder = Path(root) / split if split else Path(root)
    written = {}
    for c, name in enumerate(classes or [None]):
        for k in range(n):
            rng = np.random.default_rng([c, k, len(split or "")])
            gray = classes is None and k == n - 1
            image = rng.integers(0, 256, size if gray else (*size, 3), dtype=np.uint8)
            rel = f"{name}/{k}.png" if name else f"{k}.png"
            written[rel] = _save(image, folder / rel)
    return written

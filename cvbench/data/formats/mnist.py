"""MNIST and Fashion-MNIST from the official IDX files.

References: LeCun et al., http://yann.lecun.com/exdb/mnist/ (the IDX format is described
there); Xiao et al. 2017, "Fashion-MNIST" (same files and format, other images). An IDX
file is a big-endian header (magic ``0x000008NN``: unsigned bytes, NN dimensions, then
one uint32 per dimension) followed by the values in row-major order. cvbench never
downloads the files.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from cvbench.data.records import ArrayRecords, ClassificationRecords, training_split

SPLITS = ("train", "val", "test")
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VARIANTS = {  # variant -> (title, torchvision's folder, class names)
    "mnist": ("MNIST", "MNIST", tuple(str(d) for d in range(10))),
    "fashion_mnist": (
        "Fashion-MNIST",
        "FashionMNIST",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


def mnist(
    split: str,
    *,
    root: str,
    variant: str = "mnist",
    val_size: int | float = 5000,
    seed: int = 0,
) -> ClassificationRecords:
    """One split of MNIST or Fashion-MNIST.

    The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or with a ``.gz``
    suffix) are looked for in ``root/MNIST/raw/`` (``root/FashionMNIST/raw/`` for
    Fashion-MNIST; torchvision's layout), then directly in ``root/``. A split's images
    and labels come from the first of these folders that holds both; the raw file is
    preferred over the ``.gz`` one.

    "train" and "val" are disjoint parts of the official 60,000 training images (see
    :func:`~cvbench.data.records.training_split`); "test" is the official 10,000 (t10k).

    Args:
        split: "train", "val" or "test".
        root: folder holding the files (see above).
        variant: "mnist" or "fashion_mnist".
        val_size: images (int) or share (float) of the training set held out as val;
            0 keeps all of it in train and leaves no val split.
        seed: seed of the train/val permutation.

    Returns:
        records with images (N, 28, 28) uint8 gray and targets (N,) in [0, 10).

    Raises:
        FileNotFoundError: the files are in none of the folders looked at.
        ValueError: unknown split or variant, a malformed IDX file, or "val" with
            ``val_size=0``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"mnist variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if split not in SPLITS:
        raise ValueError(f"{variant} has splits {SPLITS}, got {split!r}")
    title, folder, classes = VARIANTS[variant]
    images_path, labels_path = find_files(
        Path(root).expanduser(), FILES["test" if split == "test" else "train"], title, folder
    )
    images = read_idx(images_path, IMAGES_MAGIC)
    targets = read_idx(labels_path, LABELS_MAGIC).astype(np.int64)
    if len(images) != len(targets):
        raise ValueError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(targets)} labels"
        )
    records = ArrayRecords(images, targets, classes, lambda i: f"{images_path}, record {i}")
    if split == "test":
        return records
    return training_split(records, split, val_size=val_size, seed=seed, title=title)


def find_files(root: Path, names: tuple[str, ...], title: str, folder: str) -> list[Path]:
    """Paths of ``names`` in the first candidate folder holding all of them (raw or .gz)."""
    folders = (root / folder / "raw", root)
    for candidate in folders:
        found = [_existing(candidate / name) for name in names]
        if all(found):
            return found
    looked_at = " and ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"{title} not found: no {' and '.join(names)} (raw or .gz) in {looked_at}. Expected "
        f"the official IDX files {', '.join(n for pair in FILES.values() for n in pair)} "
        f"(gzipped or not) in data.records.root/{folder}/raw/ (torchvision's layout) or "
        f"directly in data.records.root={root}. cvbench never downloads data."
    )


def _existing(path: Path) -> Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if gz.is_file() else None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file, gzipped if its name ends in ``.gz``.

    Args:
        path: the file.
        magic: expected magic number, ``0x00000803`` (images) or ``0x00000801`` (labels).

    Returns:
        uint8 array with the dimensions of the header, e.g. (N, 28, 28) or (N,).

    Raises:
        ValueError: the magic number is wrong or the file is truncated or too long.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: cannot read it: {err}") from err
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes, too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise ValueError(
            f"{path}: IDX magic number 0x{found:08X}, expected 0x{magic:08X} "
            f"(unsigned bytes, {magic & 0xFF} dimension(s)); is it the right file?"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{path}: {problem}: {len(data)} bytes, the header {dims} needs {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()

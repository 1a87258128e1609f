"""Writers of tiny datasets in the real on-disk formats (CIFAR pickles, MNIST IDX, image folders).

Shared by the tests; nothing here is a stand-in: every file is what the official readers read.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 8) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/ with five training batches, a test batch and batches.meta."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data = rng.integers(0, 256, (5 * per_batch + n_test, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, len(data)).tolist()
    for k in range(5):
        rows = slice(k * per_batch, (k + 1) * per_batch)
        _dump(
            folder / f"data_batch_{k + 1}",
            {
                b"batch_label": f"training batch {k + 1} of 5".encode(),
                b"labels": labels[rows],
                b"data": data[rows],
                b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
            },
        )
    _dump(
        folder / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": labels[5 * per_batch :],
            b"data": data[5 * per_batch :],
            b"filenames": [f"test_{i}.png".encode() for i in range(n_test)],
        },
    )
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(folder / "batches.meta", {b"num_cases_per_batch": per_batch, b"label_names": names})
    n = 5 * per_batch
    return {
        "train_data": data[:n],
        "train_labels": np.array(labels[:n]),
        "test_data": data[n:],
        "test_labels": np.array(labels[n:]),
    }


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 6) -> dict[str, np.ndarray]:
    """cifar-100-python/ with train, test and meta (fine and coarse labels)."""
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n)
        _dump(
            folder / name,
            {
                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
                b"batch_label": f"{name}ing batch 1 of 1".encode(),
                b"fine_labels": fine.tolist(),
                b"coarse_labels": (fine // 5).tolist(),
                b"data": data,
            },
        )
        out[f"{name}_data"], out[f"{name}_labels"] = data, fine
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)],
        },
    )
    return out


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzipped when ``path`` ends in .gz)."""
    header = struct.pack(f">I{array.ndim}I", 0x800 | array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_mnist(folder: Path, *, gz: bool, n_train: int = 24, n_test: int = 8) -> dict:
    """The four official MNIST IDX files in ``folder``."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


def write_image(path: Path, mode: str, size: tuple[int, int] = (40, 30), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], *channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_imagefolder(root: Path) -> None:
    """train/{cat,dog,zebra}, val/{cat,dog}, test/{cat,dog}, with a few traps."""
    write_image(root / "train/cat/b.png", "RGB", seed=1)
    write_image(root / "train/cat/a.jpg", "RGB", seed=2)
    write_image(root / "train/cat/c.PNG", "L", seed=3)
    write_image(root / "train/dog/x.png", "RGBA", seed=4)
    write_image(root / "train/dog/.hidden.png", "RGB", seed=5)
    write_image(root / "train/zebra/z.jpeg", "RGB", seed=6)
    (root / "train/dog/notes.txt").write_text("not an image")
    (root / "train/.cache").mkdir(exist_ok=True)
    for split in ("val", "test"):
        write_image(root / f"{split}/cat/1.png", "RGB", seed=7)
        write_image(root / f"{split}/dog/2.jpg", "RGB", seed=8)
        write_image(root / f"{split}/dog/3.png", "L", seed=9)

"""CIFAR-10 and CIFAR-100 from the official python pickles (Krizhevsky, 2009).

Reference: https://www.cs.toronto.edu/~kriz/cifar.html, "python version". Each pickle is
a dict with bytes keys (``b"data"``: (N, 3072) uint8, the 1024 red, then green, then blue
values of a 32x32 image in row-major order; ``b"labels"`` or ``b"fine_labels"``).
cvbench never downloads them.

The files are pickles, and an ordinary unpickler runs whatever a file names (a poisoned
``batches.meta`` could call ``os.system``). They are read with :class:`CifarUnpickler`,
which builds only what the official files hold: dicts, lists, bytes, numbers and NumPy
arrays; any other global is refused with the file's name, before anything is called.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvbench.data.records import ArrayRecords, ClassificationRecords, training_split

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its files and which keys hold what."""

    title: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    labels_key: str
    names_key: str
    archive: str


LAYOUTS = {
    "cifar10": CifarLayout(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{k}" for k in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        labels_key="labels",
        names_key="label_names",
        archive="cifar-10-python.tar.gz",
    ),
    "cifar100": CifarLayout(
        title="CIFAR-100",
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        labels_key="fine_labels",
        names_key="fine_label_names",
        archive="cifar-100-python.tar.gz",
    ),
}


def cifar(
    split: str,
    *,
    root: str,
    variant: str = "cifar10",
    val_size: int | float = 5000,
    seed: int = 0,
) -> ClassificationRecords:
    """One split of CIFAR-10 or CIFAR-100 (fine labels).

    "train" and "val" are disjoint parts of the official training set (see
    :func:`~cvbench.data.records.training_split`); "test" is the official test set.

    Args:
        split: "train", "val" or "test".
        root: folder holding ``cifar-10-batches-py/`` or ``cifar-100-python/``.
        variant: "cifar10" or "cifar100".
        val_size: records (int) or share (float) of the training set held out as val;
            0 keeps all of it in train and leaves no val split.
        seed: seed of the train/val permutation.

    Returns:
        records with images (N, 32, 32, 3) uint8 RGB and targets (N,) in [0, 10) or [0, 100).

    Raises:
        FileNotFoundError: the files are not under ``root``.
        ValueError: unknown split or variant, a malformed file, or "val" with ``val_size=0``.
    """
    if variant not in LAYOUTS:
        raise ValueError(f"cifar variant must be one of {sorted(LAYOUTS)}, got {variant!r}")
    if split not in SPLITS:
        raise ValueError(f"{variant} has splits {SPLITS}, got {split!r}")
    layout = LAYOUTS[variant]
    folder = Path(root).expanduser() / layout.folder
    names = layout.train_files if split in ("train", "val") else (layout.test_file,)
    check_files(layout, folder, (*names, layout.meta_file))

    meta = read_pickle(folder / layout.meta_file)
    classes = [_text(name) for name in _field(meta, layout.names_key, folder / layout.meta_file)]
    images, targets, starts = [], [], [0]
    for name in names:
        batch_images, batch_targets = read_batch(folder / name, layout.labels_key)
        images.append(batch_images)
        targets.append(batch_targets)
        starts.append(starts[-1] + len(batch_targets))
    paths = [folder / name for name in names]
    offsets = np.asarray(starts[:-1])

    def source(i: int) -> str:
        k = int(np.searchsorted(offsets, i, side="right")) - 1
        return f"{paths[k]}, record {i - int(offsets[k])}"

    records = ArrayRecords(np.concatenate(images), np.concatenate(targets), classes, source)
    if split == "test":
        return records
    return training_split(records, split, val_size=val_size, seed=seed, title=layout.title)


def check_files(layout: CifarLayout, folder: Path, names: tuple[str, ...]) -> None:
    """Raise FileNotFoundError naming the missing files and the expected layout."""
    if not folder.is_dir():
        missing = [f"the folder {folder}"]
    else:
        missing = [str(folder / name) for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{layout.title} not found: missing {', '.join(missing)}. Expected "
            f"{layout.folder}/{{{', '.join(layout.train_files)}, {layout.test_file}, "
            f"{layout.meta_file}}}, the official python version of {layout.title} "
            f"({layout.archive} extracted into data.records.root={folder.parent}). "
            f"cvbench never downloads data."
        )


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as Python 3 writes bytes into a protocol-2 pickle (re-saved copies),
    for the latin-1 codec only."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}, expected 'latin1'")
    return codecs.encode(text, "latin1")


# The globals an official CIFAR pickle names (Python 2, NumPy 1: ``numpy.core``) or a copy
# re-saved by Python 3 and NumPy 2 (``numpy._core``, ``_codecs.encode``), each mapped to the
# object itself, so nothing is imported by name. ``_reconstruct`` is what ndarray.__reduce__
# gives on this NumPy.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
CIFAR_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
}


class RefusedGlobal(ValueError):
    """A pickle names a class or function that no CIFAR file holds."""


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only :data:`CIFAR_GLOBALS` (the restricted ``find_class`` of
    https://docs.python.org/3/library/pickle.html#restricting-globals); ``path`` is named
    in the error."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        found = CIFAR_GLOBALS.get((module, name))
        if found is None:
            raise RefusedGlobal(
                f"{self.path} is not an official CIFAR pickle: it names {module}.{name}, "
                f"which a CIFAR file never holds; refusing to unpickle it"
            )
        return found


def read_pickle(path: Path) -> dict:
    """Load one official pickle (bytes keys, as written by Python 2), building nothing but
    dicts, lists, bytes, numbers and NumPy arrays.

    Raises:
        ValueError: the file is malformed, or names any other class or function.
    """
    try:
        with open(path, "rb") as f:
            entry = CifarUnpickler(f, path).load()
    except RefusedGlobal:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a readable CIFAR pickle: {err}") from err
    if not isinstance(entry, dict):
        raise ValueError(f"{path} holds a {type(entry).__name__}, expected a CIFAR dict")
    return entry


def read_batch(path: Path, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one CIFAR pickle."""
    entry = read_pickle(path)
    data = np.asarray(_field(entry, "data", path))
    labels = np.asarray(_field(entry, labels_key, path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _field(entry: dict, key: str, path: Path) -> Any:
    """``entry[b"key"]`` (official files), or ``entry["key"]`` for a re-saved copy."""
    for candidate in (key.encode(), key):
        if candidate in entry:
            return entry[candidate]
    raise ValueError(f"{path} has no key {key!r}; its keys are {sorted(map(str, entry))}")


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)

"""The LMDB layout of clovaai's deep-text-recognition-benchmark (Baek et al., ICCV 2019), which
PARSeq, MMOCR and most scene-text recognition papers ship their training (MJSynth, SynthText)
and evaluation sets (IIIT5K, SVT, IC13, IC15, SVTP, CUTE80) in.

One LMDB environment (a folder with ``data.mdb``) per split, holding::

    num-samples       the number of samples N, an ASCII integer
    image-000000001   the first image's encoded bytes (PNG or JPEG), keys 1-based, 9 digits
    label-000000001   its transcription, UTF-8

It is opened read-only without a lock (the files may sit on a read-only disk), once per process
(an LMDB environment must not cross a ``fork``: DataLoader workers open their own). Images are
decoded with PIL from the bytes; nothing is unpickled. Every label is read when the split is
opened (the datamodule checks each against the charset); images are read on ``load``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from cvbench.data.formats.text_lines import decode_image

NUM_SAMPLES = b"num-samples"
IMAGE_KEY = "image-{:09d}"
LABEL_KEY = "label-{:09d}"


def _open(path: Path) -> lmdb.Environment:
    if not (path / "data.mdb").is_file():
        raise FileNotFoundError(
            f"{path}: no LMDB here (expected a folder holding data.mdb, as "
            "deep-text-recognition-benchmark's create_lmdb_dataset.py writes)"
        )
    try:
        return lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=64
        )
    except lmdb.Error as err:
        raise ValueError(f"{path}: cannot open the LMDB ({err})") from None


def _num_samples(path: Path, txn: Any) -> int:
    raw = txn.get(NUM_SAMPLES)
    if raw is None:
        raise ValueError(
            f"{path}: no key 'num-samples'; expected deep-text-recognition-benchmark's layout "
            "(num-samples, image-%09d, label-%09d)"
        )
    try:
        return int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(
            f"{path}: key 'num-samples' holds {bytes(raw)[:20]!r}; expected an ASCII integer"
        ) from None


def _labels(path: Path, txn: Any, count: int) -> list[str]:
    labels = []
    for k in range(1, count + 1):
        key = LABEL_KEY.format(k)
        raw = txn.get(key.encode())
        if raw is None:
            raise ValueError(f"{path}: key '{key}' is missing (num-samples is {count})")
        try:
            label = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{path}: key '{key}': the label is not UTF-8 (byte {raw[err.start]:#04x} at "
                f"{err.start})"
            ) from None
        if not label.strip():
            raise ValueError(f"{path}: key '{key}': empty label; expected a transcription")
        labels.append(label)
    return labels


class LmdbText:
    """One LMDB of word images (:class:`~cvbench.data.records.TextRecords`).

    Args:
        path: the LMDB folder.

    Raises:
        FileNotFoundError: no ``data.mdb`` in ``path``.
        ValueError: no or a malformed ``num-samples``, a missing or non-UTF-8 or empty label;
            one line naming the folder and the key.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        env = _open(self.path)
        try:
            with env.begin(write=False) as txn:
                count = _num_samples(self.path, txn)
                self.labels = _labels(self.path, txn, count)
        finally:
            env.close()
        self._env: lmdb.Environment | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict[str, Any]:  # workers (spawn) open their own environment
        return {**self.__dict__, "_env": None, "_pid": -1}

    def _environment(self) -> lmdb.Environment:
        if self._env is not None and self._pid != os.getpid():
            # A forked worker holds the parent's environment, which it must not use; py-lmdb
            # refuses a second open of the same files in a process until it is closed (the
            # child's own mapping: without locks, the parent's is untouched).
            self._env.close()
            self._env = None
        if self._env is None:
            self._env, self._pid = _open(self.path), os.getpid()
        return self._env

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` (key ``image-<index + 1>``) as (H, W, 3) uint8 RGB.

        Raises:
            ValueError: the key is missing or its bytes are no image, naming folder and key.
        """
        key = IMAGE_KEY.format(index + 1)
        with self._environment().begin(write=False) as txn:
            data = txn.get(key.encode())
            if data is None:
                raise ValueError(
                    f"{self.path}: key '{key}' is missing (num-samples is {len(self)})"
                )
            data = bytes(data)
        return decode_image(data, f"{self.path}: key '{key}'")

    def text(self, index: int) -> str:
        return self.labels[index]

    def name(self, index: int) -> str:
        """The image's key, ``image-000000001`` for index 0."""
        return IMAGE_KEY.format(index + 1)

    def source(self, index: int) -> str:
        return f"{self.path} key '{self.name(index)}'"


def lmdb_text(split: str, *, root: str) -> LmdbText:
    """The LMDB ``<root>/<split>`` (``split`` may be a relative path, as the datamodule's
    ``split_names`` maps ``test`` to ``evaluation/IIIT5k_3000``)."""
    return LmdbText(Path(root).expanduser() / split)

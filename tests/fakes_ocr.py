"""Writers of tiny text-recognition datasets in the real on-disk layouts: a folder of word crops
with a ``gt.txt`` of ``image<TAB>transcription`` lines, and the LMDB of clovaai's
deep-text-recognition-benchmark (``num-samples``, ``image-%09d``, ``label-%09d``, 1-based).

Written here by hand (bytes and ``lmdb`` puts), not with cvbench's own writers, so the readers
are tested against the layout itself. Each returns what it wrote (name -> (image, text)).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import lmdb
import numpy as np
from PIL import Image

FAKE_TEXTS = ("Hello", "w0rld", "cvbench", "42", "OCR", "a")
"""Labels the writers cycle through: capitals (read lowercased by the YAMLs that say so),
digits, one character."""


def fake_word(seed: int, height: int = 20, width: int = 40, channels: int = 3) -> np.ndarray:
    """A random (height, width[, 3]) uint8 crop."""
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def encode(image: np.ndarray, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=kind)
    return buffer.getvalue()


def _samples(n: int, split: str, texts: Sequence[str] | None) -> list[tuple[np.ndarray, str]]:
    """n crops of growing widths (so batches pad) and their labels."""
    texts = (
        list(texts) if texts is not None else [FAKE_TEXTS[k % len(FAKE_TEXTS)] for k in range(n)]
    )
    return [
        (fake_word(k + 100 * len(split), width=24 + 14 * k, channels=3 - 2 * (k % 2)), texts[k])
        for k in range(n)
    ]


def write_text_lines(
    root: Path, n: int = 3, *, split: str = "train", texts: Sequence[str] | None = None
) -> dict[str, tuple[np.ndarray, str]]:
    """``root/{split}/gt.txt`` listing ``img/word_<k>.png`` (k = 1..n, RGB and gray PNGs of
    growing widths) with ``texts`` (default :data:`FAKE_TEXTS`)."""
    folder = Path(root) / split
    (folder / "img").mkdir(parents=True, exist_ok=True)
    written, lines = {}, []
    for k, (image, text) in enumerate(_samples(n, split, texts), start=1):
        name = f"img/word_{k}.png"
        Image.fromarray(image).save(folder / name)
        lines.append(f"{name}\t{text}\n")
        written[name] = (image, text)
    (folder / "gt.txt").write_bytes("".join(lines).encode("utf-8"))
    return written


def write_lmdb_entries(path: Path, entries: Mapping[bytes, bytes]) -> None:
    """An LMDB at ``path`` (a folder) holding exactly ``entries``."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    env.close()


def lmdb_entries(
    samples: Sequence[tuple[np.ndarray, str]], kind: str = "PNG"
) -> dict[bytes, bytes]:
    """deep-text-recognition-benchmark's keys for ``samples``: ``num-samples``, and for the
    k-th (1-based) ``image-%09d`` (encoded ``kind`` bytes) and ``label-%09d`` (UTF-8)."""
    entries = {b"num-samples": str(len(samples)).encode()}
    for k, (image, text) in enumerate(samples, start=1):
        entries[b"image-%09d" % k] = encode(image, kind)
        entries[b"label-%09d" % k] = text.encode("utf-8")
    return entries


def write_lmdb(
    root: Path,
    n: int = 3,
    *,
    split: str = "train",
    texts: Sequence[str] | None = None,
    kind: str = "PNG",
) -> dict[str, tuple[np.ndarray, str]]:
    """The LMDB ``root/{split}`` of n crops (RGB and gray, growing widths) encoded as ``kind``
    (PNG or JPEG), labelled ``texts`` (default :data:`FAKE_TEXTS`); returns key -> (image,
    text)."""
    samples = _samples(n, split, texts)
    write_lmdb_entries(Path(root) / split, lmdb_entries(samples, kind))
    return {f"image-{k:09d}": sample for k, sample in enumerate(samples, start=1)}

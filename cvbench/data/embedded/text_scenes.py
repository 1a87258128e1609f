"""Text scenes: words rendered onto crops of real photographs, an embedded text-detection set in
the ICDAR 2015 layout.

In the manner of SynthText (Gupta et al., 2016), much simplified: no depth or region
segmentation, words are pasted flat. Each image is a random crop of one of the embedded
photographs (:data:`cvbench.data.embedded.photos.SOURCES`), resized to ``image_size``, flipped
and colour-shifted, so backgrounds are many and varied; 1 to ``max_words`` words are drawn on
it (:func:`cvbench.data.embedded.text_render.render_words`: matplotlib's fonts, rotated by up to
``max_angle`` degrees, contrasting with the background, never overlapping), each annotated with
the 4 corners of its rotated box, clockwise from its top-left corner, and its transcription;
about ``dont_care_fraction`` of the words are drawn illegible (tiny, blurred or faint) and
annotated ``###``, "don't care", as ICDAR 2015 does for text too small or blurred to read.

Nothing is downloaded: the first call generates all splits into
``root/ocr_scenes/<hash of the parameters>/`` (``{split}_images/img_N.jpg`` and
``{split}_gt/gt_img_N.txt``, UTF-8 with a byte-order mark and ``\\r\\n`` line ends as the
official files, integer coordinates), atomically; later calls, in any process, read it back with
:class:`~cvbench.data.formats.icdar2015_folder.Icdar2015Folder`. The same parameters give the
same bytes. Every split draws its backgrounds from all the photos, as crops of their own.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from PIL import Image

from cvbench.data.embedded.photos import SOURCES
from cvbench.data.embedded.shapes import write_atomically
from cvbench.data.embedded.text_render import render_words
from cvbench.data.formats.icdar2015 import gt_name
from cvbench.data.formats.icdar2015_folder import Icdar2015Folder
from cvbench.data.records import TextDetectionRecords

SPLITS = ("train", "val", "test")
VERSION = 1  # bump when the output changes (here or in text_render): the folder name follows
NUM_IMAGES = MappingProxyType({"train": 600, "val": 50, "test": 100})
JPEG_QUALITY = 92


def text_scenes(
    split: str,
    *,
    root: str,
    num_images: Mapping[str, int] = NUM_IMAGES,
    image_size: int = 320,
    max_words: int = 6,
    max_angle: float = 20.0,
    dont_care_fraction: float = 0.1,
    seed: int = 0,
) -> TextDetectionRecords:
    """One split of the text-scenes set, generated on first use (see the module docstring).

    Args:
        split: "train", "val" or "test" (a key of ``num_images``).
        root: folder that holds (or will hold) ``ocr_scenes/<hash>/``.
        num_images: images per split.
        image_size: side of the square RGB images, pixels (>= 64).
        max_words: most words in an image (1 to ``max_words``, fewer when there is no room).
        max_angle: most rotation of a word, degrees (0-45).
        dont_care_fraction: share of the words drawn illegible and annotated ``###``.
        seed: seed of everything.

    Returns:
        the split read back as an :class:`~cvbench.data.formats.icdar2015_folder.Icdar2015Folder`.
    """
    params = {
        "version": VERSION,
        "num_images": {k: int(v) for k, v in sorted(dict(num_images).items())},
        "image_size": int(image_size),
        "max_words": int(max_words),
        "max_angle": float(max_angle),
        "dont_care_fraction": float(dont_care_fraction),
        "seed": int(seed),
    }
    _check(split, params)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root).expanduser() / "ocr_scenes" / digest
    if not folder.is_dir():
        write_atomically(folder, functools.partial(_write_splits, params=params))
    return Icdar2015Folder(folder / f"{split}_images", folder / f"{split}_gt")


def _check(split: str, p: dict) -> None:
    if split not in p["num_images"]:
        raise ValueError(f"text_scenes has splits {sorted(p['num_images'])}, got {split!r}")
    if any(s not in SPLITS or n < 1 for s, n in p["num_images"].items()):
        raise ValueError(f"num_images={p['num_images']}: expected counts >= 1 for {SPLITS}")
    if p["image_size"] < 64:
        raise ValueError(f"image_size={p['image_size']}: expected at least 64 pixels")
    if p["max_words"] < 1:
        raise ValueError(f"max_words={p['max_words']}: expected at least 1")
    if not 0 <= p["max_angle"] <= 45:
        raise ValueError(f"max_angle={p['max_angle']}: expected degrees in [0, 45]")
    if not 0 <= p["dont_care_fraction"] <= 1:
        raise ValueError(f"dont_care_fraction={p['dont_care_fraction']}: expected [0, 1]")


def _write_splits(tmp: Path, params: dict) -> None:
    photos = [np.asarray(SOURCES[name]())[:, :, :3] for name in sorted(SOURCES)]
    for split_index, split in enumerate(SPLITS):
        if split not in params["num_images"]:
            continue
        images, gts = tmp / f"{split}_images", tmp / f"{split}_gt"
        images.mkdir()
        gts.mkdir()
        with ThreadPoolExecutor(2) as pool:  # JPEG encoding releases the GIL
            saved = []
            for k in range(params["num_images"][split]):
                rng = np.random.default_rng([params["seed"], split_index, k])
                pixels, words = scene(rng, photos, params)
                stem = f"img_{k + 1}"
                image = Image.fromarray(pixels)
                saved.append(pool.submit(image.save, images / f"{stem}.jpg", quality=JPEG_QUALITY))
                (gts / gt_name(stem)).write_bytes(codecs.BOM_UTF8 + gt_text(words).encode())
            for future in saved:
                future.result()


def gt_text(words: Sequence[tuple[np.ndarray, str]]) -> str:
    """ICDAR 2015 ground-truth lines (``\\r\\n`` ends) of ``(quad (4, 2), transcription)``
    pairs, coordinates rounded to integers.

    >>> gt_text([(np.array([[1, 2], [9, 2], [9, 6.6], [1, 6]]), "1,250")])
    '1,2,9,2,9,7,1,6,1,250\\r\\n'
    """
    lines = []
    for quad, text in words:
        coords = ",".join(str(int(v)) for v in np.rint(np.asarray(quad)).ravel())
        lines.append(f"{coords},{text}\r\n")
    return "".join(lines)


def scene(
    rng: np.random.Generator, photos: Sequence[np.ndarray], params: Mapping[str, object]
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """One image: a background from ``photos``, 1 to ``max_words`` words, light noise.

    Returns:
        (size, size, 3) uint8 RGB and the words' ``(quad (4, 2) float xy, transcription)``.
    """
    size = int(params["image_size"])
    image = background(rng, photos, size)
    count = int(rng.integers(1, int(params["max_words"]) + 1))
    image, words = render_words(
        rng,
        image,
        count,
        max_angle=float(params["max_angle"]),
        dont_care_fraction=float(params["dont_care_fraction"]),
    )
    image += rng.normal(0.0, rng.uniform(0.0, 3.0), image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), words


def background(rng: np.random.Generator, photos: Sequence[np.ndarray], size: int) -> np.ndarray:
    """A random crop of a random photo (30-100% of its short side, aspect 3:4 to 4:3), resized
    to (size, size, 3) float32 in [0, 255], flipped, colour-shifted (per-channel gain and offset,
    sometimes channels swapped or gray)."""
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = rng.uniform(0.3, 1.0) * min(h, w)
    stretch = math.exp(rng.uniform(math.log(0.75), math.log(4 / 3)))
    ch, cw = min(h, round(side * math.sqrt(stretch))), min(w, round(side / math.sqrt(stretch)))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[top : top + ch, left : left + cw]
    shrink = cv2.INTER_AREA if min(ch, cw) > size else cv2.INTER_LINEAR
    image = cv2.resize(crop, (size, size), interpolation=shrink).astype(np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.2:
        image = image[::-1]
    if rng.random() < 0.25:
        image = image[:, :, rng.permutation(3)]
    if rng.random() < 0.1:
        image = np.repeat(image.mean(2, keepdims=True), 3, axis=2)
    image = image * rng.uniform(0.75, 1.25, 3).astype(np.float32) + rng.uniform(-20, 20, 3)
    return np.ascontiguousarray(np.clip(image, 0, 255), dtype=np.float32)

"""Real photographs shipped inside scikit-image and scikit-learn, the embedded data of image
restoration (super-resolution, colorization, inpainting): nothing is downloaded.

The chosen photos are written once as PNG files to ``<root>/photos/`` and read back as an
image folder, so training sees real files like any other dataset. The split is fixed by the
lists in ``conf/data/restoration/photos.yaml``, not drawn at random.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_image

from cvbench.data.formats.images import ImageFiles
from cvbench.data.records import ImageRecords


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    return lambda: load_sample_image(name)


# Every color photograph that the two packages hold on disk (others are fetched with pooch).
SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,  # 512x512
    "chelsea": skimage.data.chelsea,  # 300x451, a cat
    "coffee": skimage.data.coffee,  # 400x600
    "rocket": skimage.data.rocket,  # 427x640
    "immunohistochemistry": skimage.data.immunohistochemistry,  # 512x512, a microscope slide
    "hubble_deep_field": skimage.data.hubble_deep_field,  # 872x1000
    "retina": skimage.data.retina,  # 1411x1411
    "china": _sklearn("china.jpg"),  # 427x640, a temple
    "flower": _sklearn("flower.jpg"),  # 427x640
}


def write_png(
    name: str, folder: Path, sources: dict[str, Callable[[], np.ndarray]], what: str, key: str
) -> Path:
    """``folder/<name>.png`` holding ``sources[name]()`` as RGB (alpha dropped), written
    atomically if missing; an unknown ``name`` is an error naming ``what`` and the config
    ``key``."""
    if name not in sources:
        raise ValueError(
            f"{what}: unknown {what[:-1]} {name!r} (in {key}); the embedded ones are "
            f"{sorted(sources)}"
        )
    path = folder / f"{name}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
        os.close(fd)
        Image.fromarray(np.asarray(sources[name]())[:, :, :3]).save(tmp, format="PNG")
        os.replace(tmp, path)  # a process that reads it meanwhile sees no partial file
    return path


def split_names(
    what: str, split: str, train: Sequence[str], val: Sequence[str], test: Sequence[str]
) -> Sequence[str]:
    """The names listed for ``split`` ("train", "val" or "test") of an embedded set."""
    names = {"train": train, "val": val, "test": test}
    if split not in names:
        raise ValueError(f"{what} has splits {sorted(names)}, got {split!r}")
    return names[split]


def write_photo(name: str, folder: Path) -> Path:
    """``folder/<name>.png`` holding photo ``name``, written atomically if missing."""
    return write_png(name, folder, SOURCES, "photos", "data.records")


def photos(
    split: str,
    *,
    root: str,
    train: Sequence[str],
    val: Sequence[str],
    test: Sequence[str],
) -> ImageRecords:
    """The photos of one split, as PNG files under ``root/photos``.

    Args:
        split: "train", "val" or "test".
        root: the data folder (``paths.data_dir``).
        train, val, test: names of :data:`SOURCES` in each split.

    Returns:
        (H, W, 3) uint8 RGB images, named ``<name>.png``.
    """
    folder = Path(root) / "photos"
    names = split_names("photos", split, train, val, test)
    return ImageFiles([write_photo(n, folder) for n in names], folder)

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


def write_photo(name: str, folder: Path) -> Path:
    """``folder/<name>.png`` holding photo ``name``, written atomically if missing."""
    if name not in SOURCES:
        raise ValueError(
            f"photos: unknown photo {name!r} (in data.records); the embedded ones are "
            f"{sorted(SOURCES)}"
        )
    path = folder / f"{name}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
        os.close(fd)
        Image.fromarray(np.asarray(SOURCES[name]())[:, :, :3]).save(tmp, format="PNG")
        os.replace(tmp, path)  # a process that reads it meanwhile sees no partial file
    return path


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
    names = {"train": train, "val": val, "test": test}
    if split not in names:
        raise ValueError(f"photos has splits {sorted(names)}, got {split!r}")
    folder = Path(root) / "photos"
    return ImageFiles([write_photo(n, folder) for n in names[split]], folder)

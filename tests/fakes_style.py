"""Writers of tiny style-transfer style images in the layout ``data=style/image_folder`` reads:
a folder of colour images (recursive) and a single image file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_style_folder(root: Path) -> None:
    """``root/train/wave.png`` (30 x 50) and ``root/train/sub/mosaic.jpg`` (40 x 36), a
    training folder of two styles, and ``root/test/starry.jpg`` (28 x 28), one test style
    file: random RGB images with a different mean colour each."""
    rng = np.random.default_rng(14)
    for name, size, tint in (
        ("train/wave.png", (30, 50), (40, 90, 200)),
        ("train/sub/mosaic.jpg", (40, 36), (200, 120, 30)),
        ("test/starry.jpg", (28, 28), (30, 40, 120)),
    ):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(-40, 41, (*size, 3))
        Image.fromarray(np.clip(noise + np.array(tint), 0, 255).astype(np.uint8)).save(path)

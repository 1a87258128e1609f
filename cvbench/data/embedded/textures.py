"""Style images shipped inside scikit-image, the embedded styles of style transfer: nothing is
downloaded.

scikit-image's textures ``grass``, ``gravel`` and ``brick`` are gray, and a gray style would
make every output gray (style losses match colour statistics too), so each is tinted by one
fixed matplotlib colormap, chosen for a natural colour: grass ``YlGn_r`` (dark green shadows,
yellow-green blades), gravel ``copper`` (brown stones), brick ``OrRd_r`` (red bricks, pale
mortar). ``hubble_deep_field`` and ``colorwheel`` are colour already, and so are the embedded
photos (``cvbench.data.embedded.photos``), styles as ``photo_<name>``. Each is written once
as an RGB PNG to ``<root>/textures/<name>.png`` and read back as style image files
(:class:`~cvbench.data.formats.style_images.StyleImages`), so training sees real files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import skimage.data

from cvbench.data.embedded.photos import SOURCES as PHOTOS
from cvbench.data.embedded.photos import split_names, write_png
from cvbench.data.formats.style_images import StyleImages
from cvbench.data.records import ImageRecords


def _tinted(gray: Callable[[], np.ndarray], colormap: str) -> Callable[[], np.ndarray]:
    """A gray uint8 texture mapped through ``colormap``: (H, W, 3) uint8."""

    def make() -> np.ndarray:
        rgba = matplotlib.colormaps[colormap](np.asarray(gray(), dtype=np.float64) / 255.0)
        return np.round(rgba[:, :, :3] * 255.0).astype(np.uint8)

    return make


SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "grass": _tinted(skimage.data.grass, "YlGn_r"),  # 512x512
    "gravel": _tinted(skimage.data.gravel, "copper"),  # 512x512
    "brick": _tinted(skimage.data.brick, "OrRd_r"),  # 512x512
    "hubble_deep_field": skimage.data.hubble_deep_field,  # 872x1000, galaxies
    "colorwheel": skimage.data.colorwheel,  # 370x371
    # The embedded photos serve as styles too: colours and textures of many kinds, which an
    # arbitrary-style network (AdaIN) needs to meet unseen styles.
    **{f"photo_{name}": source for name, source in PHOTOS.items()},
}


def write_texture(name: str, folder: Path) -> Path:
    """``folder/<name>.png`` holding texture ``name`` as RGB, written atomically if missing."""
    return write_png(name, folder, SOURCES, "textures", "data.styles")


def textures(
    split: str,
    *,
    root: str,
    train: Sequence[str],
    val: Sequence[str],
    test: Sequence[str],
) -> ImageRecords:
    """The style textures of one split, as RGB PNG files under ``root/textures``.

    Args:
        split: "train", "val" or "test".
        root: the data folder (``paths.data_dir``).
        train, val, test: names of :data:`SOURCES` in each split.

    Returns:
        (H, W, 3) uint8 RGB images, named ``<name>.png``.
    """
    folder = Path(root) / "textures"
    names = split_names("textures", split, train, val, test)
    return StyleImages([write_texture(n, folder) for n in names], folder)

"""pix2pix's paired image layouts (Isola et al., 2017; the datasets of
https://github.com/phillipi/pix2pix and pytorch-CycleGAN-and-pix2pix):

- ``layout: folders``: ``root/{split}/A/<name>.png`` and ``root/{split}/B/<name>.jpg``, the pair
  matched by file stem (the extensions may differ); optionally ``root/{split}/labels/<name>.png``
  holding the class ids of the pair (uint8, 255 = unknown), as cvbench's embedded shapes have;
- ``layout: aligned``: ``root/{split}/<name>.jpg`` each holding A (left half) and B (right
  half) side by side, as the facades, maps and cityscapes downloads have them.

``direction`` says which side is the source (the network's input): "AtoB" or "BtoA".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.records import PairedRecords

LAYOUTS = ("folders", "aligned")
DIRECTIONS = ("AtoB", "BtoA")
UNKNOWN_LABEL = 255  # stored value of a label-map pixel without a class
SHOWN = 5  # unmatched names listed in an error


class PairedImages:
    """Aligned image pairs decoded on load: ``load_input`` the source, ``load`` the target.

    Args:
        a_paths: the A image (a side-by-side AB image for the aligned layout) of each pair.
        b_paths: the B image of each pair; None for the aligned layout.
        root: the folder the names are relative to.
        direction: "AtoB" (source A, target B) or "BtoA".
        label_paths: the label map of each pair (uint8 ids, 255 unknown), or None.
    """

    def __init__(
        self,
        a_paths: Sequence[Path],
        b_paths: Sequence[Path] | None,
        *,
        root: Path,
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        label_paths: Sequence[Path] | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.a_paths = [Path(p) for p in a_paths]
        self.b_paths = None if b_paths is None else [Path(p) for p in b_paths]
        self.label_paths = None if label_paths is None else [Path(p) for p in label_paths]
        self.root = Path(root)
        self.direction = direction

    @property
    def has_labels(self) -> bool:
        """Whether the pairs come with label maps (``load_labels``)."""
        return self.label_paths is not None

    def __len__(self) -> int:
        return len(self.a_paths)

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(A, B)`` of pair ``index``, each (H, W, 3) uint8 RGB of one size.

        Raises:
            ValueError: the two images differ in size, or a side-by-side image has an odd
                width; naming the file(s).
        """
        if self.b_paths is None:
            ab = read_rgb(self.a_paths[index])
            width = ab.shape[1]
            if width % 2:
                raise ValueError(
                    f"{self.a_paths[index]}: side-by-side AB image of odd width {width}; "
                    f"expected A (left half) and B (right half) of equal width"
                )
            return ab[:, : width // 2], ab[:, width // 2 :]
        a, b = read_rgb(self.a_paths[index]), read_rgb(self.b_paths[index])
        if a.shape != b.shape:
            raise ValueError(
                f"{self.b_paths[index]}: {b.shape[1]}x{b.shape[0]} pixels but its pair "
                f"{self.a_paths[index]} has {a.shape[1]}x{a.shape[0]}; a pair must be aligned"
            )
        return a, b

    def load_sides(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(source, target)`` of pair ``index`` after ``direction``."""
        a, b = self.load_pair(index)
        return (a, b) if self.direction == "AtoB" else (b, a)

    def load(self, index: int) -> np.ndarray:
        """The target of pair ``index``, (H, W, 3) uint8."""
        return self.load_sides(index)[1]

    def load_input(self, index: int) -> np.ndarray:
        """The source of pair ``index``, (H, W, 3) uint8."""
        return self.load_sides(index)[0]

    def load_labels(self, index: int) -> np.ndarray:
        """The label map of pair ``index``: (H, W) int64 class ids, -1 where unknown.

        Raises:
            ValueError: the pairs have no label maps, or this one is not 8-bit gray of the
                pair's size; naming the file.
        """
        if self.label_paths is None:
            raise ValueError(f"{self.root}: these pairs have no label maps")
        path = self.label_paths[index]
        try:
            with Image.open(path) as image:
                if image.mode not in ("L", "P"):
                    raise ValueError(f"{path}: PIL mode {image.mode}; expected 8-bit class ids")
                labels = np.array(image, dtype=np.int64)
        except (OSError, SyntaxError) as err:
            raise ValueError(f"cannot read label map {path}: {err}") from None
        with Image.open(self.a_paths[index]) as a:
            width, height = a.size
        if labels.shape != (height, width):
            raise ValueError(
                f"{path}: {labels.shape[1]}x{labels.shape[0]} pixels but its pair "
                f"{self.a_paths[index]} has {width}x{height}"
            )
        labels[labels == UNKNOWN_LABEL] = -1
        return labels

    def name(self, index: int) -> str:
        """The pair's name: its A file (or AB file) relative to its folder, e.g. ``1.jpg``."""
        return self.a_paths[index].relative_to(self.root).as_posix()

    def source(self, index: int) -> str:
        if self.b_paths is None:
            return str(self.a_paths[index])
        return f"{self.a_paths[index]} + {self.b_paths[index]}"


def _image_files(folder: Path, extensions: Sequence[str], what: str) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} does not exist (set data.records.root)")
    files = list_files(folder, extensions)
    if not files:
        raise ValueError(f"{what} folder {folder} holds no image ({', '.join(extensions)})")
    return files


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in stems:
            raise ValueError(f"{path} and {stems[key]}: two images named {key!r} in {folder}")
        stems[key] = path
    return stems


def match_by_stem(
    a_folder: Path, b_folder: Path, extensions: Sequence[str] = IMAGE_SUFFIXES
) -> tuple[list[Path], list[Path]]:
    """The image files of two folders paired by their path without extension, sorted.

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: a folder holds no image, or a file has no partner: one line listing the
            first unmatched names of each side and both folders.
    """
    a = _by_stem(_image_files(a_folder, extensions, "A"), a_folder)
    b = _by_stem(_image_files(b_folder, extensions, "B"), b_folder)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        raise ValueError(
            f"unmatched pairs: {len(only_a)} image(s) of {a_folder} without a partner in "
            f"{b_folder} (first: {only_a[:SHOWN]}) and {len(only_b)} of {b_folder} without one "
            f"in {a_folder} (first: {only_b[:SHOWN]}); A and B images pair by file name"
        )
    keys = sorted(a)
    return [a[k] for k in keys], [b[k] for k in keys]


def pix2pix_images(
    split: str,
    *,
    root: str,
    layout: Literal["folders", "aligned"] = "folders",
    direction: Literal["AtoB", "BtoA"] = "AtoB",
    a_dir: str = "A",
    b_dir: str = "B",
    labels_dir: str | None = None,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
) -> PairedRecords:
    """One split of a pix2pix dataset (see the module docstring).

    Args:
        split: "train", "val" or "test": the subfolder of ``root``.
        root: the dataset folder.
        layout: "folders" (A/ and B/ matched by name) or "aligned" (side-by-side AB images).
        direction: "AtoB" (source A, target B) or "BtoA".
        a_dir, b_dir: the A and B subfolders of a split (layout "folders").
        labels_dir: subfolder of a split holding a label map per pair (``<stem>.png``, uint8
            ids, 255 unknown), or None.
        extensions: image suffixes read (any case).

    Raises:
        FileNotFoundError: a folder is missing, naming it.
        ValueError: an empty folder, unmatched pairs, a missing label map; one line each.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"data.records.layout must be one of {LAYOUTS}, got {layout!r}")
    folder = Path(root).expanduser() / split
    if layout == "aligned":
        return PairedImages(
            _image_files(folder, extensions, "AB"), None, root=folder, direction=direction
        )
    a_paths, b_paths = match_by_stem(folder / a_dir, folder / b_dir, extensions)
    label_paths = None
    if labels_dir is not None:
        labels = folder / labels_dir
        label_paths = [labels / p.relative_to(folder / a_dir).with_suffix(".png") for p in a_paths]
        missing = [p.name for p in label_paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{labels}: no label map for {len(missing)} pair(s) (first: {missing[:SHOWN]})"
            )
    return PairedImages(
        a_paths, b_paths, root=folder / a_dir, direction=direction, label_paths=label_paths
    )

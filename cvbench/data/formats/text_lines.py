"""Word (or line) crops listed in a ``gt.txt`` of ``image<TAB>transcription`` lines.

The layout that clovaai's deep-text-recognition-benchmark ``create_lmdb_dataset.py`` reads and
MMOCR's text-recognition lists use (ICDAR 2013/2015 word crops, IIIT5K converted)::

    <root>/<split>/gt.txt          word_1.png<TAB>Tiredness
    <root>/<split>/word_1.png      image paths relative to the gt file's folder

``gt_file`` and ``image_dir`` change the layout (``{split}`` is replaced by the split's name).
The lines are read by :func:`~cvbench.data.formats.transcriptions.read_transcriptions` (one error
line naming the file and line for a line without a tab, an empty transcription, a non-UTF-8
file); every listed image must exist.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.transcriptions import read_transcriptions


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Encoded image bytes (PNG, JPEG, ...) as (H, W, 3) uint8 RGB.

    Raises:
        ValueError: bytes PIL cannot decode, naming ``where``.
    """
    try:
        return read_rgb(io.BytesIO(data))
    except ValueError:
        raise ValueError(
            f"{where}: cannot decode the image ({len(data)} bytes; expected an encoded PNG or "
            "JPEG image)"
        ) from None


class TextLines:
    """Images and their transcriptions (:class:`~cvbench.data.records.TextRecords`).

    Args:
        gt_file: the transcription file (for messages and :meth:`source`).
        rows: ``(name, transcription)`` per image, the name as the file gives it.
        image_root: the folder the names are relative to.
    """

    def __init__(self, gt_file: Path, rows: list[tuple[str, str]], image_root: Path) -> None:
        self.gt_file = gt_file
        self.names = [name for name, _ in rows]
        self.texts = [text for _, text in rows]
        self.paths = [image_root / name for name in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB (gray repeated)."""
        return read_rgb(self.paths[index])

    def text(self, index: int) -> str:
        return self.texts[index]

    def name(self, index: int) -> str:
        """The image as ``gt.txt`` names it (``word_1.png``)."""
        return self.names[index]

    def source(self, index: int) -> str:
        return f"{self.paths[index]} ({self.gt_file}, image {self.names[index]!r})"


def text_lines(
    split: str,
    *,
    root: str,
    gt_file: str = "{split}/gt.txt",
    image_dir: str | None = None,
) -> TextLines:
    """One split of a ``gt.txt`` dataset (see the module docstring).

    Args:
        split: the split's name (or a folder under ``root``: ``split_names`` of the datamodule
            maps cvbench's ``test`` to e.g. ``IIIT5K``).
        root: the dataset folder.
        gt_file: the transcription file, relative to ``root``; ``{split}`` is replaced.
        image_dir: the folder the image names are relative to, relative to ``root``
            (``{split}`` replaced); None: the gt file's folder.

    Raises:
        FileNotFoundError: no gt file, or a listed image missing (naming the gt file and image).
        ValueError: a malformed gt file (see the module docstring).
    """
    base = Path(root).expanduser()
    gt = base / gt_file.format(split=split)
    if not gt.is_file():
        raise FileNotFoundError(
            f"{gt}: no transcription file for split '{split}' (expected {gt_file!r} under "
            f"{base}: 'image<TAB>transcription' lines)"
        )
    rows = read_transcriptions(gt)
    image_root = gt.parent if image_dir is None else base / image_dir.format(split=split)
    for name, _ in rows:
        if not (image_root / name).is_file():
            raise FileNotFoundError(
                f"{gt}: image {name!r} does not exist (looked for {image_root / name})"
            )
    return TextLines(gt, rows, image_root)

"""Word transcriptions, one ``image<TAB>transcription`` line per image (``gt.txt``).

The layout of clovaai's deep-text-recognition-benchmark ``create_lmdb_dataset.py`` input and of
MMOCR's text-recognition annotation lists (ICDAR 2013/2015 word crops, IIIT5K converted): UTF-8
(a byte-order mark tolerated), ``\\n`` or ``\\r\\n`` line ends, the image name (a path relative
to the file's folder, or an LMDB key) before the first tab, the transcription after it, kept as
written (spaces and further tabs included). Blank lines are skipped. Prediction files of
``cvbench score task=ocr`` have the same layout, where an empty transcription is allowed (the
model read nothing).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from pathlib import Path

from cvbench.files import write_text

__all__ = ["decode_lines", "read_transcriptions", "write_transcriptions"]

FORMAT = "expected 'image<TAB>transcription' lines"


def decode_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a BOM dropped, ``\\r\\n`` or ``\\n``), line ends removed.

    Only ``\\n`` ends a line (``str.splitlines`` would also split at characters such as
    U+2028 that a transcription may hold).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the bytes are not UTF-8; names the file and the line.
    """
    data = Path(path).read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        at = start + err.start
        line = data.count(b"\n", 0, at) + 1
        raise ValueError(
            f"{path}, line {line}: byte {data[at]:#04x} is not UTF-8; expected a UTF-8 "
            "text file (re-save it as UTF-8)"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_transcriptions(path: Path | str, *, allow_empty: bool = False) -> list[tuple[str, str]]:
    """The ``(image, transcription)`` pairs of a transcription file, in file order.

    Args:
        path: the file.
        allow_empty: accept lines whose transcription is empty or only whitespace (prediction
            files); ground truth must transcribe every image.

    Returns:
        one pair per non-blank line: the text before the first tab, the text after it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a non-UTF-8 file, a line without a tab, an empty image name, an empty
            transcription (unless ``allow_empty``) or an image named twice; one line naming the
            file and the line number.
    """
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(decode_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        image, tab, text = line.partition("\t")
        if not tab:
            raise ValueError(f"{where}: no tab in {_shown(line)}; {FORMAT}")
        if not image.strip():
            raise ValueError(f"{where}: empty image name before the tab; {FORMAT}")
        if not allow_empty and not text.strip():
            raise ValueError(
                f"{where}: empty transcription for image {image!r}; {FORMAT} with a non-empty "
                "transcription"
            )
        if image in first_line:
            raise ValueError(
                f"{where}: image {image!r} is already transcribed on line {first_line[image]}; "
                "expected each image once"
            )
        first_line[image] = number
        pairs.append((image, text))
    return pairs


def write_transcriptions(path: Path | str, rows: Iterable[tuple[str, str]]) -> None:
    """Write ``image<TAB>transcription`` lines (UTF-8, ``\\n``) atomically.

    Args:
        path: the file (its folder is created).
        rows: ``(image, transcription)`` pairs; a transcription may be empty.

    Raises:
        ValueError: an image name that is empty, holds a tab or a line break, or is given twice,
            or a transcription holding a line break (it could not be read back); naming it.
    """
    lines, seen = [], set()
    for image, text in rows:
        if not image.strip() or any(c in image for c in "\t\r\n"):
            raise ValueError(
                f"{path}: image name {image!r}: expected a non-empty name without tab or line break"
            )
        if "\r" in text or "\n" in text:
            raise ValueError(
                f"{path}: transcription {text!r} of image {image!r} holds a line break; "
                "expected one line"
            )
        if image in seen:
            raise ValueError(f"{path}: image {image!r} given twice; expected each image once")
        seen.add(image)
        lines.append(f"{image}\t{text}\n")
    write_text(Path(path), "".join(lines))


def _shown(line: str, limit: int = 60) -> str:
    """``line`` quoted for an error message, cut to ``limit`` characters."""
    return repr(line if len(line) <= limit else line[:limit] + "...")

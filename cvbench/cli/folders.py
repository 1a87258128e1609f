"""Two folders of files matched by name, as ``cvbench score`` reads ground truth and predictions
for the tasks that are scored per image file (segmentation label maps, restored images)."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FolderKind:
    """What a task's folders hold, for listing them and for the error messages.

    Attributes:
        task: the ``task=`` name of ``cvbench score``.
        suffixes: file suffixes read (lower case; any case matches).
        files: what the files are, plural ("label maps").
        described: how an empty folder's message lists them ("*.png label maps").
        prediction: what a file of ``--pred`` is ("prediction", "output").
    """

    task: str
    suffixes: Sequence[str]
    files: str
    described: str
    prediction: str


def file_names(folder: Path, kind: FolderKind) -> list[str]:
    """Sorted names of the files of ``kind`` directly in ``folder`` (sub-folders not read).

    Raises:
        FileNotFoundError: no such folder.
        ValueError: ``folder`` is a file, or holds no such file.
    """
    if not folder.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder))
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; task={kind.task} scores folders of {kind.files}")
    names = sorted(
        p.name for p in folder.iterdir() if p.suffix.lower() in kind.suffixes and p.is_file()
    )
    if not names:
        raise ValueError(f"{folder}: no {kind.described} in this folder (sub-folders are not read)")
    return names


def matched_names(gt: Path, pred: Path, kind: FolderKind) -> list[str]:
    """The file names of both folders, which must be the same; otherwise an error naming the
    first odd one (and a file of the same stem when only the extension differs)."""
    gt_names, pred_names = file_names(gt, kind), file_names(pred, kind)
    missing = sorted(set(gt_names) - set(pred_names))
    if missing:
        stem = Path(missing[0]).stem
        near = [n for n in pred_names if Path(n).stem == stem]
        hint = f"; found {pred / near[0]}: names must match, extension included" if near else ""
        raise ValueError(
            f"{pred / missing[0]}: missing; every ground-truth {kind.files[:-1]} "
            f"({gt / missing[0]}) needs {_article(kind.prediction)} {kind.prediction} of the same "
            f"file name ({len(missing)} missing in all){hint}"
        )
    extra = sorted(set(pred_names) - set(gt_names))
    if extra:
        raise ValueError(
            f"{pred / extra[0]}: no ground truth {gt / extra[0]} for this {kind.prediction} "
            f"({len(extra)} extra in all); the folders must hold the same file names"
        )
    return gt_names


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"

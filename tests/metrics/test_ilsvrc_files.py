"""Readers of the ILSVRC devkit's text files: valid layouts and every malformed one, each
error naming the file and the 1-based line number."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cvbench.metrics.ilsvrc_files import (
    IlsvrcFileError,
    read_guesses,
    read_labels,
    read_submission,
)


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def test_read_labels(tmp_path: Path) -> None:
    labels = read_labels(_write(tmp_path / "gt.txt", "3\n0\n 12 \n999\n"))
    assert labels.dtype == torch.int64
    assert labels.tolist() == [3, 0, 12, 999]


@pytest.mark.parametrize("text", ["1\n2", "1\n2\n", "1\r\n2\r\n"])
def test_final_newline_and_crlf_are_fine(tmp_path: Path, text: str) -> None:
    assert read_labels(_write(tmp_path / "gt.txt", text)).tolist() == [1, 2]


def test_read_guesses_pads_with_minus_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "pred.txt", "1 2 3 4 5\n7\n\t8  9 \n0 0\n")
    guesses = read_guesses(path)
    assert guesses.dtype == torch.int64
    assert guesses.tolist() == [
        [1, 2, 3, 4, 5],
        [7, -1, -1, -1, -1],
        [8, 9, -1, -1, -1],
        [0, 0, -1, -1, -1],
    ]
    assert read_guesses(path, max_guesses=6).shape == (4, 6)


def test_read_submission(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.txt", "1\n2\n")
    pred = _write(tmp_path / "pred.txt", "1 2\n3\n")
    labels, guesses = read_submission(gt, pred)
    assert labels.tolist() == [1, 2]
    assert guesses.shape == (2, 5)


# Each case: reader, file text, 1-based line in the message, words the message must contain.
BAD_LABELS = [
    ("1\n\n2\n", 2, "empty line"),
    ("1\n2\n\n", 3, "empty line"),  # a second newline at the end is a blank line
    ("1\n   \n2\n", 2, "empty line"),
    ("1\ncat\n", 2, "'cat' is not an integer"),
    ("1.0\n", 1, "'1.0' is not an integer"),
    ("1_000\n", 1, "'1_000' is not an integer"),
    ("1\n2\n-3\n", 3, "negative class id -3"),
    ("1\n2 3\n", 2, "2 values; expected one integer class id per line"),
    ("99999999999999999999\n", 1, "too large"),
]
BAD_GUESSES = [
    ("1 2\n\n3\n", 2, "empty line"),
    ("1 2 x\n", 1, "'x' is not an integer"),
    ("1\n2\n3 -1\n", 3, "negative class id -1"),
    ("1 2 3 4 5\n1 2 3 4 5 6\n", 2, "6 guesses; expected 1 to 5"),
    ("1,2,3\n", 1, "'1,2,3' is not an integer"),
]


CASES = [("gt.txt", read_labels, case) for case in BAD_LABELS] + [
    ("pred.txt", read_guesses, case) for case in BAD_GUESSES
]


@pytest.mark.parametrize(("name", "reader", "case"), CASES)
def test_bad_files(tmp_path: Path, name: str, reader, case: tuple[str, int, str]) -> None:
    text, line, words = case
    path = _write(tmp_path / name, text)
    with pytest.raises(IlsvrcFileError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert words in message
    assert "expected" in message
    assert info.value.path == path and info.value.line == line


def test_the_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_labels(_write(tmp_path / "gt.txt", "x\n"))


def test_max_guesses_is_a_parameter(tmp_path: Path) -> None:
    with pytest.raises(IlsvrcFileError, match="line 1: 2 guesses; expected 1 to 1"):
        read_guesses(_write(tmp_path / "pred.txt", "1 2\n"), max_guesses=1)


@pytest.mark.parametrize("reader", [read_labels, read_guesses])
@pytest.mark.parametrize("text", ["", "\n"])
def test_empty_file(tmp_path: Path, reader, text: str) -> None:
    path = _write(tmp_path / "f.txt", text)
    with pytest.raises(IlsvrcFileError, match="empty"):
        reader(path)


def test_not_ascii_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "gt.txt", "1\n2\n\xe9\n".encode("latin-1"))
    with pytest.raises(IlsvrcFileError, match=r"gt.txt, line 3: byte 0xe9 is not ASCII"):
        read_labels(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_labels(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("gt_text", "pred_text", "counts", "unmatched"),
    [
        ("1\n2\n3\n4\n", "1\n2\n3\n", "3 lines of guesses but", "line 4 of {gt} has no guesses"),
        ("1\n2\n", "1\n2\n3\n", "3 lines of guesses but", "line 3 of {pred} has no label"),
    ],
)
def test_length_mismatch_gives_both_counts(
    tmp_path: Path, gt_text: str, pred_text: str, counts: str, unmatched: str
) -> None:
    gt = _write(tmp_path / "gt.txt", gt_text)
    pred = _write(tmp_path / "pred.txt", pred_text)
    with pytest.raises(IlsvrcFileError) as info:
        read_submission(gt, pred)
    message = str(info.value)
    n_gt = gt_text.count("\n")
    assert message.startswith(f"{pred}: {counts} {gt} has {n_gt} labels")
    assert unmatched.format(gt=gt, pred=pred) in message

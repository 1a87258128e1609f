"""YOLO label files that are not numbers a class index can be: ``inf``, ``nan`` and bytes that
are not UTF-8 give one ValueError naming the file and line (the CLI's one ``error:`` line), not
an OverflowError traceback or a message without the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli
from fakes_detection import write_yolo

from cvbench.data.formats.yolo import yolo_detection

CLASSES = ["cat", "dog", "bird"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "Infinity", "NaN"])
def test_non_finite_class_names_file_and_line(tmp_path: Path, value: str) -> None:
    write_yolo(tmp_path)
    label = tmp_path / "labels" / "train" / "a.txt"
    label.write_text(f"0 0.5 0.5 0.5 0.5\n{value} 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError) as info:
        yolo_detection(str(tmp_path), "train", classes=CLASSES)
    assert str(info.value) == (
        f"{label}, line 2: class {value!r}; expected an integer in [0, {len(CLASSES)})"
    )


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_coordinate_names_file_and_line(tmp_path: Path, value: str) -> None:
    write_yolo(tmp_path)
    label = tmp_path / "labels" / "train" / "a.txt"
    label.write_text(f"1 0.5 {value} 0.1 0.1\n")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]") as info:
        yolo_detection(str(tmp_path), "train", classes=CLASSES)
    assert str(info.value).startswith(f"{label}, line 1: ")


def test_label_file_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    write_yolo(tmp_path)
    label = tmp_path / "labels" / "train" / "a.txt"
    label.write_bytes(b"0 0.5 0.5 0.5 0.5\n1 0.5 0.5 0.1 0.1\n\xff\xfe 0.5\n")
    with pytest.raises(ValueError) as info:
        yolo_detection(str(tmp_path), "train", classes=CLASSES)
    assert str(info.value) == f"{label}, line 3: not UTF-8 text; expected 'class cx cy w h' lines"


@pytest.mark.slow
def test_cvbench_train_reports_an_infinite_class_in_one_line(tmp_path: Path) -> None:
    """The real command on a YOLO dataset with ``inf`` as a class: exit 1, one ``error:`` line
    naming the label file and line, no traceback."""
    root = tmp_path / "data" / "yolo"
    for split in ("train", "val"):
        write_yolo(root, split)
    label = root / "labels" / "train" / "a.txt"
    label.write_text("0 0.5 0.5 0.5 0.5\ninf 0.5 0.5 0.1 0.1\n")
    done = run_cli(
        "train",
        "experiment=detection/shapes_fcos_resnet18",
        "data=detection/yolo",
        "data.num_classes=3",
        "data.records.classes=[cat,dog,bird]",
        "data.num_workers=0",
        f"paths.root_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {label}, line 2: class 'inf'; expected an integer in [0, 3)"]

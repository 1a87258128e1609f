"""``cvbench score task=segmentation``: folders of PNG label maps written here with PIL,
scored as scikit-learn's pooled confusion matrix and the FCN ``score.py`` arithmetic score them,
and one-line errors naming the file for every way the folders can disagree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from cvbench.cli.score import EXIT_BAD_INPUT, main

NUM_CLASSES = 5
SIZES = {"a.png": (20, 30), "b.png": (31, 17), "c.png": (8, 40), "d.png": (25, 25)}


def write_png(path: Path, values: np.ndarray, mode: str = "L") -> None:
    """An 8-bit gray PNG, or a palette PNG (``P``) whose colours are not the indices."""
    image = Image.fromarray(values.astype(np.uint8))  # uint8 (H, W): mode L
    if mode == "P":
        image = image.convert("P")  # identity palette; replace it by one unlike the indices
        palette = np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)
        image.putpalette(palette.tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def label_folders(
    tmp_path: Path, *, seed: int = 0, zero_is_void: bool = False
) -> tuple[Path, Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """gt/ and pred/ with the ``SIZES`` images (b.png a palette PNG), class 4 predicted but
    not in the ground truth, some 255 void; with ``zero_is_void`` the ground truth is stored
    ADE20K-style (0 void, class c as c + 1) and has one pixel of class 4."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (h, w) in SIZES.items():
        target = rng.integers(0, NUM_CLASSES - 1, (h, w))
        pred = np.where(rng.random((h, w)) < 0.6, target, rng.integers(0, NUM_CLASSES, (h, w)))
        target[rng.random((h, w)) < 0.1] = 255
        stored = target.copy()
        if zero_is_void:
            target[-1, -1] = NUM_CLASSES - 1  # stored as 5: in range only once reduced
            stored = np.where(target == 255, 0, target + 1)
            stored[:2] = 255  # stays void
            target[:2] = 255
        write_png(tmp_path / "gt" / name, stored, "P" if name == "b.png" else "L")
        write_png(tmp_path / "pred" / name, pred)
        arrays[name] = (pred, target)
    return tmp_path / "gt", tmp_path / "pred", arrays


def reference(arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict, np.ndarray]:
    """Pooled scikit-learn confusion matrix (void removed) and FCN ``score.py``, x100."""
    pred = np.concatenate([p.ravel() for p, _ in arrays.values()])
    target = np.concatenate([t.ravel() for _, t in arrays.values()])
    keep = target != 255
    hist = sk_confusion_matrix(target[keep], pred[keep], labels=list(range(NUM_CLASSES)))
    hist = hist.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    freq = hist.sum(1) / hist.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_acc = np.nanmean(np.diag(hist) / hist.sum(1))
    scores = {
        "miou": 100 * np.nanmean(iu),
        "pixel_acc": 100 * np.diag(hist).sum() / hist.sum(),
        "mean_acc": 100 * mean_acc,
        "fwiou": 100 * (freq[freq > 0] * iu[freq > 0]).sum(),
        "iou": 100 * iu,
    }
    return scores, hist


def assert_result(result: dict, arrays: dict) -> None:
    expected, hist = reference(arrays)
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou"):
        assert result[key] == pytest.approx(expected[key], abs=1e-9), key
    assert result["num_images"] == len(arrays)
    assert [c["class_id"] for c in result["per_class"]] == list(range(NUM_CLASSES))
    for c, row in enumerate(result["per_class"]):
        assert row["iou"] == pytest.approx(expected["iou"][c], abs=1e-9)
        assert row["gt_pixels"] == hist[c].sum() and row["pred_pixels"] == hist[:, c].sum()


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main(["task=segmentation", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_the_real_command_equals_sklearn(tmp_path: Path) -> None:
    gt, pred, arrays = label_folders(tmp_path)
    (gt / "notes.txt").write_text("not a label map")  # only *.png count
    (gt / "sub").mkdir()
    write_png(gt / "sub" / "e.png", np.zeros((3, 3)))  # sub-folders are not read
    out = tmp_path / "out" / "score.json"
    proc = run_cli(
        "score",
        "task=segmentation",
        f"gt={gt}",
        f"pred={pred}",
        f"num_classes={NUM_CLASSES}",
        f"out={out}",
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert_result(result, arrays)
    assert result["per_class"][4]["gt_pixels"] == 0 and result["per_class"][4]["iou"] == 0.0
    assert result["ignore_index"] == 255 and result["reduce_zero_label"] is False
    assert result["num_classes"] == NUM_CLASSES
    assert out.read_text() == proc.stdout


def test_palette_ground_truth_is_read_as_indices(tmp_path: Path, capsys) -> None:
    """Every ground truth a palette PNG whose colours are unrelated to the indices."""
    gt, pred, arrays = label_folders(tmp_path, seed=1)
    for name, (_, target) in arrays.items():
        write_png(gt / name, target, "P")
        assert Image.open(gt / name).mode == "P"
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", "num_classes=5")
    assert code == 0, stderr
    assert_result(json.loads(stdout), arrays)


def test_reduce_zero_label_maps_the_ground_truth_only(tmp_path: Path, capsys) -> None:
    gt, pred, arrays = label_folders(tmp_path, seed=2, zero_is_void=True)
    args = (f"gt={gt}", f"pred={pred}", f"num_classes={NUM_CLASSES}")
    code, stdout, stderr = run_main(capsys, *args, "reduce_zero_label=true")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["reduce_zero_label"] is True
    assert_result(result, arrays)
    # without the flag the stored 5 (class 4 + 1) is out of range
    code, stdout, stderr = run_main(capsys, *args)
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert "label value 5 is outside [0, 5) and is not ignore_index 255" in stderr
    assert "reduce_zero_label" in stderr


def test_other_ignore_index(tmp_path: Path, capsys) -> None:
    gt, pred, arrays = label_folders(tmp_path, seed=3)
    for name, (_, target) in arrays.items():
        write_png(gt / name, np.where(target == 255, 9, target))
    code, stdout, stderr = run_main(
        capsys, f"gt={gt}", f"pred={pred}", "num_classes=5", "ignore_index=9"
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["ignore_index"] == 9
    assert_result(result, arrays)


def _missing(gt: Path, pred: Path) -> str:
    (pred / "c.png").unlink()
    return f"error: {pred / 'c.png'}: missing; every ground-truth label map ({gt / 'c.png'})"


def _extra(gt: Path, pred: Path) -> str:
    write_png(pred / "z.png", np.zeros((4, 4)))
    return f"error: {pred / 'z.png'}: no ground truth {gt / 'z.png'} for this prediction"


def _size(gt: Path, pred: Path) -> str:
    write_png(pred / "b.png", np.zeros((17, 31)))
    return (
        f"error: {pred / 'b.png'}: prediction is 17x31 (HxW) but ground truth {gt / 'b.png'} "
        "is 31x17"
    )


def _pred_value(gt: Path, pred: Path) -> str:
    values = np.asarray(Image.open(pred / "d.png")).copy()
    values[3, 4] = 5
    write_png(pred / "d.png", values)
    return f"error: {pred / 'd.png'}: prediction value 5 is not a class id 0..4 (num_classes=5)"


def _gt_value(gt: Path, pred: Path) -> str:
    values = np.asarray(Image.open(gt / "a.png")).copy()
    values[0, 0] = 200
    write_png(gt / "a.png", values)
    return f"error: {gt / 'a.png'}: label value 200 is outside [0, 5) and is not ignore_index 255"


def _rgb(gt: Path, pred: Path) -> str:
    values = np.asarray(Image.open(pred / "a.png"))
    Image.fromarray(np.stack([values * 40, values, values], axis=-1)).save(pred / "a.png")
    return f"error: label map {pred / 'a.png'} is a RGB image; expected a single-channel"


def _no_folder(gt: Path, pred: Path) -> str:
    for path in pred.iterdir():
        path.unlink()
    pred.rmdir()
    return f"error: cannot read {pred}: No such file or directory"


def _empty_folder(gt: Path, pred: Path) -> str:
    for path in gt.iterdir():
        path.rename(path.with_suffix(".jpg"))
    return f"error: {gt}: no *.png label maps in this folder"


@pytest.mark.parametrize(
    "break_it", [_missing, _extra, _size, _pred_value, _gt_value, _rgb, _no_folder, _empty_folder]
)
def test_errors_name_the_file(tmp_path: Path, capsys, break_it) -> None:
    gt, pred, _ = label_folders(tmp_path)
    message = break_it(gt, pred)
    out = tmp_path / "score.json"
    code, stdout, stderr = run_main(
        capsys, f"gt={gt}", f"pred={pred}", "num_classes=5", f"out={out}"
    )
    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    assert stderr.startswith(message), stderr
    assert stderr.count("\n") == 1
    assert not out.exists()


def test_binary_masks_saved_as_0_and_255(tmp_path: Path, capsys) -> None:
    """The 0/255 trap: with 2 classes and void 255, every foreground pixel would be ignored."""
    target = np.zeros((10, 10), dtype=np.int64)
    target[2:6, 3:8] = 255
    write_png(tmp_path / "gt" / "m.png", target)
    write_png(tmp_path / "pred" / "m.png", (target > 0).astype(np.int64))
    code, stdout, stderr = run_main(
        capsys, f"gt={tmp_path / 'gt'}", f"pred={tmp_path / 'pred'}", "num_classes=2"
    )
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.startswith(f"error: {tmp_path / 'gt'}: the ground truth holds only 0 and 255")
    assert "0/255 binary-mask trap" in stderr
    # the same masks saved as 0/1 score
    write_png(tmp_path / "gt" / "m.png", (target > 0).astype(np.int64))
    code, stdout, _ = run_main(
        capsys, f"gt={tmp_path / 'gt'}", f"pred={tmp_path / 'pred'}", "num_classes=2"
    )
    assert code == 0 and json.loads(stdout)["miou"] == 100.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["task=segmentation", "gt=g", "pred=p"], "num_classes= is required: K, the number"),
        (["task=segmentation", "gt=g", "pred=p", "num_classes=0"], "num_classes=0: expected at"),
        (
            ["task=segmentation", "gt=g", "pred=p", "num_classes=3", "ignore_index=2"],
            "ignore_index=2 is a class id (0..2)",
        ),
        (
            ["task=detection", "gt=g", "pred=p", "num_classes=3"],
            "cvbench score task=detection: unknown setting 'num_classes'",
        ),
        (
            ["task=classification", "gt=g", "pred=p", "ignore_index=0"],
            "cvbench score task=classification: unknown setting 'ignore_index'",
        ),
        (
            ["task=segmentation", "gt=g", "pred=p", "num_classes=3", "reduce_zero_label=yes"],
            "reduce_zero_label=yes: expected true or false",
        ),
        (
            ["--task", "segmentation", "--gt", "g", "--pred", "p", "--num-classes", "3"]
            + ["--reduce-zero-label"],
            "cvbench score takes key=value settings only, not '--task'; write: cvbench score "
            "task=segmentation gt=g pred=p num_classes=3 reduce_zero_label=true",
        ),
    ],
)
def test_wrong_command_lines(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err

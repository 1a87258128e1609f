"""``cvbench score`` on hostile or careless input: each case is one ``error:`` line naming the
file (and the record) and what was expected, exit status 1, no traceback and no hang. The
inputs are real files: COCO JSON written here, PNG label maps, folders where files belong."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image
from pycocotools import mask as mask_utils

from cvbench.cli.score import EXIT_BAD_INPUT, main

H, W = 10, 20


def square_rle(h: int = H, w: int = W) -> dict:
    """The compressed RLE of a 5 x 5 square, as pycocotools writes it (counts a string)."""
    mask = np.zeros((h, w), np.uint8, order="F")
    mask[2:7, 2:7] = 1
    rle = mask_utils.encode(mask)
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def ground_truth() -> dict:
    return {
        "images": [{"id": 1, "width": W, "height": H}, {"id": 2, "width": W, "height": H}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [2, 2, 5, 5],
                "area": 25,
                "iscrowd": 0,
                "segmentation": [[2, 2, 7, 2, 7, 7, 2, 7]],
            },
            {
                "id": 2,
                "image_id": 2,
                "category_id": 1,
                "bbox": [2, 2, 5, 5],
                "area": 25,
                "iscrowd": 0,
                "segmentation": square_rle(),
            },
        ],
        "categories": [{"id": 1, "name": "square"}],
    }


def result(image_id: int = 1) -> dict:
    return {
        "image_id": image_id,
        "category_id": 1,
        "bbox": [2, 2, 5, 5],
        "score": 0.9,
        "segmentation": square_rle(),
    }


def write(tmp_path: Path, gt: dict, results: list) -> tuple[Path, Path]:
    (tmp_path / "instances.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path / "instances.json", tmp_path / "results.json"


def score(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(code: int, out: str, err: str, expected: str) -> None:
    assert code == EXIT_BAD_INPUT, err
    assert out == ""
    assert err == f"error: {expected}\n"


def test_good_files_score(tmp_path: Path, capsys) -> None:
    gt, pred = write(tmp_path, ground_truth(), [result(1), result(2)])
    for iou_type in ("bbox", "segm"):
        code, out, err = score(
            capsys, "task=detection", f"gt={gt}", f"pred={pred}", f"iou_type={iou_type}"
        )
        assert code == 0, err
        assert json.loads(out)["map"] == 100.0


# --- unhashable ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("image_id", [1], "image_id [1] is not in 'images'"),
        ("category_id", {"id": 1}, "category_id {'id': 1} is not in 'categories'"),
    ],
)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_unhashable_id_in_ground_truth(
    tmp_path: Path, capsys, key: str, value: object, message: str, iou_type: str
) -> None:
    truth = ground_truth()
    truth["annotations"][1][key] = value
    gt, pred = write(tmp_path, truth, [result()])
    code, out, err = score(
        capsys, "task=detection", f"gt={gt}", f"pred={pred}", f"iou_type={iou_type}"
    )
    assert_one_error(code, out, err, f"{gt}, annotation 1 (id 2): {message}")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("image_id", [1], "result 1: image_id [1] is not an image of the ground truth"),
        (
            "category_id",
            [1],
            "result 1 (image_id 1): category_id [1] is not a category of the ground truth",
        ),
    ],
)
def test_unhashable_id_in_results(
    tmp_path: Path, capsys, key: str, value: object, message: str
) -> None:
    gt, pred = write(tmp_path, ground_truth(), [result(), {**result(), key: value}])
    code, out, err = score(capsys, "task=detection", f"gt={gt}", f"pred={pred}")
    assert_one_error(code, out, err, f"{pred}, {message}")


# --- RLE size and counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rle", "problem"),
    [
        ({"size": 10, "counts": "x"}, "segmentation size 10 is not [height, width] of 2 integers"),
        ({"size": None, "counts": "x"}, "segmentation size None is not [height, width]"),
        ({"size": "ab", "counts": "x"}, "segmentation size 'ab' is not [height, width]"),
        ({"size": [10.0, 20.0], "counts": "x"}, "segmentation size [10.0, 20.0] is not"),
        ({"size": [10, 21], "counts": "x"}, "segmentation size [10, 21] is not the image's "),
        ({"size": [H, W], "counts": "\u00ff\u00ff"}, "segmentation counts has b'\\xc3' at byte 0"),
        ({"size": [H, W], "counts": "zzzzzzzz"}, "segmentation counts has b'z' at byte 0"),
        ({"size": [H, W], "counts": "b"}, "segmentation counts ends inside a number"),
        (
            {"size": [H, W], "counts": "0"},
            "segmentation counts runs sum to 0 pixels; expected height x width = 200",
        ),
        ({"size": [H, W], "counts": ""}, "segmentation counts runs sum to 0 pixels"),
        ({"size": [H, W], "counts": "ooooooooo1"}, "segmentation counts run 0 has 10 5-bit groups"),
        ({"size": [H, W], "counts": "@"}, "segmentation counts has a negative run (-16)"),
        ({"size": [H, W], "counts": "T3X3"}, "segmentation counts runs sum to 204 pixels"),
        (
            {"size": [H, W], "counts": [50, 150]},
            "segmentation counts is a list (an uncompressed "
            "RLE); results need the compressed RLE string",
        ),
        ({"size": [H, W], "counts": 7}, "segmentation counts is a JSON int; expected an RLE"),
        ([[2, 2, 7, 2, 7, 7]], "segmentation is not an RLE"),
    ],
)
def test_malformed_result_rle(tmp_path: Path, capsys, rle: object, problem: str) -> None:
    gt, pred = write(tmp_path, ground_truth(), [result(), {**result(2), "segmentation": rle}])
    code, out, err = score(capsys, "task=detection", f"gt={gt}", f"pred={pred}", "iou_type=segm")
    assert code == EXIT_BAD_INPUT and out == "", err
    assert err.startswith(f"error: {pred}, result 1 (image_id 2): {problem}"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("segmentation", "problem"),
    [
        (5, "segmentation is a JSON int; expected polygons"),
        ("abc", "segmentation is a JSON str; expected polygons"),
        ([[2, 2, "x", 2, 7, 7]], "segmentation polygon 0 holds 'x'; expected numbers"),
        ([[2, 2, 7]], "segmentation polygon 0 is not a list [x0, y0, x1, y1, ...] of x, y pairs"),
        ({"size": 3, "counts": [200]}, "segmentation size 3 is not [height, width] of 2 integers"),
        ({"size": [H, W], "counts": [-5, 205]}, "segmentation counts has a negative run (-5)"),
        (
            {"size": [H, W], "counts": [50, 100]},
            "segmentation counts runs sum to 150 pixels; expected height x width = 200",
        ),
        ({"size": [H, W], "counts": [50, 1.5]}, "segmentation counts is a list with a non-integer"),
    ],
)
def test_malformed_ground_truth_segmentation(
    tmp_path: Path, capsys, segmentation: object, problem: str
) -> None:
    truth = ground_truth()
    truth["annotations"][1]["segmentation"] = segmentation
    gt, pred = write(tmp_path, truth, [result()])
    code, out, err = score(capsys, "task=detection", f"gt={gt}", f"pred={pred}", "iou_type=segm")
    assert code == EXIT_BAD_INPUT and out == "", err
    assert err.startswith(f"error: {gt}, annotation 1 (id 2): {problem}"), err
    assert err.count("\n") == 1


def test_ground_truth_image_without_a_size(tmp_path: Path, capsys) -> None:
    truth = ground_truth()
    truth["images"][1]["height"] = 0
    gt, pred = write(tmp_path, truth, [result()])
    code, out, err = score(capsys, "task=detection", f"gt={gt}", f"pred={pred}", "iou_type=segm")
    assert_one_error(
        code,
        out,
        err,
        f"{gt}, images 1 (id 2): no integer 'height' and 'width' >= 1 (found [0, {W}]); mask "
        "evaluation needs the image size",
    )


@pytest.mark.slow
def test_short_crowd_rle_does_not_hang_the_real_command(tmp_path: Path) -> None:
    """A crowd region whose runs cover 150 of 200 pixels hung faster-coco-eval; now refused."""
    truth = ground_truth()
    truth["annotations"][1].update(iscrowd=1, segmentation={"size": [H, W], "counts": [50, 100]})
    gt, pred = write(tmp_path, truth, [result(1), result(2)])
    done = run_cli(
        "score",
        "task=detection",
        f"gt={gt}",
        f"pred={pred}",
        "iou_type=segm",
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"error: {gt}, annotation 1 (id 2): segmentation counts runs sum to 150 pixels; "
        "expected height x width = 200\n"
    )


# --- folders where files belong -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_folder_as_coco_file(tmp_path: Path, capsys, which: str) -> None:
    gt, pred = write(tmp_path, ground_truth(), [result()])
    folder = tmp_path / "folder"
    folder.mkdir()
    files = {"gt": gt, "pred": pred} | {which: folder}
    code, out, err = score(capsys, "task=detection", f"gt={files['gt']}", f"pred={files['pred']}")
    assert_one_error(code, out, err, f"{folder}: a folder; expected a JSON file")


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_folder_as_classification_file(tmp_path: Path, capsys, which: str) -> None:
    (tmp_path / "gt.txt").write_text("1\n2\n")
    (tmp_path / "pred.txt").write_text("1\n2\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    files = {"gt": tmp_path / "gt.txt", "pred": tmp_path / "pred.txt"} | {which: folder}
    code, out, err = score(
        capsys, "task=classification", f"gt={files['gt']}", f"pred={files['pred']}"
    )
    assert_one_error(
        code,
        out,
        err,
        f"{folder}: a folder; task=classification reads a file "
        "there (cvbench score task=classification --help)",
    )


@pytest.mark.slow
def test_folder_as_pred_in_the_real_command(tmp_path: Path) -> None:
    gt, _ = write(tmp_path, ground_truth(), [result()])
    done = run_cli(
        "score",
        "task=detection",
        f"gt={gt}",
        f"pred={tmp_path}",
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"error: {tmp_path}: a folder; expected a JSON file\n"


# --- segmentation: absurd numbers, predictions shifted by one -----------------------------------


def label_maps(tmp_path: Path, gt: list[np.ndarray], pred: list[np.ndarray]) -> tuple[Path, Path]:
    for folder, maps in (("gt", gt), ("pred", pred)):
        (tmp_path / folder).mkdir()
        for k, values in enumerate(maps):
            Image.fromarray(values.astype(np.uint8)).save(tmp_path / folder / f"{k}.png")
    return tmp_path / "gt", tmp_path / "pred"


def ade_like(seed: int = 0, images: int = 3, classes: int = 6) -> list[np.ndarray]:
    """ADE20K-style ground truth: 0 = unlabelled, 1..classes the classes, blocky regions."""
    rng = np.random.default_rng(seed)
    blocks = [rng.integers(0, classes + 1, (4, 5)) for _ in range(images)]
    return [np.kron(b, np.ones((6, 6), np.int64)) for b in blocks]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "num_classes=100000",
            "num_classes=100000: expected 1 to 4096 classes (the K x K "
            "confusion matrix is held in memory)",
        ),
        ("num_classes=1000000000000", "num_classes=1000000000000: expected 1 to 4096 classes"),
        ("num_classes=99999999999999999999", "num_classes=99999999999999999999: expected 1 to"),
        ("num_classes=0", "num_classes=0: expected at least 1"),
    ],
)
def test_absurd_number_of_classes(tmp_path: Path, capsys, setting: str, message: str) -> None:
    gt, pred = label_maps(tmp_path, ade_like(), ade_like())
    code, out, err = score(
        capsys, "task=segmentation", f"gt={gt}", f"pred={pred}", setting, "ignore_index=-1"
    )
    assert code == EXIT_BAD_INPUT and out == "", err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("value", ["1000000000000000000000", "-1000000000000000000000"])
def test_absurd_ignore_index(tmp_path: Path, capsys, value: str) -> None:
    gt, pred = label_maps(tmp_path, ade_like(), ade_like())
    code, out, err = score(
        capsys,
        "task=segmentation",
        f"gt={gt}",
        f"pred={pred}",
        "num_classes=7",
        f"ignore_index={value}",
    )
    assert_one_error(
        code,
        out,
        err,
        f"ignore_index={value}: expected a label value in "
        "[-2147483648, 2147483647], which a label map can hold",
    )


def test_one_based_predictions_with_reduce_zero_label_warn(tmp_path: Path, capsys) -> None:
    """The ADE20K devkit's predictions are 1-based: scored against reduced (0-based) labels,
    every right pixel lands one class off. The score is still printed, with a warning."""
    truth = ade_like()
    one_based = [np.where(t == 0, 1, t) for t in truth]  # a perfect model, in 1..6
    gt, pred = label_maps(tmp_path, truth, [np.minimum(p, 5) for p in one_based])
    code, out, err = score(
        capsys,
        "task=segmentation",
        f"gt={gt}",
        f"pred={pred}",
        "num_classes=6",
        "reduce_zero_label=true",
    )
    assert code == 0, err
    assert json.loads(out)["miou"] < 20
    (line,) = err.splitlines()
    assert (
        line.startswith(f"warning: {pred}: ")
        and "% of the scored pixels are predicted as their class + 1" in line
    )
    assert line.endswith(
        "1-based predictions (as the ADE20K devkit writes them) scored with "
        "reduce_zero_label=true? Subtract 1 from them"
    )


def test_one_based_prediction_of_the_last_class_says_why(tmp_path: Path, capsys) -> None:
    truth = ade_like()
    gt, pred = label_maps(tmp_path, truth, [np.where(t == 0, 1, t) for t in truth])
    code, out, err = score(
        capsys,
        "task=segmentation",
        f"gt={gt}",
        f"pred={pred}",
        "num_classes=6",
        "reduce_zero_label=true",
    )
    assert code == EXIT_BAD_INPUT and out == ""
    assert err.startswith(f"error: {pred}/0.png: prediction value 6 is not a class id 0..5 ")
    assert err.endswith(
        "with reduce_zero_label=true the classes are 0-based: 1-based "
        "predictions (as the ADE20K devkit writes them) need 1 subtracted\n"
    )


@pytest.mark.parametrize("kind", ["right", "poor", "binary_all_foreground"])
def test_no_warning_for_unshifted_predictions(tmp_path: Path, capsys, kind: str) -> None:
    truth = ade_like()
    rng = np.random.default_rng(1)
    if kind == "right":  # 0-based, as the scorer expects
        pred, args = [np.maximum(t - 1, 0) for t in truth], ["num_classes=6"]
    elif kind == "poor":  # right on a third of the pixels, random elsewhere
        pred = [
            np.where(rng.random(t.shape) < 0.3, np.maximum(t - 1, 0), rng.integers(0, 6, t.shape))
            for t in truth
        ]
        args = ["num_classes=6"]
    else:  # binary: background everywhere but a corner, predicted all foreground
        truth = [np.pad(np.ones((3, 3), np.int64), ((0, 20), (0, 20))) for _ in range(2)]
        pred, args = [np.ones_like(t) for t in truth], ["num_classes=2"]
    gt, pred_dir = label_maps(tmp_path, truth, pred)
    extra = ["reduce_zero_label=true"] if kind != "binary_all_foreground" else []
    code, out, err = score(
        capsys, "task=segmentation", f"gt={gt}", f"pred={pred_dir}", *args, *extra
    )
    assert code == 0, err
    assert err == ""
    if kind == "right":
        assert json.loads(out)["miou"] == 100.0

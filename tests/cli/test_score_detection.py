"""``cvbench score task=detection``: COCO files scored as pycocotools scores the same files,
and one-line errors naming the file, the record and the id."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cvbench.cli.score import EXIT_BAD_INPUT, main
from cvbench.metrics.coco import COCO_STATS

REPO = Path(__file__).resolve().parents[2]


def coco_files(tmp_path: Path, seed: int = 0, num_images: int = 12) -> tuple[Path, Path]:
    """A COCO instances file (ids with gaps, crowd regions, mask areas below box areas, an
    image without objects) and a results file (jittered boxes, false positives, tied scores)."""
    rng = np.random.default_rng(seed)
    category_ids = [1, 7, 90]
    gt = {
        "info": {"description": "cvbench test"},
        "images": [],
        "annotations": [],
        "categories": [{"id": c, "name": f"class{c}", "supercategory": "x"} for c in category_ids],
    }
    results = []
    for image_id in range(100, 100 + 3 * num_images, 3):
        gt["images"].append(
            {"id": image_id, "file_name": f"{image_id}.jpg", "width": 640, "height": 480}
        )
        for _ in range(0 if image_id == 100 else int(rng.integers(1, 8))):
            w, h = (float(np.round(np.exp(rng.uniform(1, 5.5)))) for _ in range(2))
            x, y = float(rng.integers(0, 640 - w)), float(rng.integers(0, 480 - h))
            category = int(rng.choice(category_ids))
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h * float(rng.uniform(0.5, 1)),
                    "iscrowd": int(rng.random() < 0.1),
                    "segmentation": [[x, y, x + w, y, x + w, y + h]],
                }
            )
            if rng.random() < 0.8:
                box = [x + float(rng.integers(-3, 4)), y + float(rng.integers(-3, 4)), w, h]
                score = float(rng.integers(1, 10)) / 10
                results.append(
                    {"image_id": image_id, "category_id": category, "bbox": box, "score": score}
                )
        for _ in range(int(rng.integers(0, 4))):
            box = [float(v) for v in rng.integers(0, 400, 2)] + [50.0, 40.0]
            category = int(rng.choice(category_ids))
            results.append(
                {"image_id": image_id, "category_id": category, "bbox": box, "score": 0.3}
            )
    (tmp_path / "instances.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path / "instances.json", tmp_path / "results.json"


def pycocotools_on_files(gt: Path, pred: Path, iou_type: str = "bbox") -> dict:
    """pycocotools as its README runs it, on the files themselves."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        coco_dt = coco_gt.loadRes(str(pred))
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: None if s == -1 else 100 * s for k, s in zip(COCO_STATS, ev.stats, strict=True)}


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main(["task=detection", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_stats(got: dict, expected: dict) -> None:
    for key in COCO_STATS:
        if expected[key] is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(expected[key], abs=1e-9), key


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_pycocotools_on_the_same_files(tmp_path: Path, capsys, seed: int) -> None:
    gt, pred = coco_files(tmp_path, seed)
    out = tmp_path / "out" / "score.json"
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", f"out={out}")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert sorted(result) == sorted([*COCO_STATS, "num_images", "num_detections", "iou_type"])
    assert_stats(result, pycocotools_on_files(gt, pred))
    assert result["num_images"] == 12
    assert result["num_detections"] == len(json.loads(pred.read_text()))
    assert result["iou_type"] == "bbox"
    assert out.read_text() == stdout  # the same JSON
    assert 0 < result["map"] < 100


def test_known_answer_and_nulls(tmp_path: Path, capsys) -> None:
    """One of two objects found first, then a false positive: AP = 51/101 (precision 1 up to
    recall 0.5); no medium or large object: null."""
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "area": 100},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [50, 50, 10, 10], "area": 100},
        ],
        "categories": [{"id": 3, "name": "dot"}],
    }
    results = [
        {"image_id": 1, "category_id": 3, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 3, "bbox": [80, 80, 10, 10], "score": 0.8},
    ]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(results))
    code, stdout, _ = run_main(capsys, f"gt={tmp_path / 'gt.json'}", f"pred={tmp_path / 'r.json'}")
    assert code == 0
    result = json.loads(stdout)
    assert result["map"] == pytest.approx(100 * 51 / 101, abs=1e-12)
    assert result["map_small"] == result["map"]
    assert result["mar_100"] == 50.0
    assert result["map_medium"] is None and result["mar_large"] is None
    assert '"map_medium": null' in stdout


def test_no_detections(tmp_path: Path, capsys) -> None:
    gt, pred = coco_files(tmp_path)
    pred.write_text("[]")
    code, stdout, _ = run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == 0
    result = json.loads(stdout)
    assert result["num_detections"] == 0
    assert all(result[k] in (0.0, None) for k in COCO_STATS)
    assert result["map"] == 0.0


def test_segm_equals_pycocotools(tmp_path: Path, capsys) -> None:
    """RLE results (without a bbox, as pycocotools scores masks by their own area) against
    polygon ground truth."""
    gt, _ = coco_files(tmp_path, seed=2, num_images=4)
    truth = json.loads(gt.read_text())
    results = []
    for a in truth["annotations"]:
        polygon = mask_utils.frPyObjects(a["segmentation"], 480, 640)
        rle = mask_utils.merge(polygon)
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "score": 0.5 + 0.01 * a["id"],
            }
        )
    results[0]["category_id"] = 7 if results[0]["category_id"] != 7 else 1
    pred = tmp_path / "segm.json"
    pred.write_text(json.dumps(results))
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", "iou_type=segm")
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["iou_type"] == "segm"
    assert_stats(result, pycocotools_on_files(gt, pred, "segm"))
    assert 0 < result["map"] < 100


@pytest.mark.parametrize(
    ("which", "text", "message"),
    [
        ("pred", '[{"image_id": 100,\n  "score": }]', "{pred}, line 2, column 12: invalid JSON"),
        ("gt", "", "{gt}, line 1, column 1: invalid JSON (Expecting value)"),
        ("gt", "[]", "{gt}: expected a COCO instances object with 'images'"),
        ("gt", '{"images": [], "annotations": []}', "{gt}: missing key 'categories'; expected"),
        ("pred", '{"image_id": 1}', "{pred}: a JSON dict; expected a list of results"),
    ],
)
def test_bad_file(tmp_path: Path, capsys, which: str, text: str, message: str) -> None:
    gt, pred = coco_files(tmp_path)
    (gt if which == "gt" else pred).write_text(text)
    out = tmp_path / "score.json"
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", f"out={out}")
    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    assert stderr.startswith("error: " + message.format(gt=gt, pred=pred))
    assert stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_id": 999}, "result 2: image_id 999 is not an image of the ground truth"),
        ({"category_id": 2}, "result 2 (image_id {id}): category_id 2 is not a category"),
        ({"bbox": [1, 2, 3]}, "result 2 (image_id {id}): bbox [1, 2, 3] is not [x, y, w, h]"),
        ({"score": "high"}, "result 2 (image_id {id}): score 'high' is not a finite number"),
    ],
)
def test_bad_result_names_its_index_and_id(
    tmp_path: Path, capsys, change: dict, message: str
) -> None:
    gt, pred = coco_files(tmp_path)
    results = json.loads(pred.read_text())
    results[2].update(change)
    pred.write_text(json.dumps(results))
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.startswith(f"error: {pred}, {message.format(id=results[2]['image_id'])}")
    assert stderr.count("\n") == 1


def test_bad_annotation_names_the_gt_file(tmp_path: Path, capsys) -> None:
    gt, pred = coco_files(tmp_path)
    truth = json.loads(gt.read_text())
    del truth["annotations"][4]["area"]
    gt.write_text(json.dumps(truth))
    code, _, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT
    assert stderr.startswith(f"error: {gt}, annotation 4 (id 5): missing 'area'; expected")


def test_missing_file(tmp_path: Path, capsys) -> None:
    gt, pred = coco_files(tmp_path)
    pred.unlink()
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr == f"error: cannot read {pred}: No such file or directory\n"


def test_iou_type_is_for_detection_only(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["task=classification", "gt=g", "pred=p", "iou_type=bbox"])
    assert info.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err == (
        "error: cvbench score task=classification: unknown setting 'iou_type'; "
        "valid: gt=, pred=, out=\n"
    )
    with pytest.raises(SystemExit) as info:
        main(["task=detection", "gt=g", "pred=p", "iou_type=keypoints"])
    assert info.value.code == EXIT_BAD_INPUT
    assert "iou_type=keypoints is not one of bbox, segm" in capsys.readouterr().err


@pytest.mark.slow
def test_the_real_command(tmp_path: Path) -> None:
    gt, pred = coco_files(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "cvbench", "score", "task=detection"] + [f"gt={gt}", f"pred={pred}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no engine progress lines, no warnings
    assert_stats(json.loads(proc.stdout), pycocotools_on_files(gt, pred))

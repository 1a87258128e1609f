"""``cvbench score task=detection iou_type=segm`` on results that carry both a ``bbox`` and a
``segmentation``: ``area_from=box`` gives pycocotools' numbers on the same files (``loadRes``
takes a detection's area from its box), ``area_from=mask`` (the default) those of pycocotools
on the results without their boxes (the mask's area, as detectron2 and MMDetection score).
Only ``map_small``, ``map_medium`` and ``map_large`` differ between the two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from test_score_detection import pycocotools_on_files, run_main

from cvbench.cli.score import EXIT_BAD_INPUT
from cvbench.metrics.coco import COCO_STATS

H, W = 320, 400
AREA_STATS = ("map_small", "map_medium", "map_large")


def band(x: int, y: int, w: int, h: int, width: float) -> np.ndarray:
    """A diagonal band across the box [x, y, w, h]: its mask area is a fraction of the box's,
    so box and mask put many objects in different COCO size ranges."""
    mask = np.zeros((H, W), np.uint8, order="F")
    yy, xx = np.mgrid[0:h, 0:w]
    mask[y : y + h, x : x + w] = np.abs(yy / h - xx / w) < width
    return mask


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def box_of(mask: np.ndarray) -> list[float]:
    return [float(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))]


def files(tmp_path: Path, seed: int = 3) -> tuple[Path, Path, Path]:
    """Ground truth of bands from 20 to 240 pixels wide, results with a bbox and an RLE each
    (shifted masks, misses, false positives of every size), and the same results without
    their boxes."""
    rng = np.random.default_rng(seed)
    gt = {
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "a"}, {"id": 4, "name": "b"}],
    }
    results = []
    for image_id in range(1, 11):
        gt["images"].append({"id": image_id, "width": W, "height": H})
        for _ in range(5):
            w, h = (int(v) for v in rng.integers(20, 240, 2))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            mask = band(x, y, w, h, float(rng.uniform(0.1, 0.5)))
            category = int(rng.choice([1, 4]))
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": box_of(mask),
                    "area": float(mask_utils.area(mask_utils.encode(mask))),
                    "iscrowd": 0,
                    "segmentation": rle_of(mask),
                }
            )
            if rng.random() < 0.85:
                shifted = np.roll(mask, tuple(int(v) for v in rng.integers(-4, 5, 2)), (0, 1))
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": category,
                        "bbox": box_of(shifted),
                        "segmentation": rle_of(shifted),
                        "score": float(rng.uniform(0.3, 1)),
                    }
                )
        for _ in range(3):  # false positives, small to large
            w, h = (int(v) for v in rng.integers(10, 200, 2))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            mask = band(x, y, w, h, float(rng.uniform(0.05, 0.3)))
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(rng.choice([1, 4])),
                    "bbox": box_of(mask),
                    "segmentation": rle_of(mask),
                    "score": float(rng.uniform(0, 0.7)),
                }
            )
    (tmp_path / "instances.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(results))
    boxless = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    (tmp_path / "boxless.json").write_text(json.dumps(boxless))
    return tmp_path / "instances.json", tmp_path / "results.json", tmp_path / "boxless.json"


def assert_stats(got: dict, expected: dict) -> None:
    for key in COCO_STATS:
        assert expected[key] is not None, key  # the fixture fills every size range
        assert got[key] == pytest.approx(expected[key], abs=1e-9), key


def test_box_and_mask_areas_against_pycocotools(tmp_path: Path, capsys) -> None:
    gt, pred, boxless = files(tmp_path)
    scored = {}
    for setting in ("area_from=box", "area_from=mask", None):
        code, out, err = run_main(
            capsys, f"gt={gt}", f"pred={pred}", "iou_type=segm", *([setting] if setting else [])
        )
        assert code == 0, err
        scored[setting] = json.loads(out)
    by_box, by_mask = scored["area_from=box"], scored["area_from=mask"]
    assert by_box["area_from"] == "box" and by_mask["area_from"] == "mask"
    assert scored[None] == by_mask  # the default
    assert_stats(by_box, pycocotools_on_files(gt, pred, "segm"))  # loadRes: area of the bbox
    assert_stats(by_mask, pycocotools_on_files(gt, boxless, "segm"))  # loadRes: the mask area
    differ = [k for k in COCO_STATS if by_box[k] != pytest.approx(by_mask[k], abs=1e-9)]
    assert differ == list(AREA_STATS)


def test_box_area_needs_a_bbox_in_every_result(tmp_path: Path, capsys) -> None:
    gt, _, boxless = files(tmp_path)
    code, out, err = run_main(
        capsys, f"gt={gt}", f"pred={boxless}", "iou_type=segm", "area_from=box"
    )
    assert code == EXIT_BAD_INPUT and out == ""
    assert err == (
        f"error: {boxless}, result 0: missing 'bbox'; area_from=box takes each detection's "
        "area from its bbox (area_from=mask: from its mask)\n"
    )


def test_bbox_scores_carry_no_area_setting(tmp_path: Path, capsys) -> None:
    gt, pred, _ = files(tmp_path)
    code, out, err = run_main(capsys, f"gt={gt}", f"pred={pred}")
    assert code == 0, err
    assert "area_from" not in json.loads(out)

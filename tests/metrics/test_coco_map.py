"""COCO detection metrics against pycocotools ``COCOeval`` run directly, on cases built to hit
its corners, and the ``CocoMAP`` metric under batching, sampler padding and two real processes."""

from __future__ import annotations

import contextlib
import copy
import doctest
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DistributedSampler

import cvbench.metrics.coco as coco_module
import cvbench.metrics.coco_map as coco_map_module
from cvbench.metrics.coco import COCO_STATS, coco_evaluate
from cvbench.metrics.coco_files import check_ground_truth, check_results
from cvbench.metrics.coco_map import CocoMAP, DetectionGroundTruth

ENGINES = ("faster_coco_eval", "pycocotools")


# --- the reference: pycocotools as its README runs it ---------------------------------------


def reference(
    gt: dict, results: list[dict], *, image_ids=None, category_ids=None, iou_type="bbox"
) -> np.ndarray:
    """100 x ``COCOeval.stats`` (-1 kept as -1) of pycocotools on deep copies."""
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes([]) raises IndexError: an index with no annotations instead
            coco_dt = COCO()
            coco_dt.dataset = {**gt, "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        if category_ids is not None:
            ev.params.catIds = list(category_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=np.float64)
    return np.where(stats == -1, -1.0, 100.0 * stats)


def assert_equal_to_reference(got: dict, expected: np.ndarray) -> None:
    assert list(got) == list(COCO_STATS)
    for key, value in zip(COCO_STATS, expected, strict=True):
        if value == -1:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, abs=1e-9), key
            assert isinstance(got[key], float)


# --- cases --------------------------------------------------------------------------------------


def q(x: float) -> float:
    """Quarter pixels: box arithmetic is exact in float64 and in xyxy <-> xywh."""
    return float(np.round(x * 4) / 4)


def ann(i: int, image_id: int, category_id: int, bbox, *, area=None, crowd=0) -> dict:
    area = bbox[2] * bbox[3] if area is None else area
    return {
        "id": i,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": list(bbox),
        "area": float(area),
        "iscrowd": crowd,
    }


def det(image_id: int, category_id: int, bbox, score: float) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox), "score": score}


def images(*ids: int, size=(640, 480)) -> list[dict]:
    return [{"id": i, "file_name": f"{i}.jpg", "width": size[0], "height": size[1]} for i in ids]


def categories(*ids: int) -> list[dict]:
    return [{"id": c, "name": f"class{c}"} for c in ids]


def crowd_case() -> tuple[dict, list[dict]]:
    """Detections inside a crowd region are ignored, not false positives; a crowd region is
    not a positive to find; a detection may match a crowd region after a real object."""
    gt = {
        "images": images(1, 2),
        "annotations": [
            ann(1, 1, 1, [0, 0, 200, 200], crowd=1),
            ann(2, 1, 1, [300, 300, 50, 50]),
            ann(3, 2, 1, [10, 10, 40, 40]),
            ann(4, 2, 1, [100, 100, 300, 200], crowd=1),
        ],
        "categories": categories(1),
    }
    results = [
        det(1, 1, [10, 10, 30, 30], 0.95),  # inside the crowd: ignored
        det(1, 1, [20, 20, 60, 60], 0.9),  # inside the crowd: ignored
        det(1, 1, [300, 300, 50, 50], 0.5),  # the object
        det(1, 1, [302, 298, 50, 50], 0.85),  # near duplicate of the object
        det(2, 1, [12, 10, 40, 40], 0.7),
        det(2, 1, [110, 110, 50, 50], 0.8),  # in crowd 4
        det(2, 1, [500, 10, 40, 40], 0.99),  # a false positive
    ]
    return gt, results


def area_case() -> tuple[dict, list[dict]]:
    """The ``area`` field (mask area) decides small/medium/large, not the box; bounds are
    inclusive (1024 is small and medium, 9216 medium and large)."""
    gt = {
        "images": images(3, 4),
        "annotations": [
            ann(1, 3, 2, [0, 0, 100, 100], area=500),  # a large box, a small mask
            ann(2, 3, 2, [200, 0, 20, 20], area=2000),  # a small box, a medium mask
            ann(3, 3, 2, [300, 0, 32, 32], area=1024),
            ann(4, 4, 2, [0, 200, 96, 96], area=9216),
            ann(5, 4, 2, [300, 200, 150, 120]),
            ann(6, 4, 2, [0, 0, 5, 5]),
        ],
        "categories": categories(2),
    }
    results = [
        det(3, 2, [0, 0, 100, 100], 0.9),
        det(3, 2, [201, 1, 20, 20], 0.8),
        det(3, 2, [300, 0, 32, 30], 0.7),
        det(4, 2, [0, 200, 90, 96], 0.95),
        det(4, 2, [310, 200, 150, 120], 0.6),
        det(4, 2, [1, 1, 5, 5], 0.3),
        det(4, 2, [400, 400, 10, 10], 0.85),  # small false positive (detection area 100)
        det(4, 2, [100, 300, 200, 150], 0.75),  # large false positive
    ]
    return gt, results


def many_detections_case() -> tuple[dict, list[dict]]:
    """150 detections of one class in one image: maxDets 100 cuts the good low-scored ones,
    maxDets 1 and 10 cut more."""
    gt = {
        "images": images(1),
        "annotations": [
            ann(i + 1, 1, 5, [q(40 * (i % 15)), q(40 * (i // 15)), 30, 30]) for i in range(30)
        ],
        "categories": categories(5, 6),
    }
    rng = np.random.default_rng(3)
    results = [
        det(
            1,
            5,
            [q(rng.uniform(0, 600)), q(rng.uniform(0, 440)), 30, 30],
            q(0.3 + 0.6 * rng.random()),
        )
        for _ in range(120)
    ]
    results += [det(1, 5, a["bbox"], 0.1) for a in gt["annotations"]]  # exact but last
    results += [det(1, 6, [0, 0, 10, 10], 0.5)] * 3  # a category with no ground truth
    return gt, results


def empty_images_case() -> tuple[dict, list[dict]]:
    """Images without ground truth (with and without detections); categories with ground
    truth and no detections, with detections and no ground truth, with neither."""
    gt = {
        "images": images(10, 11, 12, 13),
        "annotations": [
            ann(1, 10, 1, [10, 10, 50, 50]),
            ann(2, 10, 2, [100, 100, 50, 50]),  # category 2: never detected
            ann(3, 13, 1, [10, 10, 80, 80]),
        ],
        "categories": categories(1, 2, 3, 4),  # 3: detections only; 4: nothing at all
    }
    results = [
        det(10, 1, [12, 10, 50, 50], 0.9),
        det(11, 1, [10, 10, 50, 50], 0.95),  # image 11 has no ground truth
        det(11, 3, [10, 10, 50, 50], 0.5),
        det(13, 1, [10, 10, 80, 70], 0.4),
    ]
    return gt, results


def ties_case() -> tuple[dict, list[dict]]:
    """Equal scores within an image and across images: the order of the results decides."""
    gt = {
        "images": images(1, 2, 3),
        "annotations": [
            ann(1, 1, 1, [0, 0, 50, 50]),
            ann(2, 2, 1, [0, 0, 50, 50]),
            ann(3, 3, 1, [100, 100, 20, 20]),
        ],
        "categories": categories(1),
    }
    results = [
        det(1, 1, [200, 200, 50, 50], 0.5),  # false positive tied with true positives
        det(1, 1, [0, 0, 50, 50], 0.5),
        det(2, 1, [300, 300, 50, 50], 0.5),
        det(2, 1, [1, 0, 50, 50], 0.5),
        det(3, 1, [100, 100, 20, 20], 0.5),
        det(3, 1, [101, 101, 20, 20], 0.5),  # a duplicate: false positive
    ]
    return gt, results


def noncontiguous_case() -> tuple[dict, list[dict]]:
    """Category ids 1, 7, 90 (COCO's have gaps); image ids not 0..N-1."""
    gt = {
        "images": images(1000, 7, 123456),
        "annotations": [
            ann(11, 1000, 90, [10, 10, 100, 100]),
            ann(12, 1000, 7, [200, 200, 50, 50]),
            ann(13, 7, 1, [5, 5, 20, 20]),
            ann(14, 123456, 90, [0, 0, 300, 300]),
        ],
        "categories": categories(90, 1, 7),  # not sorted either
    }
    results = [
        det(1000, 90, [12, 10, 100, 100], 0.8),
        det(1000, 7, [200, 200, 50, 50], 0.6),
        det(1000, 1, [200, 200, 50, 50], 0.7),  # right box, wrong category
        det(7, 1, [5, 5, 20, 20], 0.9),
        det(123456, 90, [0, 0, 250, 300], 0.5),
    ]
    return gt, results


def zero_detections_case() -> tuple[dict, list[dict]]:
    gt, _ = area_case()
    return gt, []


def random_case(
    seed: int, *, num_images: int = 50, category_ids=(1, 7, 90, 13, 44)
) -> tuple[dict, list[dict]]:
    """Random images (10% without objects), objects from 2 to 300 pixels wide with mask areas
    below box areas, 10% crowd, jittered detections (some in the wrong class), false
    positives, one image past 100 detections, scores on a 0.05 grid (many ties)."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": categories(*category_ids)}
    results = []
    image_ids = rng.choice(100_000, num_images, replace=False) + 1
    for n, image_id in enumerate(image_ids.tolist()):
        width, height = (int(v) for v in rng.integers(320, 800, 2))
        gt["images"].append(
            {"id": image_id, "file_name": f"{image_id}.jpg", "width": width, "height": height}
        )
        num_objects = 0 if rng.random() < 0.1 else int(rng.integers(1, 12))
        for _ in range(num_objects):
            w, h = (q(np.exp(rng.uniform(np.log(2), np.log(300)))) for _ in range(2))
            x, y = q(rng.uniform(0, width - w)), q(rng.uniform(0, height - h))
            category = int(rng.choice(category_ids))
            crowd = int(rng.random() < 0.1)
            gt["annotations"].append(
                ann(
                    len(gt["annotations"]) + 1,
                    image_id,
                    category,
                    [x, y, w, h],
                    area=w * h * rng.uniform(0.4, 1),
                    crowd=crowd,
                )
            )
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
                box = [
                    q(x + jitter[0]),
                    q(y + jitter[1]),
                    q(max(w + jitter[2], 1)),
                    q(max(h + jitter[3], 1)),
                ]
                label = category if rng.random() < 0.9 else int(rng.choice(category_ids))
                results.append(det(image_id, label, box, q(rng.random() * 20) / 20))
        num_false = 130 if n == 0 else int(rng.integers(0, 15))
        for _ in range(num_false):
            w, h = q(rng.uniform(4, 200)), q(rng.uniform(4, 200))
            box = [q(rng.uniform(0, width - w)), q(rng.uniform(0, height - h)), w, h]
            label = category_ids[0] if n == 0 else int(rng.choice(category_ids))
            results.append(det(image_id, label, box, q(rng.random() * 20) / 20))
    return gt, results


CASES = {
    "crowd": crowd_case,
    "area": area_case,
    "many_detections": many_detections_case,
    "empty_images": empty_images_case,
    "ties": ties_case,
    "noncontiguous": noncontiguous_case,
    "zero_detections": zero_detections_case,
    "random0": lambda: random_case(0),
    "random1": lambda: random_case(1),
}


# --- coco_evaluate ------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [coco_module, coco_map_module], ids=["coco", "coco_map"])
def test_doctests(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", list(CASES))
def test_stats_equal_pycocotools(case: str, engine: str) -> None:
    gt, results = CASES[case]()
    gt_before, results_before = copy.deepcopy(gt), copy.deepcopy(results)
    scores = coco_evaluate(gt, results, engine=engine)
    assert_equal_to_reference(scores.stats, reference(gt, results))
    assert gt == gt_before and results == results_before  # nothing written into the inputs


@pytest.mark.parametrize(
    "case", ["crowd", "area", "many_detections", "empty_images", "ties", "noncontiguous", "random0"]
)
def test_per_class_equals_pycocotools_on_one_category(case: str) -> None:
    """Each class's AP, AP50, AP75 are pycocotools' stats with params.catIds = [that class]."""
    gt, results = CASES[case]()
    scores = coco_evaluate(gt, results)
    ids = sorted(c["id"] for c in gt["categories"])
    assert [c["category_id"] for c in scores.per_class] == ids
    for row in scores.per_class:
        expected = reference(gt, results, category_ids=[row["category_id"]])
        for key, value in zip(("ap", "ap_50", "ap_75"), expected[:3], strict=True):
            assert row[key] == (None if value == -1 else pytest.approx(value, abs=1e-9))
        assert row["name"] == f"class{row['category_id']}"
        assert row["num_gt"] == sum(
            a["category_id"] == row["category_id"] and not a["iscrowd"] for a in gt["annotations"]
        )
        assert row["num_det"] == sum(r["category_id"] == row["category_id"] for r in results)


def test_known_answers() -> None:
    """Hand-computed: a crowd-only category scores None; 1 of 2 objects found at rank 1 of 2."""
    gt = {
        "images": images(1),
        "annotations": [
            ann(1, 1, 1, [0, 0, 100, 100]),
            ann(2, 1, 1, [200, 200, 100, 100]),
            ann(3, 1, 2, [0, 0, 100, 100], crowd=1),
        ],
        "categories": categories(1, 2),
    }
    results = [
        det(1, 1, [0, 0, 100, 100], 0.9),
        det(1, 1, [400, 0, 50, 50], 0.8),
        det(1, 2, [0, 0, 90, 90], 0.7),
    ]
    scores = coco_evaluate(gt, results)
    # precision 1 at recall 0..0.5 (51 of 101 recall points), 0 beyond: AP = 51/101
    assert scores.stats["map"] == pytest.approx(100 * 51 / 101, abs=1e-12)
    assert scores.stats["map_small"] is None and scores.stats["map_medium"] is None
    assert scores.stats["mar_1"] == 50.0 and scores.stats["mar_100"] == 50.0
    assert scores.per_class[1] == {
        "category_id": 2,
        "name": "class2",
        "ap": None,
        "ap_50": None,
        "ap_75": None,
        "num_gt": 0,
        "num_det": 1,
    }


def test_zero_detections_score_zero_where_there_is_ground_truth() -> None:
    gt, _ = area_case()  # no object is large... by area field? 5 (150x120) is large
    scores = coco_evaluate(gt, [])
    assert all(v == 0.0 for v in scores.stats.values())
    gt["annotations"] = [a for a in gt["annotations"] if a["area"] < 96**2]
    scores = coco_evaluate(gt, [])
    assert scores.stats["map_large"] is None and scores.stats["mar_large"] is None
    assert scores.stats["map"] == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_image_ids_restrict_the_evaluation(engine: str) -> None:
    gt, results = random_case(2, num_images=20)
    some = [image["id"] for image in gt["images"][::3]]
    scores = coco_evaluate(gt, results, engine=engine, image_ids=some)
    assert_equal_to_reference(scores.stats, reference(gt, results, image_ids=some))
    kept = [r for r in results if r["image_id"] in some]  # the others do not count
    assert_equal_to_reference(
        coco_evaluate(gt, kept, engine=engine, image_ids=some).stats,
        reference(gt, results, image_ids=some),
    )
    assert sum(c["num_det"] for c in scores.per_class) == len(kept)
    with pytest.raises(ValueError, match="image_ids: 999999 is not an image"):
        coco_evaluate(gt, results, image_ids=[999999])


def test_annotation_ids_zero_or_repeated_are_renumbered() -> None:
    """pycocotools reads annotation id 0 as 'unmatched' and keeps one of repeated ids;
    cvbench scores such a file as pycocotools scores it with ids 1..N."""
    gt, results = crowd_case()
    renumbered = copy.deepcopy(gt)
    for i, a in enumerate(renumbered["annotations"]):
        a["id"] = i + 1
    expected = reference(renumbered, results)
    for ids in ([0, 1, 2, 3], [5, 5, 6, 6]):
        for a, i in zip(gt["annotations"], ids, strict=True):
            a["id"] = i
        assert_equal_to_reference(coco_evaluate(gt, results).stats, expected)
    assert not np.allclose(reference(gt, results)[:3], expected[:3])  # pycocotools itself differs


def test_missing_iscrowd_means_zero() -> None:
    gt, results = noncontiguous_case()
    expected = reference(gt, results)
    for a in gt["annotations"]:
        del a["iscrowd"]
    assert_equal_to_reference(coco_evaluate(gt, results).stats, expected)


def test_engine_does_not_print(capsys) -> None:
    gt, results = crowd_case()
    for engine in ENGINES:
        coco_evaluate(gt, results, engine=engine)
        coco_evaluate(gt, [], engine=engine)
    assert capsys.readouterr().out == ""


def test_unknown_engine_or_iou_type() -> None:
    gt, results = crowd_case()
    with pytest.raises(ValueError, match="engine 'detectron'"):
        coco_evaluate(gt, results, engine="detectron")
    with pytest.raises(ValueError, match="iou_type 'keypoints'"):
        coco_evaluate(gt, results, iou_type="keypoints")


# --- segm ---------------------------------------------------------------------------------------


def segm_case() -> tuple[dict, list[dict]]:
    """Polygon and RLE ground truth (a crowd RLE), RLE results that also carry a bbox."""
    h, w = 60, 80
    rng = np.random.default_rng(4)

    def rle(mask: np.ndarray, *, text: bool = True) -> dict:
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {
            "size": encoded["size"],
            "counts": encoded["counts"].decode() if text else encoded["counts"],
        }

    def blob(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        mask = np.zeros((h, w), bool)
        mask[y0:y1, x0:x1] = True
        mask[y0 : (y0 + y1) // 2, x0 : (x0 + x1) // 2] = False  # an L shape: box area > mask area
        return mask

    crowd_mask = np.zeros((h, w), bool)
    crowd_mask[40:60, 0:30] = True
    gt = {
        "images": images(1, 2, size=(w, h)),
        "annotations": [
            {
                **ann(1, 1, 1, [10, 10, 20, 20], area=300.0),
                "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]],
            },
            {
                **ann(2, 1, 1, [40, 5, 30, 40], area=float(blob(40, 5, 70, 45).sum())),
                "segmentation": rle(blob(40, 5, 70, 45)),
            },
            {
                **ann(3, 1, 1, [0, 40, 30, 20], area=600.0, crowd=1),
                "segmentation": {"size": [h, w], "counts": _uncompressed(crowd_mask)},
            },
            {
                **ann(4, 2, 3, [5, 5, 50, 50], area=float(blob(5, 5, 55, 55).sum())),
                "segmentation": rle(blob(5, 5, 55, 55)),
            },
        ],
        "categories": categories(1, 3),
    }
    results = []
    for image_id, category, (x0, y0, x1, y1) in [
        (1, 1, (11, 10, 30, 31)),
        (1, 1, (40, 6, 70, 45)),
        (1, 1, (2, 42, 20, 58)),  # on the crowd
        (1, 1, (60, 40, 79, 59)),
        (2, 3, (5, 5, 54, 55)),
        (2, 1, (5, 5, 55, 55)),
    ]:
        mask = (
            blob(x0, y0, x1, y1)
            if rng.random() < 0.5
            else np.pad(np.ones((y1 - y0, x1 - x0), bool), ((y0, h - y1), (x0, w - x1)))
        )
        results.append(
            {
                "image_id": image_id,
                "category_id": category,
                "segmentation": rle(mask),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(rng.random()),
            }
        )
    return gt, results


def _uncompressed(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts (column-major runs, starting with zeros)."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], change])).tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_segm_equals_pycocotools_without_the_results_bbox(engine: str) -> None:
    gt, results = segm_case()
    check_ground_truth(gt, where="gt.json", iou_type="segm")
    check_results(results, gt, where="r.json", iou_type="segm")
    without_bbox = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    scores = coco_evaluate(gt, results, iou_type="segm", engine=engine)
    assert_equal_to_reference(scores.stats, reference(gt, without_bbox, iou_type="segm"))
    assert scores.stats["map"] not in (None, 0.0, 100.0)


# --- CocoMAP ------------------------------------------------------------------------------------


def ground_truth_of(gt: dict) -> DetectionGroundTruth:
    return DetectionGroundTruth(
        coco=gt,
        image_ids=[image["id"] for image in gt["images"]],
        category_ids=sorted(c["id"] for c in gt["categories"]),
    )


def predictions(
    gt: dict, results: list[dict], dtype=torch.float64
) -> list[dict[str, torch.Tensor]]:
    """Per dataset index, the results as a torchvision detector's output (labels 1..K)."""
    truth = ground_truth_of(gt)
    label_of = {c: i + 1 for i, c in enumerate(truth.category_ids)}
    preds = []
    for image_id in truth.image_ids:
        mine = [r for r in results if r["image_id"] == image_id]
        xywh = torch.tensor([r["bbox"] for r in mine], dtype=dtype).reshape(-1, 4)
        preds.append(
            {
                "boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1),
                "scores": torch.tensor([r["score"] for r in mine], dtype=dtype),
                "labels": torch.tensor(
                    [label_of[r["category_id"]] for r in mine], dtype=torch.int64
                ),
            }
        )
    return preds


def update_in_batches(metric: CocoMAP, preds: list[dict], order: list[int], batch: int = 4) -> None:
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        metric.update([preds[i] for i in rows], torch.tensor(rows))


def as_set(results: list[dict]) -> list[tuple]:
    return sorted((r["image_id"], r["category_id"], tuple(r["bbox"]), r["score"]) for r in results)


def test_cocomap_in_batches_equals_pycocotools_with_original_ids() -> None:
    gt, results = random_case(5, num_images=30)
    preds = predictions(gt, results)
    metric = CocoMAP(ground_truth=ground_truth_of(gt))
    update_in_batches(metric, preds, list(range(len(preds))))
    out = metric.compute()
    assert out.pop("num_images") == 30
    assert_equal_to_reference(out, reference(gt, results))
    # the same detections, with the dataset's image and category ids (1, 7, 13, 44, 90)
    assert as_set(metric.last_results) == as_set(results)
    assert all(isinstance(v, float) for r in metric.last_results for v in r["bbox"])
    assert metric.last_scores is not None and len(metric.last_scores.per_class) == 5


def test_cocomap_keeps_one_copy_of_a_repeated_image() -> None:
    """Padding repeats images within a batch and across batches: the first copy counts once
    (the repeats here carry other detections, so counting or keeping one would show)."""
    gt, results = random_case(6, num_images=20)
    preds = predictions(gt, results)
    expected = reference(gt, results)
    wrong = predictions(gt, random_case(7, num_images=20)[1])  # other boxes for the repeats
    metric = CocoMAP(ground_truth=ground_truth_of(gt))
    update_in_batches(metric, preds, list(range(20)))
    metric.update([wrong[0], wrong[3], wrong[3]], torch.tensor([0, 3, 3]))
    metric.update([preds[5], preds[5]], torch.tensor([5, 5]))
    out = metric.compute()
    assert out.pop("num_images") == 20
    assert_equal_to_reference(out, expected)
    assert as_set(metric.last_results) == as_set(results)


def test_cocomap_sampler_shards_concatenated_as_the_gather_does() -> None:
    """3 processes' shards of 20 images (DistributedSampler pads to 21 by repeating index 0),
    updated in the order the gather concatenates them."""
    gt, results = random_case(8, num_images=20)
    preds = predictions(gt, results)
    metric = CocoMAP(ground_truth=ground_truth_of(gt))
    seen = []
    for rank in range(3):
        shard = list(DistributedSampler(range(20), num_replicas=3, rank=rank, shuffle=True, seed=1))
        seen += shard
        update_in_batches(metric, preds, shard, batch=3)
    assert len(seen) == 21 and len(set(seen)) == 20
    out = metric.compute()
    assert out.pop("num_images") == 20
    assert_equal_to_reference(out, reference(gt, results))


def test_cocomap_scores_only_the_images_seen() -> None:
    gt, results = random_case(9, num_images=12)
    preds = predictions(gt, results, dtype=torch.float32)  # quarter pixels: exact in float32
    metric = CocoMAP(ground_truth=ground_truth_of(gt), engine="pycocotools")
    update_in_batches(metric, preds, [0, 2, 4, 6, 8, 10])
    out = metric.compute()
    seen = [gt["images"][i]["id"] for i in (0, 2, 4, 6, 8, 10)]
    assert out.pop("num_images") == 6
    assert metric.last_image_ids == seen
    assert_equal_to_reference(out, reference(gt, results, image_ids=seen))


def test_cocomap_errors() -> None:
    gt, results = crowd_case()
    preds = predictions(gt, results)
    metric = CocoMAP()
    metric.update(preds, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="ground_truth is not set"):
        metric.compute()
    with pytest.raises(ValueError, match="2 predictions for 1 dataset indices"):
        metric.update(preds, torch.tensor([0]))
    with pytest.raises(ValueError, match="engine 'fast'"):
        CocoMAP(engine="fast")
    bad_inputs = [
        (
            {**preds[0], "labels": torch.zeros_like(preds[0]["labels"])},
            0,
            r"label 0; expected 1..1 \(0 is the background",
        ),
        ({**preds[0], "labels": preds[0]["labels"] + 1}, 0, "label 2; expected 1..1"),
        (preds[0], 2, "dataset index 2 but the ground truth has 2 images"),
        (
            {**preds[1], "scores": preds[1]["scores"] * float("nan")},
            1,
            r"image 2 \(dataset index 1\) has a non-finite",
        ),
    ]
    for pred, index, message in bad_inputs:
        metric = CocoMAP(ground_truth=ground_truth_of(gt))
        metric.update([pred], torch.tensor([index]))
        with pytest.raises(ValueError, match=message):
            metric.compute()


def test_cocomap_with_no_detections_and_no_update() -> None:
    gt, _ = area_case()
    metric = CocoMAP(ground_truth=ground_truth_of(gt))
    with pytest.warns(UserWarning, match="called before the ``update``"):
        assert metric.compute() == {**dict.fromkeys(COCO_STATS), "num_images": 0}
    empty = {
        "boxes": torch.zeros(0, 4),
        "scores": torch.zeros(0),
        "labels": torch.zeros(0, dtype=torch.int64),
    }
    metric.update([empty, empty], torch.tensor([0, 1]))
    metric._computed = None
    out = metric.compute()
    assert out.pop("num_images") == 2
    assert_equal_to_reference(out, reference(gt, []))


def _gloo_case(case: str) -> tuple[dict, list[dict], list[dict[str, torch.Tensor]]]:
    """Ground truth, COCO results and the detector's predictions of a two-process test:
    ``random`` (15 images), ``no_detections`` (the random case with none), ``segm``
    (``segm_case``, masks as bool (N, H, W) at the image's size)."""
    if case == "segm":
        gt, results = segm_case()
        preds = predictions(gt, results)
        for image, pred in zip(gt["images"], preds, strict=True):
            rles = [r["segmentation"] for r in results if r["image_id"] == image["id"]]
            pred["masks"] = torch.from_numpy(mask_utils.decode(rles)).permute(2, 0, 1).bool()
        return gt, results, preds
    gt, results = random_case(10, num_images=15)
    if case == "no_detections":
        results = []
    return gt, results, predictions(gt, results)


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list | None) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        case, shards = shards if shards is not None else ("random", None)
        gt, _, preds = _gloo_case(case)
        iou_types = ("bbox", "segm") if case == "segm" else ("bbox",)
        metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=iou_types)
        if shards is None:
            sampler = DistributedSampler(range(15), num_replicas=world, rank=rank, shuffle=False)
            shard = list(sampler)
        else:
            shard = shards[rank]
        update_in_batches(metric, preds, shard, batch=2)
        result = metric.compute()
        Path(out, f"{rank}.json").write_text(
            json.dumps(
                {
                    "stats": result,
                    "results": metric.last_results,
                    "segm_results": metric.last_segm_results,
                    "image_ids": metric.last_image_ids,
                }
            )
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_cocomap_two_processes_gather_once(tmp_path: Path) -> None:
    """Two gloo processes, 15 images (rank 1's shard repeats image 0): every rank computes the
    single-process stats from the gathered detections."""
    outputs = run_two_processes(_ddp_worker, tmp_path)
    gt, results = random_case(10, num_images=15)
    expected = reference(gt, results)
    for got in outputs:
        stats = got["stats"]
        assert stats.pop("num_images") == 15
        assert_equal_to_reference(stats, expected)
        assert as_set([{**r, "bbox": tuple(r["bbox"])} for r in got["results"]]) == as_set(results)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_rank", [0, 1])
def test_cocomap_two_processes_one_without_images(tmp_path: Path, empty_rank: int) -> None:
    """One process never updates: torchmetrics sends 1-D float32 placeholders for its states,
    which gloo cannot gather with the other's int64 slots, (D, 4) float64 boxes... Both
    processes score every image as one process does (pycocotools on all 15 images)."""
    order = [0, *range(15), 7]  # with repeats
    shards = [order, []] if empty_rank == 1 else [[], order]
    outputs = run_two_processes(_ddp_worker, tmp_path, ("random", shards))
    gt, results, _ = _gloo_case("random")
    expected = reference(gt, results)
    for got in outputs:
        assert got["stats"].pop("num_images") == 15
        assert_equal_to_reference(got["stats"], expected)
        assert as_set([{**r, "bbox": tuple(r["bbox"])} for r in got["results"]]) == as_set(results)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_rank", [0, 1])
def test_cocomap_two_processes_no_detections_anywhere(tmp_path: Path, empty_rank: int) -> None:
    """The detector finds nothing and one process sees no image: every detection state is
    empty on both processes (the real empty (0, 4) float64 boxes on one, the placeholder on the
    other), and the images seen still score as pycocotools scores zero detections."""
    shards = [[3, 1, 4], []] if empty_rank == 1 else [[], [3, 1, 4]]
    outputs = run_two_processes(_ddp_worker, tmp_path, ("no_detections", shards))
    gt, _, _ = _gloo_case("no_detections")
    seen = [gt["images"][i]["id"] for i in (1, 3, 4)]
    expected = reference(gt, [], image_ids=seen)
    for got in outputs:
        assert got["stats"].pop("num_images") == 3
        assert got["image_ids"] == seen
        assert_equal_to_reference(got["stats"], expected)
        assert got["results"] == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("empty_rank", [0, 1])
def test_cocomap_segm_two_processes_one_without_images(tmp_path: Path, empty_rank: int) -> None:
    """Masks too: the uint8 RLE bytes and (D, 2) sizes gather with a process that saw nothing;
    box and mask stats equal pycocotools' on the same results."""
    shards = [[1, 0, 1], []] if empty_rank == 1 else [[], [1, 0, 1]]
    outputs = run_two_processes(_ddp_worker, tmp_path, ("segm", shards))
    gt, results, _ = _gloo_case("segm")
    boxes_only = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    masks_only = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    expected_box = reference(gt, boxes_only)
    expected_mask = reference(gt, masks_only, iou_type="segm")
    assert expected_mask[0] not in (-1.0, 0.0, 100.0)  # the masks' AP is really scored
    for got in outputs:
        stats = got["stats"]
        assert stats.pop("num_images") == 2
        assert_equal_to_reference({k: stats[k] for k in COCO_STATS}, expected_box)
        assert_equal_to_reference({k: stats[f"mask_{k}"] for k in COCO_STATS}, expected_mask)
        counts = sorted(r["segmentation"]["counts"] for r in got["segm_results"])
        assert counts == sorted(r["segmentation"]["counts"] for r in results)


# --- input checks -------------------------------------------------------------------------------


GT = {
    "images": images(1, 2),
    "annotations": [ann(1, 1, 7, [0, 0, 10, 10])],
    "categories": categories(7),
}
GOOD = {"image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10], "score": 0.5}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            {**GOOD, "image_id": 999},
            "r.json, result 1: image_id 999 is not an image of the ground truth",
        ),
        ({**GOOD, "image_id": "1"}, "r.json, result 1: image_id '1' is not an image"),
        (
            {**GOOD, "category_id": 3},
            "r.json, result 1 (image_id 1): category_id 3 is not a category",
        ),
        (
            {k: v for k, v in GOOD.items() if k != "score"},
            "r.json, result 1: missing 'score'; expected {\"image_id\"",
        ),
        (
            {**GOOD, "bbox": [0, 0, 10]},
            "r.json, result 1 (image_id 1): bbox [0, 0, 10] is not [x, y, w, h]",
        ),
        (
            {**GOOD, "bbox": [0, 0, -1, 10]},
            "r.json, result 1 (image_id 1): bbox [0, 0, -1, 10] has a negative width",
        ),
        (
            {**GOOD, "bbox": [0, float("nan"), 1, 10]},
            "r.json, result 1 (image_id 1): bbox [0, nan, 1, 10] is not [x, y, w, h] of 4 finite",
        ),
        (
            {**GOOD, "bbox": [0, True, 1, 10]},
            "r.json, result 1 (image_id 1): bbox [0, True, 1, 10] is not [x, y, w, h] of 4 finite",
        ),
        (
            {**GOOD, "score": float("inf")},
            "r.json, result 1 (image_id 1): score inf is not a finite number",
        ),
        ({**GOOD, "score": None}, "r.json, result 1 (image_id 1): score None is not a finite"),
        ([1, 2], "r.json, result 1: a JSON list; expected an object"),
    ],
)
def test_check_results_names_file_result_and_id(result, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_results([GOOD, result], GT, where="r.json")
    assert str(info.value).startswith(message)


def test_check_results_accepts_good_results_and_checks_the_container() -> None:
    check_results([GOOD, {**GOOD, "image_id": 2, "bbox": [0.5, 1, 0, 0]}], GT, where="r.json")
    check_results([], GT, where="r.json")
    with pytest.raises(ValueError, match=r"r.json: a JSON dict; expected a list of results \{"):
        check_results({"annotations": []}, GT, where="r.json")
    with pytest.raises(ValueError, match="ground truth: missing key 'categories'"):
        check_results([GOOD], {"images": [], "annotations": []}, where="r.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.pop("annotations"), "gt.json: missing key 'annotations'; expected a COCO"),
        (lambda g: g.update(images={}), "gt.json: 'images' is a dict; expected a list"),
        (lambda g: g["images"].append({"id": 1}), "gt.json, images 2: id 1 is repeated"),
        (
            lambda g: g["categories"].append({"id": "8"}),
            "gt.json, categories 1: id '8' is not an integer",
        ),
        (lambda g: g["annotations"][0].pop("area"), "gt.json, annotation 0 (id 1): missing 'area'"),
        (
            lambda g: g["annotations"][0].update(image_id=5),
            "gt.json, annotation 0 (id 1): image_id 5 is not in 'images'",
        ),
        (
            lambda g: g["annotations"][0].update(category_id=1),
            "gt.json, annotation 0 (id 1): category_id 1 is not in 'categories'",
        ),
        (
            lambda g: g["annotations"][0].update(bbox=[0, 0, 1]),
            "gt.json, annotation 0 (id 1): bbox [0, 0, 1] is not",
        ),
        (
            lambda g: g["annotations"][0].update(area=float("nan")),
            "gt.json, annotation 0 (id 1): area nan is not a finite number >= 0",
        ),
        (
            lambda g: g["annotations"][0].update(iscrowd=2),
            "gt.json, annotation 0 (id 1): iscrowd 2; expected 0 or 1",
        ),
    ],
)
def test_check_ground_truth_names_file_and_annotation(change, message: str) -> None:
    gt = copy.deepcopy(GT)
    check_ground_truth(gt, where="gt.json")
    change(gt)
    with pytest.raises(ValueError) as info:
        check_ground_truth(gt, where="gt.json")
    assert str(info.value).startswith(message)


def test_check_ground_truth_for_segm_needs_masks_and_sizes() -> None:
    gt = copy.deepcopy(GT)
    with pytest.raises(ValueError, match=r"annotation 0 \(id 1\): missing 'segmentation'"):
        check_ground_truth(gt, where="gt.json", iou_type="segm")
    del gt["images"][1]["height"]
    with pytest.raises(ValueError, match=r"images 1 \(id 2\): no integer 'height' and 'width'"):
        check_ground_truth(gt, where="gt.json", iou_type="segm")
    rle = {"size": [480, 640], "counts": "PP\\9"}  # an empty 480x640 mask
    check_results([{**GOOD, "segmentation": rle}], GT, where="r.json", iou_type="segm")
    with pytest.raises(ValueError, match=r"segmentation size \[10, 10\] is not the image's"):
        check_results(
            [{**GOOD, "segmentation": {**rle, "size": [10, 10]}}],
            GT,
            where="r.json",
            iou_type="segm",
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluation_prints_and_logs_nothing(engine: str, capfd, caplog) -> None:
    """The engines report progress (print, logging); a run's console and log stay clean."""
    gt = {
        "images": images(1),
        "annotations": [ann(1, 1, 1, [0, 0, 10, 10])],
        "categories": categories(1),
    }
    with caplog.at_level(logging.DEBUG):
        scores = coco_evaluate(gt, [det(1, 1, [0, 0, 10, 10], 0.5)], engine=engine)
    assert scores.stats["map"] == pytest.approx(100.0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [r.getMessage() for r in caplog.records if r.levelno < logging.WARNING] == []

"""CocoMAP's mask stats against pycocotools ``COCOeval(iouType="segm")`` run here on the same
RLE results: polygon and RLE ground truth, crowd regions, overlapping and empty masks, images of
several sizes, dataset ids with gaps; batching, sampler padding and two real processes."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DistributedSampler

from cvbench.metrics.coco import COCO_STATS
from cvbench.metrics.coco_map import CocoMAP, DetectionGroundTruth, encode_masks

MASK_STATS = tuple(f"mask_{k}" for k in COCO_STATS)
SIZES = ((64, 48), (40, 40), (96, 30), (50, 70))  # (width, height) of the images, in turn


# --- the reference: pycocotools on the results' RLE ----------------------------------------------


def reference(gt: dict, results: list[dict], image_ids=None) -> np.ndarray:
    """100 x ``COCOeval(..., "segm").stats`` (-1 kept), loadRes of the results as given."""
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes([]) raises IndexError: an index without annotations instead
            coco_dt = COCO()
            coco_dt.dataset = {**gt, "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "segm")
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=np.float64)
    return np.where(stats == -1, -1.0, 100.0 * stats)


def assert_mask_stats_equal(got: dict, expected: np.ndarray) -> None:
    for key, value in zip(MASK_STATS, expected, strict=True):
        if value == -1:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, abs=1e-9), key


def rle_text(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a (H, W) binary mask, counts as a string (a results file's)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def uncompressed(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE (column-major runs, starting with background), as crowds use."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": list(mask.shape), "counts": np.diff(np.concatenate([[0], change])).tolist()}


# --- cases ---------------------------------------------------------------------------------------


def ellipse(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return ((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 <= 1


def polygon_ann(rng: np.random.Generator, h: int, w: int) -> tuple[dict, np.ndarray]:
    """A random quadrilateral as a COCO polygon and its mask as pycocotools draws it."""
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    r = rng.uniform(4, min(h, w) / 2.5)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 4))
    points = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
    points = np.round(np.clip(points, 0, [w, h]), 2)
    segmentation = [points.ravel().tolist()]
    mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w)))
    return {"segmentation": segmentation}, mask.astype(bool)


def blob_ann(rng: np.random.Generator, h: int, w: int) -> tuple[dict, np.ndarray]:
    """A random ellipse as a compressed RLE."""
    mask = ellipse(
        h,
        w,
        rng.uniform(0.2, 0.8) * w,
        rng.uniform(0.2, 0.8) * h,
        rng.uniform(2, w / 3),
        rng.uniform(2, h / 3),
    )
    return {"segmentation": rle_text(mask)}, mask


def box_of(mask: np.ndarray) -> list[float]:
    """[x, y, w, h] tight box of a mask (zeros when empty)."""
    return [float(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))]


def random_case(seed: int, *, num_images: int = 12, category_ids=(7, 1, 3)) -> tuple[dict, list]:
    """Ground truth: polygons and RLE blobs (overlapping each other), 1 in 8 crowd regions
    (uncompressed RLE), some images empty. Predictions per dataset index, as Mask R-CNN gives
    them: probabilities (N, 1, H, W) of jittered true masks (some of the wrong class), false
    positives, empty masks, scores on a 0.1 grid (ties)."""
    rng = np.random.default_rng(seed)
    gt: dict = {
        "images": [],
        "annotations": [],
        "categories": [{"id": c, "name": f"class{c}"} for c in category_ids],
    }
    label_of = {c: i + 1 for i, c in enumerate(sorted(category_ids))}
    image_ids = (rng.choice(1000, num_images, replace=False) + 1).tolist()
    preds = []
    for n, image_id in enumerate(image_ids):
        w, h = SIZES[n % len(SIZES)]
        gt["images"].append(
            {"id": image_id, "file_name": f"{image_id}.png", "width": w, "height": h}
        )
        masks, labels = [], []
        num_objects = 0 if n % 5 == 4 else int(rng.integers(1, 6))
        for _ in range(num_objects):
            segmentation, mask = (polygon_ann if rng.random() < 0.5 else blob_ann)(rng, h, w)
            category = int(rng.choice(category_ids))
            crowd = int(rng.random() < 0.125)
            if crowd:
                segmentation = {"segmentation": uncompressed(mask)}
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": box_of(mask),
                    "area": float(mask.sum()),
                    "iscrowd": crowd,
                    **segmentation,
                }
            )
            for _ in range(int(rng.integers(0, 3))):  # 0 to 2 detections of the object
                shift = rng.integers(-2, 3, 2)
                found = np.roll(mask, tuple(shift), axis=(0, 1))
                found &= rng.random(found.shape) > 0.1  # holes
                masks.append(found)
                labels.append(category if rng.random() < 0.85 else int(rng.choice(category_ids)))
        for _ in range(int(rng.integers(0, 4))):  # false positives, one empty
            _, mask = blob_ann(rng, h, w)
            masks.append(mask if rng.random() < 0.7 else np.zeros((h, w), bool))
            labels.append(int(rng.choice(category_ids)))
        probs = torch.tensor(np.array(masks, dtype=np.float32).reshape(-1, 1, h, w))
        probs = probs * torch.tensor(rng.uniform(0.55, 1.0, probs.shape), dtype=torch.float32)
        probs += torch.tensor(rng.uniform(0, 0.45, probs.shape), dtype=torch.float32)  # noise
        boxes = torch.tensor([box_of(m) for m in masks], dtype=torch.float64).reshape(-1, 4)
        preds.append(
            {
                "boxes": torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1),
                "scores": torch.tensor(np.round(rng.uniform(0, 1, len(masks)), 1)),
                "labels": torch.tensor([label_of[c] for c in labels], dtype=torch.int64),
                "masks": probs,
            }
        )
    return gt, preds


def results_of(gt: dict, preds: list[dict], indices=None) -> list[dict]:
    """COCO segm results of the predictions, encoded here (masks > 0.5)."""
    category_ids = sorted(c["id"] for c in gt["categories"])
    results = []
    for i in range(len(preds)) if indices is None else indices:
        pred, image_id = preds[i], gt["images"][i]["id"]
        for mask, label, score in zip(
            pred["masks"][:, 0].numpy() > 0.5, pred["labels"], pred["scores"], strict=True
        ):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category_ids[int(label) - 1],
                    "segmentation": rle_text(mask),
                    "score": float(score),
                }
            )
    return results


def ground_truth_of(gt: dict) -> DetectionGroundTruth:
    return DetectionGroundTruth(
        coco=gt,
        image_ids=[image["id"] for image in gt["images"]],
        category_ids=sorted(c["id"] for c in gt["categories"]),
    )


def update_in_batches(metric: CocoMAP, preds: list[dict], order: list[int], batch: int = 3) -> None:
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        metric.update([preds[i] for i in rows], torch.tensor(rows))


def as_set(results: list[dict]) -> list[tuple]:
    return sorted(
        (r["image_id"], r["category_id"], r["segmentation"]["counts"], r["score"]) for r in results
    )


# --- tests ---------------------------------------------------------------------------------------


def test_encode_masks_matches_pycocotools_and_thresholds_above_half() -> None:
    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.uniform(0, 1, (5, 1, 13, 7)), dtype=torch.float32)
    probs[0] = 0.5  # exactly 0.5 is background (torchvision's reference: > 0.5)
    probs[1] = 0.0
    got = encode_masks(probs)
    expected = [rle_text(m)["counts"].encode() for m in probs[:, 0].numpy() > 0.5]
    assert got == expected
    assert mask_utils.decode({"size": [13, 7], "counts": got[0]}).sum() == 0
    assert encode_masks(probs[:, 0] > 0.5) == expected  # bool (N, H, W) too
    assert encode_masks(torch.zeros(0, 1, 13, 7)) == []


@pytest.mark.parametrize("engine", ["faster_coco_eval", "pycocotools"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_stats_equal_pycocotools_segm(seed: int, engine: str) -> None:
    gt, preds = random_case(seed)
    metric = CocoMAP(ground_truth=ground_truth_of(gt), engine=engine, iou_types=("bbox", "segm"))
    update_in_batches(metric, preds, list(range(len(preds))))
    out = metric.compute()
    results = results_of(gt, preds)
    assert len(results) > 20 and any(a["iscrowd"] for a in gt["annotations"])
    expected = reference(gt, results)
    assert_mask_stats_equal(out, expected)
    assert 0 < out["mask_map"] < 100 and out["num_images"] == len(gt["images"])
    assert as_set(metric.last_segm_results) == as_set(results)
    # the box stats are those of the same metric without masks
    boxes_only = CocoMAP(ground_truth=ground_truth_of(gt), engine=engine)
    update_in_batches(boxes_only, preds, list(range(len(preds))))
    box_stats = boxes_only.compute()
    assert {k: out[k] for k in box_stats} == box_stats
    assert metric.last_results == boxes_only.last_results
    per_class = metric.last_segm_scores.per_class
    assert [c["category_id"] for c in per_class] == [1, 3, 7]
    assert sum(c["num_det"] for c in per_class) == len(results)


def test_known_masks_on_polygon_and_crowd_ground_truth() -> None:
    """One image, hand-made: a polygon square found exactly, an L-shaped RLE object found with
    its box filled (mask IoU 0.75: a hit at .50:.75, a miss above), a detection on the crowd
    region (ignored), an empty mask (a false positive at the lowest score)."""
    h, w = 40, 60
    square = np.zeros((h, w), bool)
    square[5:15, 5:15] = True
    ell = np.zeros((h, w), bool)
    ell[10:30, 30:50] = True
    ell[10:20, 30:40] = False  # area 300 in a 400 box
    crowd = np.zeros((h, w), bool)
    crowd[30:40, 0:20] = True
    gt = {
        "images": [{"id": 3, "file_name": "3.png", "width": w, "height": h}],
        "annotations": [
            {
                "id": 1,
                "image_id": 3,
                "category_id": 7,
                "bbox": [5, 5, 10, 10],
                "area": 100.0,
                "iscrowd": 0,
                "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]],
            },
            {
                "id": 2,
                "image_id": 3,
                "category_id": 7,
                "bbox": [30, 10, 20, 20],
                "area": 300.0,
                "iscrowd": 0,
                "segmentation": rle_text(ell),
            },
            {
                "id": 3,
                "image_id": 3,
                "category_id": 7,
                "bbox": [0, 30, 20, 10],
                "area": 200.0,
                "iscrowd": 1,
                "segmentation": uncompressed(crowd),
            },
        ],
        "categories": [{"id": 7, "name": "thing"}],
    }
    filled = np.zeros((h, w), bool)
    filled[10:30, 30:50] = True
    on_crowd = np.zeros((h, w), bool)
    on_crowd[32:38, 2:8] = True
    masks = np.stack([square, filled, on_crowd, np.zeros((h, w), bool)])[:, None]
    pred = {
        "boxes": torch.tensor([[5, 5, 15, 15], [30, 10, 50, 30], [2, 32, 8, 38], [0, 0, 1, 1.0]]),
        "scores": torch.tensor([0.9, 0.8, 0.95, 0.1]),
        "labels": torch.ones(4, dtype=torch.int64),
        "masks": torch.tensor(masks, dtype=torch.float32),
    }
    metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=["bbox", "segm"])
    metric.update([pred], torch.tensor([0]))
    out = metric.compute()
    assert_mask_stats_equal(out, reference(gt, metric.last_segm_results))
    assert out["mask_map_50"] == 100.0 and out["mask_map_75"] == 100.0  # IoU 0.75 counts at .75
    # thresholds .50-.75 (6 of 10) find both; .80-.95 only the square: recall 1/2, AP 51/101
    assert out["mask_map"] == pytest.approx(100 * (6 + 4 * 51 / 101) / 10, abs=1e-9)
    assert out["mask_mar_100"] == pytest.approx(100 * (6 + 4 * 0.5) / 10, abs=1e-9)
    assert out["map"] == 100.0  # the boxes are exact
    assert [r["segmentation"]["size"] for r in metric.last_segm_results] == [[h, w]] * 4


def test_repeated_images_and_sampler_shards_keep_the_first_copy() -> None:
    """3 processes' shards concatenated as the gather does (the sampler repeats an image),
    plus repeats with other masks: each image's first copy counts, once."""
    gt, preds = random_case(3, num_images=10)
    _, other = random_case(4, num_images=10)  # other masks and sizes for the repeats
    expected = reference(gt, results_of(gt, preds))
    metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=("bbox", "segm"))
    for rank in range(3):
        shard = list(DistributedSampler(range(10), num_replicas=3, rank=rank, shuffle=True, seed=2))
        update_in_batches(metric, preds, shard, batch=2)
    metric.update([other[1], other[2]], torch.tensor([1, 2]))  # late copies, other masks
    out = metric.compute()
    assert out["num_images"] == 10
    assert_mask_stats_equal(out, expected)
    assert as_set(metric.last_segm_results) == as_set(results_of(gt, preds))


def test_only_images_seen_are_scored() -> None:
    gt, preds = random_case(5, num_images=10)
    seen = [0, 3, 4, 8]
    metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=("bbox", "segm"))
    update_in_batches(metric, preds, seen)
    out = metric.compute()
    image_ids = [gt["images"][i]["id"] for i in seen]
    assert metric.last_image_ids == image_ids
    assert_mask_stats_equal(out, reference(gt, results_of(gt, preds, seen), image_ids=image_ids))


def test_no_detections_and_no_update() -> None:
    gt, preds = random_case(6, num_images=4)
    metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=("bbox", "segm"))
    with pytest.warns(UserWarning, match="called before the ``update``"):
        out = metric.compute()
    assert out == {**dict.fromkeys(COCO_STATS + MASK_STATS), "num_images": 0}
    empty = [{k: v[:0] for k, v in p.items()} for p in preds]
    metric.update(empty, torch.arange(4))
    metric._computed = None
    out = metric.compute()
    assert metric.last_segm_results == []
    assert_mask_stats_equal(out, reference(gt, []))
    assert out["mask_map"] == 0.0


def test_errors_name_the_image_and_the_fix() -> None:
    gt, preds = random_case(7, num_images=4)
    with pytest.raises(ValueError, match=r"iou_types \['segm'\]; expected \['bbox'\]"):
        CocoMAP(iou_types=["segm"])
    with pytest.raises(ValueError, match="iou_types"):
        CocoMAP(iou_types=["bbox", "keypoints"])
    metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=("bbox", "segm"))
    no_masks = {k: v for k, v in preds[0].items() if k != "masks"}
    with pytest.raises(ValueError, match="dataset index 2 has .* boxes and masks none"):
        metric.update([no_masks], torch.tensor([2]))
    index = next(i for i, p in enumerate(preds) if len(p["boxes"]))
    small = {**preds[index], "masks": preds[index]["masks"][..., :-1]}  # one column short
    metric.update([small], torch.tensor([index]))
    image = gt["images"][index]
    with pytest.raises(ValueError, match=f"a mask of image {image['id']} is .* but the image is"):
        metric.compute()


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        gt, preds = random_case(8, num_images=9)
        metric = CocoMAP(ground_truth=ground_truth_of(gt), iou_types=("bbox", "segm"))
        shard = list(DistributedSampler(range(9), num_replicas=world, rank=rank, shuffle=False))
        update_in_batches(metric, preds, shard, batch=2)
        stats = metric.compute()
        Path(out, f"{rank}.json").write_text(
            json.dumps({"stats": stats, "results": metric.last_segm_results})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_gather_the_rle_bytes(tmp_path: Path) -> None:
    """Two gloo processes, 9 images (rank 1 repeats image 0), uneven byte counts per rank:
    every rank scores the single-process masks."""
    mp.start_processes(
        _ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork"
    )
    gt, preds = random_case(8, num_images=9)
    results = results_of(gt, preds)
    expected = reference(gt, results)
    for rank in range(2):
        got = json.loads((tmp_path / f"{rank}.json").read_text())
        assert got["stats"]["num_images"] == 9
        assert_mask_stats_equal(got["stats"], expected)
        assert as_set(got["results"]) == as_set(results)

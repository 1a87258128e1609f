"""Time cvbench's COCO evaluation against pycocotools and torchmetrics on one synthetic set.

A COCO-sized evaluation is generated (default: 5,000 images, the 80 COCO category ids 1..90
with their gaps, about 7 objects per image with crowd regions and mask areas below box areas,
100 detections per image: jittered copies of the objects plus false positives). It is scored
by ``cvbench.metrics.coco.coco_evaluate`` (default engine), by pycocotools ``COCOeval`` as its
README runs it, and by torchmetrics ``MeanAveragePrecision`` (float64 IoU and recall
thresholds, as METRICS.md asks). cvbench must equal pycocotools on all 12 stats to 1e-9
(percent); torchmetrics' map and map_50 are reported with their difference.

    .venv/bin/python scripts/bench_map.py                 # full size, a few minutes
    .venv/bin/python scripts/bench_map.py --images 500 --skip-torchmetrics

Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from cvbench.metrics.coco import COCO_STATS, coco_evaluate

# COCO 2017's 80 category ids: 1..90 with 10 gaps.
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
TOLERANCE = 1e-9  # percent points, cvbench vs pycocotools
TORCHMETRICS_TOLERANCE = 0.05  # percent points: torchmetrics re-packs boxes and areas itself


def category_ids(count: int) -> list[int]:
    """COCO's ids for up to 80 categories; past 80, more ids above 90 with gaps too."""
    extra = [91 + i + i // 4 for i in range(max(0, count - len(COCO_IDS)))]
    return (COCO_IDS + extra)[:count]


def synthetic(
    *, num_images: int, num_categories: int, dets_per_image: int, seed: int
) -> tuple[dict, list[dict]]:
    """A COCO instances dict and COCO results, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    cats = category_ids(num_categories)
    gt: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": c, "name": f"class{c}"} for c in cats],
    }
    results: list[dict] = []
    for image_id in range(1, num_images + 1):
        width, height = (int(v) for v in rng.integers(320, 641, 2))
        gt["images"].append(
            {"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height}
        )
        n = int(rng.poisson(7.3))
        wh = np.exp(rng.uniform(np.log(4), np.log(0.9 * min(width, height)), (n, 2)))
        xy = rng.uniform(0, 1, (n, 2)) * ([width, height] - wh)
        labels = rng.choice(cats, n)
        crowd = rng.random(n) < 0.01
        area = wh.prod(axis=1) * rng.uniform(0.5, 0.9, n)
        for k in range(n):
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": int(labels[k]),
                    "bbox": [*xy[k].tolist(), *wh[k].tolist()],
                    "area": float(area[k]),
                    "iscrowd": int(crowd[k]),
                }
            )
        # near the objects: 1-3 jittered boxes each, mostly the right class, higher scores
        copies = rng.integers(1, 4, n)
        src = np.repeat(np.arange(n), copies)[:dets_per_image]
        jitter = rng.normal(0, 0.1, (len(src), 4)) * np.tile(wh[src], 2)
        near_xy, near_wh = xy[src] + jitter[:, :2], np.maximum(wh[src] + jitter[:, 2:], 1)
        near_label = np.where(rng.random(len(src)) < 0.85, labels[src], rng.choice(cats, len(src)))
        near_score = rng.beta(4, 2, len(src))
        # false positives fill the image up to dets_per_image, lower scores
        m = dets_per_image - len(src)
        fp_wh = np.exp(rng.uniform(np.log(4), np.log(0.5 * min(width, height)), (m, 2)))
        fp_xy = rng.uniform(0, 1, (m, 2)) * ([width, height] - fp_wh)
        boxes = np.concatenate([np.hstack([near_xy, near_wh]), np.hstack([fp_xy, fp_wh])])
        det_labels = np.concatenate([near_label, rng.choice(cats, m)])
        scores = np.concatenate([near_score, rng.beta(1.5, 5, m)])
        for box, label, score in zip(
            boxes.tolist(), det_labels.tolist(), scores.tolist(), strict=True
        ):
            results.append(
                {"image_id": image_id, "category_id": label, "bbox": box, "score": score}
            )
    return gt, results


def pycocotools_stats(gt: dict, results: list[dict]) -> np.ndarray:
    """pycocotools as its README runs it; 100 x stats, -1 where undefined."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=np.float64)
    return np.where(stats == -1, -1.0, 100 * stats)


def torchmetrics_inputs(gt: dict, results: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per-image preds and targets for ``MeanAveragePrecision`` (xywh, float64)."""
    import torch

    index = {image["id"]: i for i, image in enumerate(gt["images"])}
    per_image: list[dict[str, list]] = [
        {
            "boxes": [],
            "scores": [],
            "labels": [],
            "t_boxes": [],
            "t_labels": [],
            "crowd": [],
            "area": [],
        }
        for _ in gt["images"]
    ]
    for r in results:
        row = per_image[index[r["image_id"]]]
        row["boxes"].append(r["bbox"])
        row["scores"].append(r["score"])
        row["labels"].append(r["category_id"])
    for a in gt["annotations"]:
        row = per_image[index[a["image_id"]]]
        row["t_boxes"].append(a["bbox"])
        row["t_labels"].append(a["category_id"])
        row["crowd"].append(a["iscrowd"])
        row["area"].append(a["area"])
    f64, i64 = torch.float64, torch.int64
    preds = [
        {
            "boxes": torch.tensor(row["boxes"], dtype=f64).reshape(-1, 4),
            "scores": torch.tensor(row["scores"], dtype=f64),
            "labels": torch.tensor(row["labels"], dtype=i64),
        }
        for row in per_image
    ]
    targets = [
        {
            "boxes": torch.tensor(row["t_boxes"], dtype=f64).reshape(-1, 4),
            "labels": torch.tensor(row["t_labels"], dtype=i64),
            "iscrowd": torch.tensor(row["crowd"], dtype=i64),
            "area": torch.tensor(row["area"], dtype=f64),
        }
        for row in per_image
    ]
    return preds, targets


def torchmetrics_map(preds: list[dict], targets: list[dict]) -> tuple[dict[str, float], str]:
    """torchmetrics' map and map_50 (percent) and the backend it used."""
    from torchmetrics.detection import MeanAveragePrecision

    try:
        import faster_coco_eval  # noqa: F401

        backend = "faster_coco_eval"
    except ImportError:
        backend = "pycocotools"
    metric = MeanAveragePrecision(
        box_format="xywh",
        iou_type="bbox",
        iou_thresholds=np.linspace(0.5, 0.95, 10).tolist(),
        rec_thresholds=np.linspace(0.0, 1.0, 101).tolist(),
        backend=backend,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        metric.update(preds, targets)
        out = metric.compute()
    return {"map": 100 * float(out["map"]), "map_50": 100 * float(out["map_50"])}, backend


def timed(fn, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--dets-per-image", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-torchmetrics", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    gt, results = synthetic(
        num_images=args.images,
        num_categories=args.categories,
        dets_per_image=args.dets_per_image,
        seed=args.seed,
    )
    rows = []
    # the engines write into the dicts they are given: each gets fresh copies
    scores, seconds = timed(coco_evaluate, gt, results)
    rows.append({"engine": "cvbench (faster_coco_eval)", "seconds": seconds, **scores.stats})
    gt_copy = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    reference, seconds = timed(pycocotools_stats, gt_copy, [dict(r) for r in results])
    rows.append(
        {"engine": "pycocotools COCOeval", "seconds": seconds}
        | {k: None if v == -1 else float(v) for k, v in zip(COCO_STATS, reference, strict=True)}
    )
    if not args.skip_torchmetrics:
        preds, targets = torchmetrics_inputs(gt, results)
        (tm, backend), seconds = timed(torchmetrics_map, preds, targets)
        rows.append({"engine": f"torchmetrics MAP ({backend})", "seconds": seconds, **tm})

    problems = []
    for key, expected in zip(COCO_STATS, reference, strict=True):
        got = scores.stats[key]
        if (expected == -1) != (got is None) or (
            got is not None and abs(got - expected) > TOLERANCE
        ):
            problems.append(f"cvbench {key} = {got} but pycocotools gives {expected}")
    if not args.skip_torchmetrics:
        for key in ("map", "map_50"):
            diff = abs(rows[2][key] - rows[1][key])
            rows[2][f"{key}_diff"] = diff
            if diff > TORCHMETRICS_TOLERANCE:
                problems.append(f"torchmetrics {key} differs from pycocotools by {diff:.2e}")
    for row in rows:
        row["time_vs_pycocotools"] = row["seconds"] / rows[1]["seconds"]
    setup = {
        "images": args.images,
        "categories": args.categories,
        "annotations": len(gt["annotations"]),
        "crowd": sum(a["iscrowd"] for a in gt["annotations"]),
        "detections": len(results),
        "seed": args.seed,
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps({"setup": setup, "rows": rows, "problems": problems}, indent=2))
    else:
        print(", ".join(f"{k} {v}" for k, v in setup.items()))
        print(f"{'engine':36} {'seconds':>8} {'time/pycocotools':>17} {'map':>9} {'map_50':>9}")
        for row in rows:
            print(
                f"{row['engine']:36} {row['seconds']:8.2f} {row['time_vs_pycocotools']:17.3f} "
                f"{row['map']:9.4f} {row['map_50']:9.4f}"
            )
        print(
            "cvbench = pycocotools on all 12 stats to 1e-9: "
            + ("yes" if not any(p.startswith("cvbench") for p in problems) else "NO")
        )
        if not args.skip_torchmetrics:
            print(
                f"torchmetrics - pycocotools: map {rows[2]['map_diff']:.2e}, "
                f"map_50 {rows[2]['map_50_diff']:.2e} (percent points)"
            )
        for problem in problems:
            print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

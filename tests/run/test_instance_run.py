"""Instance segmentation end to end on real files: the experiment's config trains Mask R-CNN on
a tiny shapes set, and the box and mask numbers it reports equal pycocotools COCOeval ("bbox",
"segm") on the run's own results files (tests/test_config.py trains every instance model YAML)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cvbench.metrics.coco import COCO_STATS
from cvbench.run.build import build_datamodule
from cvbench.run.train import run_train

TINY = (
    "experiment=instance/shapes_maskrcnn",
    "data.records.num_images={train: 16, val: 4, test: 7}",
    "data.batch_size=2",
    "data.num_workers=0",
)
# 32 steps: enough for masks that overlap some objects, so the mask stats are not all zero
SHORT_TRAINING = ("trainer.max_epochs=4", "sched.scheduler.warmup_steps=2")


def pycocotools_stats(gt_file: Path, results: list[dict], iou_type: str) -> list[float | None]:
    """The 12 stats of pycocotools COCOeval in percent, None for -1."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [None if s == -1 else 100 * s for s in evaluator.stats]


def assert_stats(metrics: dict, prefix: str, expected: list[float | None]) -> None:
    for key, value in zip(COCO_STATS, expected, strict=True):
        got = metrics[f"test/{prefix}{key}"]
        assert (got is None) == (value is None), key
        if value is not None:
            assert got == pytest.approx(value, abs=1e-9), prefix + key


@pytest.mark.slow
def test_maskrcnn_run_reports_pycocotools_box_and_mask_numbers(make_cfg, tmp_path: Path) -> None:
    metrics = run_train(make_cfg(*TINY, *SHORT_TRAINING))
    run = tmp_path / "run"
    assert metrics["test/iou_type"] == "bbox+segm" and metrics["test/num_images"] == 7
    assert metrics["test/mask_mar_100"] > 0  # some masks match: the comparison below has teeth
    recorded = json.loads((run / "metrics.json").read_text())
    assert all(f"{s}/mask_{k}" in recorded for s in ("val", "test") for k in COCO_STATS)
    (gt_file,) = (tmp_path / "data").glob("shapes-*/annotations/instances_test.json")

    segmentations = json.loads((run / "test_segmentations.json").read_text())
    detections = json.loads((run / "test_detections.json").read_text())
    assert 0 < len(segmentations) == len(detections) <= 7 * 100
    assert all(r["segmentation"]["size"] == [128, 128] for r in segmentations)
    assert [(r["image_id"], r["category_id"], r["score"]) for r in segmentations] == [
        (r["image_id"], r["category_id"], r["score"]) for r in detections
    ]
    assert_stats(metrics, "mask_", pycocotools_stats(gt_file, segmentations, "segm"))
    assert_stats(metrics, "", pycocotools_stats(gt_file, detections, "bbox"))
    assert recorded["test/mask_map"] == metrics["test/mask_map"]

    header = (run / "test_per_class_ap.csv").read_text().splitlines()[0]
    assert header.endswith("ap_75,mask_ap,mask_ap_50,mask_ap_75")
    assert (run / "test_samples.png").stat().st_size > 0

    # the score command reads the same file to the same numbers
    done = run_cli(
        "score",
        "task=detection",
        "iou_type=segm",
        f"gt={gt_file}",
        f"pred={run / 'test_segmentations.json'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scored = json.loads(done.stdout)
    assert scored["iou_type"] == "segm"
    for key in COCO_STATS:
        expected = metrics[f"test/mask_{key}"]
        assert scored[key] == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_shapes_with_masks_gives_mask_batches(make_cfg) -> None:
    cfg = make_cfg(*TINY)
    assert cfg.data.masks is True and cfg.task.monitor == "val/mask_map"
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    images, targets, _ = next(iter(datamodule.train_dataloader()))
    assert sum(len(t["boxes"]) for t in targets) > 0
    for image, target in zip(images, targets, strict=True):
        masks = target["masks"]
        assert masks.dtype == torch.uint8 and masks.shape == (len(target["boxes"]), 128, 128)
        assert image.shape == (3, 128, 128)
        for mask, box in zip(masks, target["boxes"], strict=True):  # each mask in its box
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert xs.min() >= box[0] - 1 and xs.max() + 1 <= box[2] + 1
            assert ys.min() >= box[1] - 1 and ys.max() + 1 <= box[3] + 1

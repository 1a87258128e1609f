"""Detection and localization runs end to end on real files: the numbers a run reports equal
pycocotools on the run's own detections file, on one process and on two (DDP)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import eval_single_and_ddp
from fakes_detection import write_coco, write_voc, write_yolo
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cvbench.metrics.coco import COCO_STATS
from cvbench.run.build import build_datamodule
from cvbench.run.train import run_train

FCOS = (
    "model=detection/fcos_resnet18_fpn",
    "task=detection",
    "optim=sgd",
    "optim.lr=0.001",
    "sched=none",
    "model.detector.min_size=64",
    "model.detector.max_size=96",
    "model.detector.score_thresh=0.0",  # untrained: keep every detection, 100 per image
    "data.num_workers=0",
    "data.batch_size=2",
    "trainer.max_epochs=1",
)
TINY_SHAPES = "data.records.num_images={train: 8, val: 4, test: 7}"  # odd: DDP pads a shard


def pycocotools_stats(gt_file: Path, results: list[dict]) -> list[float | None]:
    """The 12 stats of pycocotools COCOeval(bbox) in percent, None for -1."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [None if s == -1 else 100 * s for s in evaluator.stats]


def write_coco_splits(root: Path) -> None:
    for split in ("train2017", "val2017"):
        write_coco(root, split)


@pytest.mark.slow
def test_coco_run_reports_pycocotools_numbers_with_original_ids(make_cfg, tmp_path: Path) -> None:
    write_coco_splits(tmp_path / "data" / "coco")
    metrics = run_train(make_cfg("data=detection/coco", "data.num_classes=3", *FCOS))
    run = tmp_path / "run"
    results = json.loads((run / "test_detections.json").read_text())
    assert {r["category_id"] for r in results} <= {1, 3, 7}  # the file's own ids, not 1..3
    assert {r["image_id"] for r in results} <= {42, 7, 9}
    assert 0 < len(results) <= 3 * 100  # at most 100 per image; background label 0 dropped
    expected = pycocotools_stats(tmp_path / "data/coco/annotations/instances_val2017.json", results)
    for key, value in zip(COCO_STATS, expected, strict=True):
        got = metrics[f"test/{key}"]
        assert (got is None) == (value is None), key
        if value is not None:
            assert got == pytest.approx(value, abs=1e-9), key
    assert metrics["test/iou_type"] == "bbox"
    assert json.loads((run / "metrics.json").read_text())["test/map"] == metrics["test/map"]
    rows = (run / "test_per_class_ap.csv").read_text().splitlines()
    assert rows[0].startswith("category_id,name,num_gt,num_det,ap")
    assert [r.split(",")[:2] for r in rows[1:]] == [["1", "person"], ["3", "cat"], ["7", "dog"]]
    assert (run / "test_samples.png").stat().st_size > 0


@pytest.mark.slow
def test_voc_run_reports_voc_map(make_cfg, tmp_path: Path) -> None:
    base = write_voc(tmp_path / "data" / "VOCdevkit", split="train")
    for split in ("val", "test"):
        shutil.copy(base / "ImageSets/Main/train.txt", base / f"ImageSets/Main/{split}.txt")
    metrics = run_train(make_cfg("data=detection/voc", *FCOS))
    assert metrics["test/voc_version"] == "2007"
    assert 0.0 <= metrics["test/voc_map_50"] <= 100.0
    header = (tmp_path / "run" / "test_per_class_ap.csv").read_text().splitlines()[0]
    assert header.endswith(",voc_ap_50")


@pytest.mark.parametrize("data", ["coco", "voc", "yolo", "shapes"])
def test_detection_data_yaml_gives_batches(make_cfg, tmp_path: Path, data: str) -> None:
    """Each detection data YAML reads its real on-disk format into torchvision-style batches."""
    root = tmp_path / "data"
    extra: tuple[str, ...] = ()
    if data == "coco":
        write_coco_splits(root / "coco")
        extra = ("data.num_classes=3",)
    elif data == "voc":
        base = write_voc(root / "VOCdevkit", split="train")
        shutil.copy(base / "ImageSets/Main/train.txt", base / "ImageSets/Main/val.txt")
    elif data == "yolo":
        write_yolo(root / "yolo", "train")
        write_yolo(root / "yolo", "val")
        extra = ("data.num_classes=3", "data.records.classes=[a,b,c]")
    else:
        extra = (TINY_SHAPES,)
    cfg = make_cfg(f"data=detection/{data}", "data.num_workers=0", "data.batch_size=2", *extra)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    images, targets, indices = next(iter(datamodule.train_dataloader()))
    assert len(images) == len(targets) == len(indices) == 2
    for image, target in zip(images, targets, strict=True):
        assert image.dtype.is_floating_point and image.shape[0] == 3
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        boxes, labels = target["boxes"].numpy(), target["labels"].numpy()
        assert boxes.shape == (len(labels), 4)
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        assert np.all((labels >= 1) & (labels <= cfg.data.num_classes))
        assert np.all(boxes[:, 2] <= image.shape[2]) and np.all(boxes[:, 3] <= image.shape[1])


def test_wrong_num_classes_names_the_key(make_cfg, tmp_path: Path) -> None:
    write_coco_splits(tmp_path / "data" / "coco")
    datamodule = build_datamodule(make_cfg("data=detection/coco", "data.num_classes=80"))
    with pytest.raises(ValueError, match=r"3 categories \(person, cat, dog\).*data.num_classes=3"):
        datamodule.setup("fit")


@pytest.mark.slow
def test_ddp_cpu_detection_eval_equals_single_process(make_cfg, tmp_path: Path) -> None:
    run_train(make_cfg("data=detection/shapes", TINY_SHAPES, *FCOS))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    results = eval_single_and_ddp(ckpt, tmp_path)
    single, ddp = results["single"], results["ddp"]
    assert single["test/num_images"] == ddp["test/num_images"] == 7  # the padded image once
    for key in COCO_STATS:
        assert ddp[f"test/{key}"] == pytest.approx(single[f"test/{key}"], abs=1e-9), key

    def detections(run: str) -> list[tuple]:
        found = json.loads((tmp_path / run / "test_detections.json").read_text())
        return sorted((d["image_id"], d["category_id"], d["score"]) for d in found)

    # The same detections of every image, once; scores equal up to float rounding (the two
    # processes batch other images together).
    single_dets, ddp_dets = detections("single"), detections("ddp")
    assert 0 < len(ddp_dets) == len(single_dets) <= 7 * 100
    assert [d[:2] for d in ddp_dets] == [d[:2] for d in single_dets]
    assert [d[2] for d in ddp_dets] == pytest.approx([d[2] for d in single_dets], abs=1e-4)

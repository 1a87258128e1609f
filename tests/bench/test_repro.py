"""Reproduction recipes: verdicts, status from a real store, the data they need, and each recipe
run for a few steps on tiny data written in its dataset's real layout."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from fakes import write_image
from fakes_detection import write_coco
from omegaconf import OmegaConf
from PIL import Image

from cvbench.bench.repro import (
    find_recipe,
    load_recipes,
    parse_expected,
    recipe_status,
    verdict_lines,
    verdicts,
)
from cvbench.data.formats.coco import coco_instances
from cvbench.data.formats.coco_semantic import coco_semantic
from cvbench.data.formats.coco_subset import coco_category_subset
from cvbench.run.train import run_train
from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

RECIPES = ["deeplabv3_r50_coco_voc", "edsr_x2_set5", "fasterrcnn_r50_fpn_coco", "resnet50_imagenet"]
MAP = {"source": "paper", "metrics": {"test/map": {"value": 37.0, "tolerance": 0.5}}}

# -- verdicts -----------------------------------------------------------------------------


def test_verdicts_pass_within_tolerance_either_way() -> None:
    assert verdict_lines(MAP, {"test/map": 37.5}) == [
        "PASS test/map 37.50 (expected 37.00 ± 0.50, diff +0.50)"
    ]
    assert verdict_lines(MAP, {"test/map": 36.49}) == [
        "FAIL test/map 36.49 (expected 37.00 ± 0.50, diff -0.51)"
    ]
    assert verdict_lines(MAP, {"test/map": 38.0})[0].startswith("FAIL")  # better also differs


def test_verdicts_of_missing_or_null_metrics_fail() -> None:
    for metrics in ({}, {"test/map": None}, {"test/map": "n/a"}, {"test/map": float("nan")}):
        [line] = verdict_lines(MAP, metrics)
        assert line == "FAIL test/map: not in the run's metrics (expected 37.00 ± 0.50)"
        assert not verdicts(MAP, metrics)[0].passed


def test_verdicts_print_the_published_decimals() -> None:
    expected = {"source": "x", "metrics": {"test/top5_error": {"value": 7.138, "tolerance": 0.3}}}
    assert verdict_lines(expected, {"test/top5_error": 7.0}) == [
        "PASS test/top5_error 7.000 (expected 7.138 ± 0.300, diff -0.138)"
    ]


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"metrics": MAP["metrics"]}, "expected.source"),
        ({"source": "x"}, "expected.metrics"),
        ({"source": "x", "metrics": {"test/map": {"value": 37.0}}}, "expected.metrics.test/map"),
        ({"source": "x", "metrics": {"test/map": {"value": 1, "tolerance": -1}}}, "test/map"),
        ([1, 2], "write it as"),
    ],
)
def test_bad_expected_blocks_name_the_key(block, key: str) -> None:
    with pytest.raises(ValueError, match=re.escape(key)):
        parse_expected(block, where="recipe.yaml")


def test_recipes_hold_the_published_numbers() -> None:
    recipes = {r.name: r for r in load_recipes()}
    assert sorted(recipes) == RECIPES
    values = {name: {e.metric: e.value for e in r.expectations} for name, r in recipes.items()}
    assert values["resnet50_imagenet"] == {"test/top1_error": 23.87, "test/top5_error": 7.138}
    assert values["fasterrcnn_r50_fpn_coco"] == {"test/map": 37.0}
    assert values["deeplabv3_r50_coco_voc"]["test/miou"] == 66.4
    assert values["edsr_x2_set5"] == {"test/psnr": 38.11}
    assert find_recipe("repro/edsr_x2_set5").name == "edsr_x2_set5"
    with pytest.raises(ValueError, match="valid: deeplabv3_r50_coco_voc, edsr_x2_set5"):
        find_recipe("resnet18_imagenet")


# -- status from the results store --------------------------------------------------------


def _run(store: ResultsStore, run_id: str, status: str, top1: float | None = None, **kw) -> None:
    store.start(RunRecord(run_id=run_id, run_name="r", experiment="repro/resnet50_imagenet", **kw))
    if status == "completed":
        store.end(run_id, "completed", metrics={"test/top1_error": top1, "test/top5_error": 7.0})
    elif status == "failed":
        store.end(run_id, "failed", error="Traceback ...\nFileNotFoundError: imagenet/train")


def test_status_follows_the_latest_completed_run(tmp_path: Path) -> None:
    recipe = find_recipe("resnet50_imagenet")
    with ResultsStore(tmp_path / "cvbench.db") as store:
        assert recipe_status(recipe, store)[0] == "not run"
        _run(store, "aaa", "failed", started_at="2025-01-01T00:00:00+00:00")
        status, lines = recipe_status(recipe, store)
        assert status == "failed" and lines[-1] == "run aaa: FileNotFoundError: imagenet/train"
        _run(store, "bbb", "completed", 24.0, started_at="2025-01-02T00:00:00+00:00")
        _run(store, "eval", "completed", 99.0, kind="eval", started_at="2025-01-04T00:00:00+00:00")
        assert recipe_status(recipe, store)[0] == "PASS"  # eval runs do not count
        _run(
            store,
            "ccc",
            "completed",
            25.0,
            started_at="2025-01-03T00:00:00+00:00",
            overrides=["experiment=repro/resnet50_imagenet", "trainer.max_epochs=1"],
        )
        status, lines = recipe_status(recipe, store)
    assert status == "FAIL"
    assert lines[0] == "FAIL test/top1_error 25.00 (expected 23.87 ± 0.50, diff +1.13)"
    assert lines[1] == "PASS test/top5_error 7.000 (expected 7.138 ± 0.300, diff -0.138)"
    assert lines[2].startswith("run ccc") and lines[2].endswith("overrides: trainer.max_epochs=1")


# -- data of the recipes, in the real layouts ---------------------------------------------

VOC_IDS = [5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]
COCO_NAMES = {1: "person", 3: "car", 18: "dog", 27: "backpack", 90: "toothbrush"}


def _square(ann_id: int, image_id: int, cat: int, x0: int, y0: int, side: int) -> dict:
    x1, y1 = x0 + side, y0 + side
    return {
        "id": ann_id, "image_id": image_id, "category_id": cat, "iscrowd": 0,
        "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "bbox": [x0, y0, side, side],
        "area": float(side * side),
    }  # fmt: skip


def coco_voc_dict() -> dict:
    """Four 64 x 48 images: 1 a person (1,600 px) and a backpack (not VOC); 2 a small dog
    (100 px) and a large backpack; 3 a car (1,225 px); 4 nothing. All 20 VOC categories and two
    others are declared, as in COCO."""
    cats = [{"id": c, "name": COCO_NAMES.get(c, f"cat{c}")} for c in [*VOC_IDS, 27, 90]]
    anns = [
        _square(1, 1, 1, 2, 2, 40), _square(2, 1, 27, 50, 0, 10),
        _square(3, 2, 18, 0, 0, 10), _square(4, 2, 27, 20, 0, 45),
        _square(5, 3, 3, 10, 5, 35),
    ]  # fmt: skip
    images = [
        {"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 48} for i in (1, 2, 3, 4)
    ]
    return {"images": images, "categories": cats, "annotations": anns}


def test_coco_voc_subset_is_torchvisions(tmp_path: Path) -> None:
    """VOC class ids (person 15, dog 12, car 7), other categories as background, and the
    training split without images whose VOC objects cover <= 1,000 px."""
    for split in ("train2017", "val2017"):
        write_coco(tmp_path, split, coco_voc_dict())

    def records(split: str):
        return coco_semantic(
            split,
            instances=lambda split: coco_category_subset(
                split,
                instances=lambda split: coco_instances(str(tmp_path), split),
                category_ids=VOC_IDS,
                min_area={"train2017": 1000},
            ),
        )

    train, val = records("train2017"), records("val2017")
    assert train.instances.image_ids == [1, 3] and val.instances.image_ids == [1, 2, 3, 4]
    assert len(train.classes) == 21
    assert (train.classes[15], train.classes[12], train.classes[7]) == ("person", "dog", "car")
    person, car = train.load_mask(0), train.load_mask(1)
    assert person[10, 10] == 15 and person[5, 55] == 0  # the backpack is background
    assert car[20, 20] == 7 and set(np.unique(car)) == {0, 7}
    assert val.load_mask(1)[5, 5] == 12 and val.load_mask(1)[30, 40] == 0
    with pytest.raises(ValueError, match=r"instances_val2017.json.*not categories there: \[99\]"):
        coco_category_subset(
            "val2017",
            instances=lambda split: coco_instances(str(tmp_path), split),
            category_ids=[1, 99],
        )


def write_imagenet(root: Path) -> None:
    """train/<wnid>/*.JPEG (2 per class) and val/<wnid>/*.JPEG (1 per class), 3 classes."""
    for k, wnid in enumerate(("n01440764", "n01443537", "n01484850")):
        for i in range(2):
            write_image(root / "train" / wnid / f"{wnid}_{i}.JPEG", "RGB", seed=10 * k + i)
        write_image(root / "val" / wnid / f"ILSVRC2012_val_{k:08d}.JPEG", "RGB", seed=99 + k)


def _write_pair(hr_path: Path, lr_path: Path, width: int, height: int, seed: int) -> None:
    write_image(hr_path, "RGB", (width, height), seed=seed)
    lr_path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(hr_path) as hr:  # any x2 input of the right size: the reader checks sizes
        hr.crop((0, 0, width // 2 * 2, height // 2 * 2)).resize(
            (width // 2, height // 2), Image.BICUBIC
        ).save(lr_path)


def write_div2k_set5(data: Path) -> None:
    """DIV2K train (2 images) and valid (1) with LR_bicubic/X2, and benchmark/Set5 (2 images,
    one whose size is not a multiple of 2)."""
    div2k = data / "DIV2K"
    for split, names in (("train", ["0001", "0002"]), ("valid", ["0801"])):
        for k, name in enumerate(names):
            _write_pair(
                div2k / f"DIV2K_{split}_HR" / f"{name}.png",
                div2k / f"DIV2K_{split}_LR_bicubic" / "X2" / f"{name}x2.png",
                40, 40, seed=k,
            )  # fmt: skip
    set5 = data / "benchmark" / "Set5"
    for k, (name, w, h) in enumerate((("baby", 41, 37), ("bird", 32, 32))):
        _write_pair(set5 / "HR" / f"{name}.png", set5 / "LR_bicubic/X2" / f"{name}x2.png", w, h, k)


def write_recipe_data(recipe: str, data: Path) -> None:
    if recipe == "resnet50_imagenet":
        write_imagenet(data / "imagenet")
    elif recipe == "fasterrcnn_r50_fpn_coco":
        for split in ("train2017", "val2017"):
            write_coco(data / "coco", split)
    elif recipe == "deeplabv3_r50_coco_voc":
        for split in ("train2017", "val2017"):
            write_coco(data / "coco", split, coco_voc_dict())
    else:
        write_div2k_set5(data)


CPU = ("trainer=cpu", "trainer.devices=1", "++trainer.sync_batchnorm=false", "data.num_workers=0")
TINY = {  # a few steps on tiny images: the recipe's own data, model and metrics
    "resnet50_imagenet": [
        "debug=limit", "data.batch_size=2",
        "data.transforms.train.transforms.0.size=[32,32]",
        "data.transforms.val.transforms.0.max_size=36",
        "data.transforms.val.transforms.1.height=32", "data.transforms.val.transforms.1.width=32",
    ],
    "fasterrcnn_r50_fpn_coco": [
        "debug=fdr", "data.batch_size=2", "data.num_classes=3",
        "model.detector.min_size=32", "model.detector.max_size=64",
    ],
    "deeplabv3_r50_coco_voc": [
        "debug=fdr", "data.batch_size=2", "data.crop_size=32",
        "data.transforms.val.transforms.0.max_size=32",
    ],
    "edsr_x2_set5": ["debug=fdr", "data.batch_size=2", "data.patch_size=16", "data.repeat=1"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_a_few_steps(make_cfg, tmp_path: Path, recipe: str) -> None:
    """Each recipe composes with its own data, model and schedule, trains a few steps on tiny
    data of its dataset's layout, reports every metric its `expected` block names, and lands
    in the store under its experiment."""
    write_recipe_data(recipe, tmp_path / "data")
    db = tmp_path / "cvbench.db"
    cfg = make_cfg(f"experiment=repro/{recipe}", *CPU, *TINY[recipe], f"paths.results_db={db}")
    assert cfg.model.get("weights") is None and cfg.model.get("weights_backbone") is None
    assert cfg.model.get("detector", {}).get("weights_backbone") is None
    metrics = run_train(cfg)
    for line, verdict in zip(
        verdict_lines(cfg.expected, metrics), verdicts(cfg.expected, metrics), strict=True
    ):
        assert verdict.measured is not None, line  # the metric exists in the run's results
    run_dir = tmp_path / "run"
    if recipe == "edsr_x2_set5":  # the test split is Set5, modcropped
        with open(run_dir / "test_per_image.csv", newline="") as f:
            names = sorted(row["name"] for row in csv.DictReader(f))
        assert names == ["baby.png", "bird.png"]
    if recipe == "resnet50_imagenet":  # the test split is val: one image per class
        assert (run_dir / "test_labels.txt").read_text().split() == ["0", "1", "2"]
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert all(saved[k] == pytest.approx(metrics[k]) for k in cfg.expected.metrics if saved[k])


@pytest.mark.slow
def test_reproduce_cli_runs_a_recipe_and_lists_its_status(tmp_path: Path) -> None:
    """`cvbench reproduce recipe=NAME ...` trains the recipe in a child process and prints the
    verdict of the recorded metrics; `cvbench reproduce` then lists the recipe with that status."""
    write_recipe_data("resnet50_imagenet", tmp_path / "data")
    db = tmp_path / "store" / "cvbench.db"
    args = [f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_cli(
        "reproduce", "recipe=resnet50_imagenet", *CPU, *TINY["resnet50_imagenet"], *args,
        "++callbacks.progress_bar=null", f"db={db}", cwd=tmp_path,
    )  # fmt: skip
    with ResultsStore(db) as store:
        [record] = store.runs()
    assert record.experiment == "repro/resnet50_imagenet" and record.status == "completed"
    want = verdict_lines(OmegaConf.to_container(OmegaConf.create(record.config))["expected"],
                         record.metrics)  # fmt: skip
    passed = all(line.startswith("PASS") for line in want)
    assert done.returncode == (0 if passed else 1), done.stderr[-3000:]
    out = done.stdout.splitlines()
    assert out[-len(want) - 1 : -1] == want
    assert out[-1].startswith("PASS" if passed else "FAIL")
    listed = run_cli("reproduce", f"db={db}", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    at = lines.index(f"repro/resnet50_imagenet: {'PASS' if passed else 'FAIL'}")
    assert lines[at + 2 : at + 2 + len(want)] == [f"  {line}" for line in want]
    assert f"run {record.run_id}" in lines[at + 2 + len(want)]
    assert "repro/edsr_x2_set5: not run" in lines

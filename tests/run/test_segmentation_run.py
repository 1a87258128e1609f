"""Semantic segmentation runs end to end on real files: the mIoU a run reports equals
scikit-learn's confusion matrix over the split, built here from the run's own checkpoint, on one
process and on two (DDP); label traps stop the run with an error naming the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import eval_single_and_ddp, run_cli
from PIL import Image
from sklearn.metrics import confusion_matrix

from cvbench.run.build import build_datamodule, build_model
from cvbench.run.train import run_train

UNET = (
    "model=segmentation/unet_small",
    "task=segmentation",
    "optim=adamw",
    "optim.lr=0.003",
    "sched=none",
    "data.num_workers=0",
    "data.batch_size=2",
    "trainer.max_epochs=1",
)
TINY_SHAPES = (
    "data=segmentation/shapes",
    "data.records.instances.num_images={train: 8, val: 4, test: 7}",  # odd: DDP pads a shard
)


def sklearn_scores(truths: list[np.ndarray], preds: list[np.ndarray], k: int) -> dict:
    """mIoU and pixel accuracy (percent) from scikit-learn's confusion matrix over all pixels
    of all images, ignore (255) left out; classes absent from both sides left out of the mean."""
    t = np.concatenate([x.ravel() for x in truths])
    p = np.concatenate([x.ravel() for x in preds])
    keep = t != 255
    cm = confusion_matrix(t[keep], p[keep], labels=list(range(k))).astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    return {
        "miou": 100 * np.mean(tp[union > 0] / union[union > 0]),
        "pixel_acc": 100 * tp.sum() / cm.sum(),
    }


def predict_split(cfg, ckpt: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Ground truth and predictions of every test image, with the checkpoint's net applied here
    by hand: normalized image in, logits upsampled to the label's size, argmax."""
    net = build_model(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    net.load_state_dict({k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")})
    net.eval()
    datamodule = build_datamodule(cfg)
    dataset = datamodule.split("test")
    truths, preds = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            image, mask, index = dataset[i]
            assert index == i
            logits = net(image[None])
            logits = F.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)
            truths.append(dataset.records.load_mask(i))
            preds.append(logits.argmax(1)[0].numpy())
    return truths, preds


@pytest.mark.slow
def test_shapes_run_reports_sklearn_miou(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(*TINY_SHAPES, *UNET)
    metrics = run_train(cfg)
    run = tmp_path / "run"
    truths, preds = predict_split(cfg, run / "checkpoints" / "last.ckpt")
    expected = sklearn_scores(truths, preds, 5)
    assert metrics["test/miou"] == pytest.approx(expected["miou"], abs=1e-9)
    assert metrics["test/pixel_acc"] == pytest.approx(expected["pixel_acc"], abs=1e-9)
    assert metrics["test/num_images"] == 7
    assert metrics["test/inference"] == "whole"
    assert json.loads((run / "metrics.json").read_text())["test/miou"] == metrics["test/miou"]
    rows = list(csv.DictReader((run / "test_per_class_iou.csv").open()))
    assert [r["name"] for r in rows] == ["background", "circle", "square", "triangle", "ring"]
    gt_pixels = sum(int(r["gt_pixels"]) for r in rows)
    assert gt_pixels == sum(int((t != 255).sum()) for t in truths)
    confusion = list(csv.reader((run / "test_confusion_matrix.csv").open()))
    assert len(confusion) == 6 and len(confusion[0]) == 6
    assert (run / "test_samples.png").stat().st_size > 0


@pytest.mark.slow
def test_sliding_window_eval_runs_at_label_size(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        *TINY_SHAPES,
        *UNET,
        "trainer.max_epochs=0",
        "task.module.inference.mode=slide",
        "task.module.inference.crop_size=[64,64]",
        "task.module.inference.stride=[43,43]",
    )
    metrics = run_train(cfg)
    assert metrics["test/inference"] == "slide"
    assert 0 <= metrics["test/miou"] <= 100
    # Every scored pixel is a pixel of a label map at its own size, predicted once.
    records = build_datamodule(cfg).split("test").records
    scored = sum(int((records.load_mask(i) != 255).sum()) for i in range(len(records)))
    rows = list(csv.DictReader((tmp_path / "run" / "test_per_class_iou.csv").open()))
    assert sum(int(r["pred_pixels"]) for r in rows) == scored > 0
    assert sum(int(r["gt_pixels"]) for r in rows) == scored


@pytest.mark.slow
def test_ddp_cpu_segmentation_eval_equals_single_process(make_cfg, tmp_path: Path) -> None:
    run_train(make_cfg(*TINY_SHAPES, *UNET))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    # data.batch_size=1: the same numerics per image on either side
    results = eval_single_and_ddp(ckpt, tmp_path, "data.batch_size=1")
    single, ddp = results["single"], results["ddp"]
    assert single["test/num_images"] == ddp["test/num_images"] == 7  # the padded image once
    for key in ("miou", "pixel_acc", "mean_acc", "fwiou"):
        assert ddp[f"test/{key}"] == single[f"test/{key}"], key
    confusion = [(tmp_path / r / "test_confusion_matrix.csv").read_text() for r in results]
    assert confusion[0] == confusion[1]


def write_binary_masks(root: Path) -> None:
    """A mask-folder dataset whose masks hold 0 and 255, as many binary datasets ship them."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(2):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            mask = np.zeros((32, 32), np.uint8)
            mask[8:20, 8:20] = 255
            Image.fromarray(image).save(root / "images" / split / f"{i}.png")
            Image.fromarray(mask).save(root / "masks" / split / f"{i}.png")


@pytest.mark.slow
def test_binary_mask_trap_stops_the_run_with_the_fix(tmp_path: Path) -> None:
    write_binary_masks(tmp_path / "data" / "masks")
    done = run_cli(
        "train",
        "data=segmentation/masks",
        "data.num_classes=2",
        *UNET,
        f"paths.data_dir={tmp_path / 'data'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "255" in done.stderr and "value_map" in done.stderr
    assert "Traceback" not in done.stderr

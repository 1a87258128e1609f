"""The text-detection task: its losses against hand computations, its evaluation path (boxes
scaled back to the original pixels, scored, written as ICDAR 2015 result files and a per-image
CSV) with a network whose probability map is known, and a tiny end-to-end run through the real
config and ``run_train``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader

from cvbench.data.batches import TextDetectionBatch
from cvbench.data.formats.icdar2015 import read_icdar2015
from cvbench.run.build import build_task
from cvbench.run.train import run_train
from cvbench.tasks.text_detection import balanced_bce, dice_loss, masked_l1
from cvbench.tasks.text_detection_report import TextDetectionReport
from cvbench.tasks.text_detection_targets import db_targets

TINY = (
    "data.records.num_images={train: 4, val: 2, test: 3}",
    "data.records.image_size=96",
    "data.image_size=64",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
)


def test_balanced_bce_keeps_the_hardest_negatives_three_to_one() -> None:
    prob = torch.tensor([0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.05, 0.6]).reshape(1, 1, 2, 4)
    target = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0]).reshape(1, 1, 2, 4)
    mask = torch.ones_like(target)
    mask[0, 0, 1, 3] = 0  # the 0.6 negative is ignored
    hardest = [-math.log(1 - p) for p in (0.5, 0.4, 0.3)]
    expected = (-math.log(0.8) + sum(hardest)) / 4
    assert balanced_bce(prob, target, mask, 3.0).item() == pytest.approx(expected, rel=1e-5)


def test_dice_and_l1_known_answers() -> None:
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert dice_loss(target, target, mask).item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.tensor([1.0, 0.0, 1.0, 1.0])  # 1 overlap, |P| = 2 and |T| = 2 in the mask
    assert dice_loss(pred, target, mask).item() == pytest.approx(0.5, abs=1e-6)
    assert masked_l1(pred, target, mask).item() == pytest.approx(2 / 3, abs=1e-6)


class KnownMap(nn.Module):
    """A network whose probability map is the given one, for every image (it has one
    parameter so that the task can build an optimizer)."""

    def __init__(self, prob: np.ndarray) -> None:
        super().__init__()
        self.prob = torch.from_numpy(prob)[None, None]
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"prob": self.prob.expand(len(images), -1, -1, -1).clone()}


def test_boxes_are_scored_and_written_in_original_pixels(make_cfg, tmp_path: Path) -> None:
    """A 64 x 64 input resized from a 128 x 256 (W x H) original: scales (0.5, 0.25). The
    network's map holds one text region; its box comes back in the original's pixels, matches
    the ground truth there, and lands in res_<stem>.txt, the CSV and the sample grid."""
    rect = np.array([[20, 10], [50, 10], [50, 30], [20, 30]], dtype=np.float64)
    prob = 0.9 * db_targets(rect[None], np.array([False]), 64, 64).prob
    task = build_task(make_cfg("experiment=ocr/dbnet_synth", *TINY))
    task.net = KnownMap(prob)
    other = torch.tensor([[[2.0, 40], [12, 40], [12, 60], [2, 60]]])  # a word it misses
    batch = TextDetectionBatch(
        images=torch.rand(2, 3, 64, 64),
        polygons=[torch.from_numpy(rect).float()[None], other],
        ignore=[torch.tensor([False]), torch.tensor([False])],
        texts=[["word"], ["miss"]],
        scales=torch.tensor([[0.5, 0.25], [1.0, 1.0]]),
        names=["img_7", "img_8"],
        indices=torch.tensor([6, 7]),
    )
    run_dir = tmp_path / "run"
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TextDetectionReport(output_dir=str(run_dir), num_samples=2)],
    )
    (metrics,) = trainer.test(task, dataloaders=DataLoader([batch], batch_size=None))
    # image 7 matches in the original pixels, image 8's box (the same map) does not
    assert metrics["test/recall"] == pytest.approx(0.5)
    assert metrics["test/precision"] == pytest.approx(0.5)
    assert metrics["test/num_images"] == 2
    result = read_icdar2015(run_dir / "test_results" / "res_img_7.txt", "res")
    expected = rect / [0.5, 0.25]  # x 40..100, y 40..120
    np.testing.assert_allclose(result["polygons"][0], expected, atol=4.0)
    assert result["scores"].tolist() == pytest.approx([0.9])
    same_map = read_icdar2015(run_dir / "test_results" / "res_img_8.txt", "res")
    np.testing.assert_allclose(same_map["polygons"][0], rect, atol=2.0)  # scale 1
    with open(run_dir / "test_per_image.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["index"], r["name"], r["num_matched"], r["hmean"]) for r in rows] == [
        ("6", "img_7", "1", "1.000000"),
        ("7", "img_8", "0", "0.000000"),
    ]
    with Image.open(run_dir / "test_samples.png") as grid:
        assert grid.width > grid.height > 0
    assert task.results["test"]["test/detection_protocol"].startswith("ICDAR 2015")


@pytest.mark.slow
def test_tiny_training_run_writes_its_metrics_and_files(make_cfg) -> None:
    cfg = make_cfg("experiment=ocr/dbnet_synth", *TINY)
    metrics = run_train(cfg)
    for stage in ("val", "test"):
        for key in ("precision", "recall", "hmean", "hmean_best_thr"):
            assert 0.0 <= metrics[f"{stage}/{key}"] <= 1.0, key
        assert metrics[f"{stage}/best_thr"] in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert metrics["test/num_images"] == 3 and metrics["val/num_images"] == 2
    assert metrics["train/loss"] > 0
    run_dir = Path(cfg.paths.output_dir)
    with open(run_dir / "test_per_image.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["name"] for r in rows] == ["img_1", "img_2", "img_3"]
    for row in rows:
        result = read_icdar2015(run_dir / "test_results" / f"res_{row['name']}.txt", "res")
        assert len(result["polygons"]) >= int(row["num_pred"])
        # the generated images are 96 px: boxes in their pixels, not the 64 px inputs'
        assert (result["polygons"] >= 0).all() and (result["polygons"] <= 96).all()
    assert (run_dir / "test_samples.png").is_file()

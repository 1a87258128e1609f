"""The translation tasks (pix2pix, CycleGAN) through the real config and the real run_train on
the embedded shapes at tiny sizes: the image pool and GAN losses against known answers, the
reported keys and ranges, the FCN-score of the real images against a segmenter that learned,
checkpoints without the judge, the cached judge read back, and ``cvbench sample input=DIR``'s
translation of a folder of odd-sized PNGs (names and sizes kept)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from PIL import Image

from cvbench.run.build import build_task
from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.sample import load_task, translate_folder
from cvbench.run.train import run_train
from cvbench.tasks.cyclegan import ImagePool
from cvbench.tasks.translation import gan_loss

SEG = "seg_shapes64_s0"
DOMAINS = "cnn_shapes_domains64_s0"


def test_gan_losses_known_answers() -> None:
    zeros = torch.zeros(2, 1, 3, 3)
    assert gan_loss("vanilla", zeros, True).item() == pytest.approx(math.log(2))
    assert gan_loss("lsgan", zeros, True).item() == 1.0
    assert gan_loss("lsgan", torch.ones(1, 1, 2, 2), False).item() == 1.0


def test_image_pool_fills_then_swaps_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: the new images pass through
    new = torch.arange(10.0, 410.0).reshape(400, 1, 1, 1)
    out = pool.query(new).flatten()
    swapped = out != new.flatten()
    # with probability 1/2 an image of the pool came back (an earlier one) and the new one
    # took its place: nothing is lost or duplicated
    assert 150 < int(swapped.sum()) < 250
    assert (out[swapped] < new.flatten()[swapped]).all()
    kept = torch.stack(pool.images).flatten()
    assert torch.equal(torch.cat([out, kept]).sort().values, torch.cat([first.flatten(),
                       new.flatten()]).sort().values)  # fmt: skip
    assert len(pool.images) == 3
    assert torch.equal(ImagePool(0).query(new), new)


def checkpoint_of(run_dir: Path) -> Path:
    return sorted((run_dir / "checkpoints").glob("*.ckpt"))[-1]


def write_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """Two PNGs of sizes no network takes directly (not multiples of 64 or 4)."""
    sizes = {"a.png": (50, 70), "sub/b.png": (33, 41)}
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return sizes


def check_translates_folder(ckpt: Path, tmp_path: Path) -> None:
    sizes = write_inputs(tmp_path / "inputs")
    task = load_task(ckpt, output_dir=tmp_path / "sample")
    translate_folder(task, input_path=tmp_path / "inputs", output=tmp_path / "out")
    for name, (h, w) in sizes.items():
        with Image.open(tmp_path / "out" / name) as image:
            assert image.size == (w, h) and image.mode == "RGB"


@pytest.mark.slow
def test_pix2pix_without_label_maps_refuses_the_segmenter_judge(make_cfg) -> None:
    """Paired folders without a palette or label maps have no classes: the FCN-score's judge
    is refused, naming the key and the way out; with no judge the task builds (PSNR / SSIM)."""
    overrides = ("experiment=synthesis/pix2pix_shapes", "data=translation/paired_folders")
    with pytest.raises(InstantiationException) as raised:
        build_task(make_cfg(*overrides, "data.records.root=/nowhere"))
    message = str(raised.value.__cause__)
    assert message.startswith("task.module.judge: seg_shapes64_s0 is a segmenter") and (
        "task.module.judge=null" in message
    )
    task = build_task(make_cfg(*overrides, "data.records.root=/nowhere", "task.module.judge=null"))
    assert task.judge is None and len(task.fcn) == 0


def test_pix2pix_reports_fcn_scores_and_translates_a_folder(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "experiment=synthesis/pix2pix_shapes",
        "data.records.num_images={train: 24, val: 8, test: 8}",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "task.module.judge.train_epochs=12",
        "task.module.grid_size=2",
    )
    metrics = run_train(cfg)
    for stage in ("val", "test"):
        for key in ("fcn_miou", "fcn_pixel_accuracy", "fcn_real_miou", "fcn_real_pixel_accuracy"):
            assert 0.0 <= metrics[f"{stage}/{key}"] <= 100.0, key
        assert metrics[f"{stage}/num_images"] == 8 and metrics[f"{stage}/num_real"] == 8
        assert metrics[f"{stage}/psnr"] > 0 and -1 <= metrics[f"{stage}/ssim"] <= 1
        assert metrics[f"{stage}/fid@{SEG}"] >= 0 and f"{stage}/fid" not in metrics
        assert re.search(
            rf"weights {SEG}-[0-9a-f]{{8}}\.pt sha256 ", metrics[f"{stage}/fid_protocol"]
        )
        assert metrics[f"{stage}/judge"] == SEG
    # the segmenter learned the real photos: always guessing the background, the most frequent
    # class, gives an mIoU of at most 100 / 5 (one class of five with an IoU above 0)
    assert metrics["test/fcn_real_miou"] > 30.0, metrics["test/fcn_real_miou"]
    run_dir = Path(cfg.paths.output_dir)
    assert (run_dir / "samples" / "epoch_000.png").is_file() and (run_dir / "samples.png").is_file()
    with Image.open(run_dir / "samples.png") as grid:  # 2 rows of 3 images of 64 px, 2 px border
        assert grid.size == (3 * 66 + 2, 2 * 66 + 2)
    ckpt = checkpoint_of(run_dir)
    state = read_checkpoint(ckpt)["state_dict"]
    assert any(k.startswith("generator.") for k in state)
    assert not any(k.startswith("judge.") for k in state)
    check_translates_folder(ckpt, tmp_path)

    # a second run reads the cached judge: the same weights file, the same protocol
    again = run_train(
        make_cfg(
            "experiment=synthesis/pix2pix_shapes",
            "data.records.num_images={train: 24, val: 8, test: 8}",
            "data.batch_size=8",
            "trainer.max_epochs=1",
            "task.module.judge.train_epochs=12",
            "train=false",
            run="again",
        )
    )
    sha = metrics["test/fid_protocol"].split("sha256 ")[1][:12]
    assert sha in again["test/fid_protocol"]
    assert again["test/fcn_real_miou"] == metrics["test/fcn_real_miou"]


@pytest.mark.slow
def test_cyclegan_reports_both_directions_and_translates_a_folder(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "experiment=synthesis/cyclegan_shapes",
        "data.records.num_images={train: 8, val: 4, test: 6}",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "task.module.pool_size=3",
        "task.module.grid_size=2",
    )
    metrics = run_train(cfg)
    for stage in ("val", "test"):
        for direction in ("ab_", "ba_"):
            assert metrics[f"{stage}/{direction}fid@{DOMAINS}"] >= 0
            assert metrics[f"{stage}/{direction}kid@{DOMAINS}"] is not None
        assert 0 <= metrics[f"{stage}/ab_as_b"] <= 100 and 0 <= metrics[f"{stage}/ba_as_a"] <= 100
        assert "test accuracy A vs B" in metrics[f"{stage}/fid_protocol"]
    # every test image of both domains once, real and translated
    assert metrics["test/ab_num_real"] == 6 and metrics["test/ab_num_fake"] == 6
    with Image.open(Path(cfg.paths.output_dir) / "samples.png") as grid:  # A | G(A) | ... 6 wide
        assert grid.size == (6 * 66 + 2, 2 * 66 + 2)
    ckpt = checkpoint_of(Path(cfg.paths.output_dir))
    state = read_checkpoint(ckpt)["state_dict"]
    assert {k.split(".")[0] for k in state} >= {
        "generator_ab", "generator_ba", "discriminator_a", "discriminator_b"
    }  # fmt: skip
    assert not any(k.startswith("judge.") for k in state)
    check_translates_folder(ckpt, tmp_path)

"""Image restoration runs end to end on the embedded photos: the baseline PSNR a run reports
equals the papers' protocol computed here independently (MATLAB bicubic, BT.601 Y, border
crop, 8-bit rounding), a baseline run as the model scores what the task's reference scores,
a checkpoint re-scores the same, and the sample grid reaches the files and the loggers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
from conftest import eval_single_and_ddp
from matlab_reference import imresize_reference
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio
from sklearn.datasets import load_sample_image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cvbench.run.evaluate import run_eval
from cvbench.run.train import run_train

TINY = ("data.repeat=2", "data.batch_size=4", "data.patch_size=48", "trainer.max_epochs=1")
TEST_PHOTOS = {"chelsea.png": skimage.data.chelsea(), "flower.png": load_sample_image("flower.jpg")}


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """BT.601 Y in [16, 235] of (H, W, 3) values in [0, 255], as MATLAB's rgb2ycbcr (unrounded)."""
    return 16 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255


def bicubic_y_psnr(image: np.ndarray, scale: int) -> float:
    """The SR papers' bicubic baseline of one image, from scratch: modcrop, MATLAB downscale to
    uint8, MATLAB upscale to uint8, Y channel, ``scale`` pixels cropped, PSNR."""
    h, w = image.shape[:2]
    hr = image[: h - h % scale, : w - w % scale]
    up = imresize_reference(imresize_reference(hr, 1 / scale), scale)
    c = scale
    return peak_signal_noise_ratio(
        y_channel(hr)[c:-c, c:-c], y_channel(up)[c:-c, c:-c], data_range=255
    )


@pytest.mark.slow
def test_super_resolution_run_reports_the_papers_bicubic_baseline(
    make_cfg, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "run"))
    cfg = make_cfg("experiment=super_resolution/photos_edsr_x2", "logger=many", *TINY)
    metrics = run_train(cfg)
    expected = np.mean([bicubic_y_psnr(image, 2) for image in TEST_PHOTOS.values()])
    assert metrics["test/baseline_psnr"] == pytest.approx(expected, abs=1e-9)
    assert metrics["test/color"] == "y" and metrics["test/crop_border"] == 2
    assert metrics["test/quantization"] == "8-bit" and metrics["test/num_images"] == 2
    assert 0 < metrics["test/ssim"] <= 1 and np.isfinite(metrics["test/psnr"])

    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "metrics.json").read_text()) == pytest.approx(metrics)
    with open(run_dir / "test_per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == list(TEST_PHOTOS)
    assert np.mean([float(r["psnr"]) for r in rows]) == pytest.approx(
        metrics["test/psnr"], abs=1e-5
    )
    baseline = [bicubic_y_psnr(image, 2) for image in TEST_PHOTOS.values()]
    assert [float(r["baseline_psnr"]) for r in rows] == pytest.approx(baseline, abs=1e-5)

    with Image.open(run_dir / "test_samples.png") as grid:
        assert grid.format == "PNG" and grid.width > 4 * 100 and grid.height > 2 * 100
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    (logged,) = events.Images("test/samples")
    assert (logged.width, logged.height) == grid.size
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    assert list((offline / "files" / "media" / "images" / "test").glob("samples_*.png"))

    # The checkpoint scores the same again through `cvbench eval`.
    ckpt = sorted((run_dir / "checkpoints").glob("epoch_*.ckpt"))[0]
    again = run_eval(make_cfg(f"ckpt_path={ckpt}", name="eval", run="eval"), [f"ckpt_path={ckpt}"])
    assert again["test/psnr"] == pytest.approx(metrics["test/psnr"], abs=1e-9)


@pytest.mark.slow
def test_bicubic_model_scores_what_the_baseline_scores(make_cfg) -> None:
    """The baseline as the model, through the same evaluation: no training, same numbers."""
    cfg = make_cfg(
        "data=restoration/photos",
        "task=super_resolution",
        "model=super_resolution/bicubic",
        "data.scale=3",
        "train=false",
        "callbacks.model_checkpoint=null",
    )
    metrics = run_train(cfg)
    assert metrics["test/crop_border"] == 3
    assert metrics["test/psnr"] == metrics["test/baseline_psnr"]
    expected = np.mean([bicubic_y_psnr(image, 3) for image in TEST_PHOTOS.values()])
    assert metrics["test/psnr"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.slow
def test_colorization_run_scores_the_gray_image_as_baseline(make_cfg, tmp_path: Path) -> None:
    metrics = run_train(make_cfg("experiment=colorization/photos_unet", *TINY))
    gray = []
    for image in TEST_PHOTOS.values():  # L* kept, a* = b* = 0, back to 8-bit RGB (skimage)
        lab = skimage.color.rgb2lab(image)
        lab[..., 1:] = 0
        rgb = np.round(np.clip(skimage.color.lab2rgb(lab), 0, 1) * 255)
        gray.append(peak_signal_noise_ratio(image.astype(np.float64), rgb, data_range=255))
    # kornia converts in float32: a pixel may round to the next 8-bit level.
    assert metrics["test/baseline_psnr"] == pytest.approx(np.mean(gray), abs=0.02)
    assert metrics["test/color"] == "rgb" and metrics["test/crop_border"] == 0
    assert (tmp_path / "run" / "test_samples.png").is_file()


@pytest.mark.slow
def test_inpainting_run_keeps_known_pixels_and_fixed_masks(make_cfg, tmp_path: Path) -> None:
    first = run_train(make_cfg("experiment=inpainting/photos_unet", *TINY, run="a"))
    again = run_train(make_cfg("experiment=inpainting/photos_unet", *TINY, "seed=7", run="b"))
    # Different training, the same fixed test masks: the mean-fill baseline scores the same.
    assert first["test/baseline_psnr"] == again["test/baseline_psnr"]
    assert first["test/psnr"] != again["test/psnr"]
    assert first["test/color"] == "rgb" and first["test/num_images"] == 2


@pytest.mark.slow
def test_ddp_cpu_restoration_eval_equals_single_process(make_cfg, tmp_path: Path) -> None:
    """Three test photos on two processes: one shard is padded with a repeated image, which is
    scored once; every number equals the one-process evaluation."""
    run_train(
        make_cfg(
            "experiment=super_resolution/photos_edsr_x2",
            "data.records.test=[chelsea,flower,coffee]",
            *TINY,
        )
    )
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    results = eval_single_and_ddp(ckpt, tmp_path, "data.batch_size=1")
    single, ddp = results["single"], results["ddp"]
    assert single["test/num_images"] == ddp["test/num_images"] == 3
    for key in ("psnr", "ssim", "baseline_psnr", "baseline_ssim"):
        assert ddp[f"test/{key}"] == pytest.approx(single[f"test/{key}"], abs=1e-9), key
    tables = [(tmp_path / r / "test_per_image.csv").read_text() for r in results]
    assert tables[0] == tables[1]

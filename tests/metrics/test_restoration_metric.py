"""PSNR and SSIM of restored images: scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` on RGB, BasicSR's Y-channel code transcribed in numpy and OpenCV
(``to_y_channel``, ``calculate_psnr``, ``_ssim``) for the papers' convention with the border crop
and the 8-bit rounding, known answers, and the per-image records kept once per dataset index,
also across two real gloo processes."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor
from torch.utils.data import DistributedSampler
from torchmetrics.image import PeakSignalNoiseRatio

import cvbench.metrics.restoration as restoration_module
from cvbench.metrics.restoration import RestorationMetric, psnr, quantize, rgb_to_y, ssim

SIZES = [(24, 31), (40, 17), (19, 19), (33, 45), (21, 28), (16, 50), (30, 30)]
SKIMAGE_SSIM = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
}


def random_pair(seed: int, size: tuple[int, int], channels: int = 3) -> tuple[Tensor, Tensor]:
    """A smooth-ish 8-bit target in [0, 1] and a noisy output of it, partly outside [0, 1] and
    with offsets of a fraction of a gray level (so the rounding matters)."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    coarse = torch.rand(1, channels, h // 4 + 2, w // 4 + 2, generator=gen)
    target = torch.nn.functional.interpolate(coarse, (h, w), mode="bilinear")
    target = torch.round(target * 255) / 255
    noise = 0.04 * torch.randn(1, channels, h, w, generator=gen)
    fraction = (torch.rand(1, channels, h, w, generator=gen) - 0.5) / 255
    return (target + noise + fraction).float(), target.float()


def to_hwc(image: Tensor) -> np.ndarray:
    """(1, C, H, W) float in [0, 1] -> (H, W, C) float64 in [0, 255], rounded as BasicSR's
    ``tensor2img``: ``(clip(x, 0, 1) * 255).round()``."""
    array = image[0].permute(1, 2, 0).double().numpy()
    return (np.clip(array, 0, 1) * 255.0).round()


def basicsr_y(image_rgb: np.ndarray) -> np.ndarray:
    """BasicSR ``to_y_channel`` on an RGB (H, W, 3) image in [0, 255], in float64: BasicSR reads
    BGR and dots it with (24.966, 128.553, 65.481), adding 16 (MATLAB ``rgb2ycbcr``)."""
    bgr = image_rgb[..., ::-1] / 255.0
    return (np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0)[..., None]


def basicsr_psnr(img: np.ndarray, img2: np.ndarray) -> float:
    mse = np.mean((img.astype(np.float64) - img2.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 * 255.0 / mse)


def basicsr_ssim_channel(img: np.ndarray, img2: np.ndarray) -> float:
    """BasicSR ``_ssim``: a full 11 x 11 OpenCV Gaussian window, ``filter2D``, valid crop."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    mu1 = cv2.filter2D(img, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(img2, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = cv2.filter2D(img**2, -1, window)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(img2**2, -1, window)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(img * img2, -1, window)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def basicsr_scores(output: Tensor, target: Tensor, *, y: bool, crop: int) -> tuple[float, float]:
    """BasicSR ``calculate_psnr`` and ``calculate_ssim`` (crop, then Y, then score)."""
    img, img2 = to_hwc(output), to_hwc(target)
    if crop:
        img, img2 = img[crop:-crop, crop:-crop], img2[crop:-crop, crop:-crop]
    if y:
        img, img2 = basicsr_y(img), basicsr_y(img2)
    channels = [basicsr_ssim_channel(img[..., c], img2[..., c]) for c in range(img.shape[2])]
    return basicsr_psnr(img, img2), float(np.mean(channels))


# --- pure functions -----------------------------------------------------------------------------


def test_doctests() -> None:
    result = doctest.testmod(restoration_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_quantize_rounds_and_clamps() -> None:
    x = torch.tensor([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 100.4 / 255, 254.6 / 255, 1.0, 7.0])
    out = quantize(x)
    assert out.dtype == torch.float64
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 100.0, 255.0, 255.0, 255.0]
    every_level = torch.arange(256, dtype=torch.float32) / 255  # 8-bit images are unchanged
    assert quantize(every_level).tolist() == list(map(float, range(256)))
    with pytest.raises(ValueError, match="dtype torch.uint8; expected a float image"):
        quantize(torch.zeros(3, dtype=torch.uint8))


def test_rgb_to_y_equals_basicsr_and_matlab_values() -> None:
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0)).double() * 255
    y = rgb_to_y(rgb)
    assert y.shape == (2, 1, 5, 7) and y.dtype == torch.float64
    for i in range(2):
        expected = basicsr_y(rgb[i].permute(1, 2, 0).numpy())
        np.testing.assert_allclose(y[i].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-12)
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) is 81.481 before its rounding to uint8 (81)
    red = torch.tensor([255.0, 0.0, 0.0], dtype=torch.float64).reshape(3, 1, 1)
    assert rgb_to_y(red).item() == pytest.approx(16 + 65.481, abs=1e-12)
    assert rgb_to_y(torch.zeros(3, 1, 1, dtype=torch.float64)).item() == 16.0
    with pytest.raises(ValueError, match=r"shape \(1, 1, 4, 4\); expected \(..., 3, H, W\) RGB"):
        rgb_to_y(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("crop", [0, 1, 3])
def test_rgb_scores_equal_scikit_image(crop: int) -> None:
    for seed, size in enumerate(SIZES[:4]):
        output, target = random_pair(seed, size)
        img, img2 = to_hwc(output), to_hwc(target)
        if crop:
            img, img2 = img[crop:-crop, crop:-crop], img2[crop:-crop, crop:-crop]
        expected_psnr = peak_signal_noise_ratio(img2, img, data_range=255)
        expected_ssim = structural_similarity(img2, img, channel_axis=2, **SKIMAGE_SSIM)
        got_psnr = psnr(output, target, color="rgb", crop_border=crop)
        got_ssim = ssim(output, target, color="rgb", crop_border=crop)
        assert got_psnr.dtype == got_ssim.dtype == torch.float64
        assert got_psnr.item() == pytest.approx(expected_psnr, abs=1e-10)
        assert got_ssim.item() == pytest.approx(expected_ssim, abs=1e-10)
        assert 0.3 < expected_ssim < 0.99  # a case where a wrong window or constant shows


@pytest.mark.parametrize("crop", [0, 2, 4])
def test_y_scores_equal_basicsr_transcription_and_scikit_image(crop: int) -> None:
    for seed, size in enumerate(SIZES):
        if min(size) - 2 * crop < 11:  # too small for the SSIM window (an error, tested below)
            continue
        output, target = random_pair(10 + seed, size)
        expected_psnr, expected_ssim = basicsr_scores(output, target, y=True, crop=crop)
        assert psnr(output, target, crop_border=crop).item() == pytest.approx(
            expected_psnr, abs=1e-10
        )
        got_ssim = ssim(output, target, crop_border=crop).item()
        assert got_ssim == pytest.approx(expected_ssim, abs=1e-10)
        y, y2 = basicsr_y(to_hwc(output)), basicsr_y(to_hwc(target))
        if crop:
            y, y2 = y[crop:-crop, crop:-crop], y2[crop:-crop, crop:-crop]
        assert got_ssim == pytest.approx(
            structural_similarity(y2[..., 0], y[..., 0], **SKIMAGE_SSIM), abs=1e-10
        )


def test_rgb_scores_equal_basicsr_transcription() -> None:
    output, target = random_pair(3, (26, 35))
    expected = basicsr_scores(output, target, y=False, crop=2)
    got = (psnr(output, target, color="rgb", crop_border=2).item(),)
    got += (ssim(output, target, color="rgb", crop_border=2).item(),)
    assert got == pytest.approx(expected, abs=1e-10)


def test_batch_scores_each_image() -> None:
    pairs = [random_pair(seed, (20, 24)) for seed in range(3)]
    output, target = torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])
    for fn in (psnr, ssim):
        batch = fn(output, target, crop_border=1)
        assert batch.shape == (3,)
        single = [fn(p, t, crop_border=1).item() for p, t in pairs]
        assert batch.tolist() == pytest.approx(single, abs=1e-12)


def test_known_answers_constant_offset() -> None:
    target = torch.arange(3 * 16 * 16, dtype=torch.float64).reshape(1, 3, 16, 16) % 200 / 255
    for d in (1, 3, 10):
        output = target + d / 255
        assert psnr(output, target, color="rgb").item() == pytest.approx(
            20 * math.log10(255 / d), abs=1e-10
        )
        # the same offset on R, G and B moves Y by d x 219 / 255
        assert psnr(output, target).item() == pytest.approx(
            20 * math.log10(255 / (d * 219 / 255)), abs=1e-10
        )
    # SSIM of a constant image against a constant offset: (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    flat = torch.full((1, 1, 12, 12), 100 / 255, dtype=torch.float64)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(flat + 10 / 255, flat, color="rgb").item() == pytest.approx(expected, abs=1e-10)


def test_rounding_to_8_bits_before_scoring() -> None:
    _, target = random_pair(4, (16, 16))
    below = target + 0.4 / 255  # rounds back to the target
    assert psnr(below, target, color="rgb").item() == math.inf
    assert psnr(below, target).item() == math.inf
    assert ssim(below, target).item() == 1.0
    above = target + 0.6 / 255  # rounds to one level up, except at 255 (clamped)
    at_top = (target * 255).round() == 255
    mse = (~at_top).double().mean().item()
    assert psnr(above, target, color="rgb").item() == pytest.approx(
        10 * math.log10(255**2 / mse), abs=1e-10
    )
    clamped = torch.where(target > 0.5, target + 0.6, -0.2)  # out of [0, 1]: clamped
    expected = torch.where(target > 0.5, 1.0, 0.0)
    assert psnr(clamped, target).item() == psnr(expected, target).item()


def test_crop_border_removes_the_border_only() -> None:
    _, target = random_pair(5, (20, 22))
    output = target.clone()
    output[..., :3, :] = 1 - output[..., :3, :]  # errors in the top 3 rows only
    assert psnr(output, target, crop_border=3).item() == math.inf
    assert ssim(output, target, crop_border=3).item() == 1.0
    assert psnr(output, target, crop_border=2).item() < 40


def test_gray_images_with_rgb_color_equal_scikit_image() -> None:
    output, target = random_pair(6, (18, 23), channels=1)
    img, img2 = to_hwc(output)[..., 0], to_hwc(target)[..., 0]
    assert psnr(output, target, color="rgb").item() == pytest.approx(
        peak_signal_noise_ratio(img2, img, data_range=255), abs=1e-10
    )
    assert ssim(output, target, color="rgb").item() == pytest.approx(
        structural_similarity(img2, img, **SKIMAGE_SSIM), abs=1e-10
    )
    with pytest.raises(ValueError, match="expected .* RGB for color='y'"):
        psnr(output, target)


@pytest.mark.parametrize(
    ("kwargs", "shapes", "message"),
    [
        ({"color": "ycbcr"}, [(1, 3, 16, 16)] * 2, "color 'ycbcr'; expected one of"),
        ({"crop_border": -1}, [(1, 3, 16, 16)] * 2, "crop_border -1; expected an integer >= 0"),
        ({"crop_border": 8}, [(1, 3, 16, 30)] * 2, "crop_border 8 leaves nothing of a 16x30"),
        ({}, [(1, 3, 16, 16), (1, 3, 16, 17)], r"preds shape \(1, 3, 16, 16\), targets shape"),
        ({}, [(3, 16, 16)] * 2, r"expected the same \(B, C, H, W\)"),
        ({"crop_border": 3}, [(1, 3, 16, 40)] * 2, "SSIM of a 10x34 .HxW. image"),
    ],
)
def test_input_errors(kwargs: dict, shapes: list, message: str) -> None:
    preds, targets = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        ssim(preds, targets, **kwargs)


# --- RestorationMetric --------------------------------------------------------------------------


def update_all(metric: RestorationMetric, pairs: list, order: list[int], batch: int) -> None:
    """Lists of (3, H_i, W_i) images, ``batch`` a call, in ``order``."""
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        metric.update([pairs[i][0][0] for i in chunk], [pairs[i][1][0] for i in chunk], chunk)


def expected_per_image(pairs: list, *, y: bool = True, crop: int = 0) -> list[tuple[float, float]]:
    return [basicsr_scores(p, t, y=y, crop=crop) for p, t in pairs]


@pytest.mark.parametrize(("color", "crop"), [("y", 2), ("rgb", 0)])
def test_metric_over_images_of_different_sizes(color: str, crop: int) -> None:
    pairs = [random_pair(20 + i, size) for i, size in enumerate(SIZES)]
    metric = RestorationMetric(color=color, crop_border=crop)
    update_all(metric, pairs, [3, 0, 6, 1, 5, 2, 4], batch=3)
    out = metric.compute()
    expected = expected_per_image(pairs, y=color == "y", crop=crop)
    assert [row["index"] for row in metric.last_per_image] == list(range(7))
    for row, (e_psnr, e_ssim) in zip(metric.last_per_image, expected, strict=True):
        assert row["psnr"] == pytest.approx(e_psnr, abs=1e-10)
        assert row["ssim"] == pytest.approx(e_ssim, abs=1e-10)
    assert out["num_images"] == 7
    assert out["psnr"] == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-10)
    assert out["ssim"] == pytest.approx(np.mean([e[1] for e in expected]), abs=1e-10)


def test_mean_of_images_is_not_a_pooled_psnr() -> None:
    """One image off by 1 gray level, one by 8: the mean of their PSNRs, not the PSNR of the
    mean MSE (torchmetrics' ``PeakSignalNoiseRatio`` default)."""
    target = torch.full((2, 3, 16, 16), 100 / 255)
    output = target + torch.tensor([1.0, 8.0]).reshape(2, 1, 1, 1) / 255
    metric = RestorationMetric(color="rgb")
    metric.update(output, target, torch.tensor([0, 1]))
    per_image = [20 * math.log10(255 / d) for d in (1, 8)]
    assert metric.compute()["psnr"] == pytest.approx(sum(per_image) / 2, abs=1e-10)
    pooled = 10 * math.log10(255**2 / ((1 + 64) / 2))
    assert abs(metric.compute()["psnr"] - pooled) > 5
    # torchmetrics pools by default, and averages per image with dim=(1, 2, 3)
    for dim, expected in ((None, pooled), ((1, 2, 3), sum(per_image) / 2)):
        reference = PeakSignalNoiseRatio(data_range=255.0, dim=dim)
        reference.update(quantize(output), quantize(target))
        assert reference.compute().item() == pytest.approx(expected, abs=1e-4)  # float32


def test_metric_batch_tensor_equals_list_and_forward_only_updates() -> None:
    pairs = [random_pair(30 + i, (22, 26)) for i in range(4)]
    as_tensor, as_list = RestorationMetric(crop_border=1), RestorationMetric(crop_border=1)
    output, target = torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])
    assert as_tensor(output, target, torch.arange(4)) is None
    as_list.update(list(output), list(target), torch.arange(4))
    assert as_tensor.compute() == pytest.approx(as_list.compute(), abs=1e-12)
    assert as_tensor.last_per_image == as_list.last_per_image


def test_a_repeated_index_is_counted_once_first_copy_kept() -> None:
    pairs = [random_pair(40 + i, size) for i, size in enumerate(SIZES[:4])]
    metric = RestorationMetric()
    update_all(metric, pairs, [0, 1, 2, 3], batch=2)
    metric.compute()
    first = [row["psnr"] for row in metric.last_per_image]
    worse = pairs[1][1][0] * 0.5  # image 1 again, another output (a second pass)
    metric.update([worse], [pairs[1][1][0]], torch.tensor([1]))
    out = metric.compute()
    assert out["num_images"] == 4
    assert [row["psnr"] for row in metric.last_per_image] == first
    assert out["psnr"] == pytest.approx(np.mean(first), abs=1e-12)


def test_sampler_shards_concatenated_as_the_gather_does() -> None:
    """The states of a padded ``DistributedSampler``'s two shards, concatenated as the gather
    hands them to ``compute``, score as one pass over the images."""
    pairs = [random_pair(50 + i, size) for i, size in enumerate(SIZES)]
    metric = RestorationMetric(color="rgb")
    for rank in range(2):
        shard = list(DistributedSampler(range(7), num_replicas=2, rank=rank, shuffle=False))
        update_all(metric, pairs, shard, batch=2)
    assert len(torch.cat(metric.index)) == 8  # image 0 twice
    out = metric.compute()
    expected = expected_per_image(pairs, y=False)
    assert out["num_images"] == 7
    assert out["psnr"] == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-10)


def test_metric_without_images() -> None:
    metric = RestorationMetric()
    with pytest.warns(UserWarning, match="compute.*before.*update"):
        assert metric.compute() == {"psnr": None, "ssim": None, "num_images": 0}
    assert metric.last_per_image == []
    metric.update(torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16), torch.zeros(0))
    assert metric.compute() == {"psnr": None, "ssim": None, "num_images": 0}


def test_metric_errors_name_the_image() -> None:
    metric = RestorationMetric(crop_border=4)
    good = torch.zeros(3, 24, 24)
    with pytest.raises(
        ValueError,
        match=r"image 1 of the batch \(dataset index 8\): SSIM of a 10x16 \(HxW\) image",
    ):
        metric.update([good, torch.zeros(3, 18, 24)], [good, torch.zeros(3, 18, 24)], [7, 8])
    with pytest.raises(ValueError, match="2 outputs, 2 targets, 1 dataset indices"):
        metric.update([good, good], [good, good], [7])
    with pytest.raises(ValueError, match=r"image 0 of .*: 2-dim image; expected \(C, H, W\)"):
        metric.update([torch.zeros(24, 24)], [torch.zeros(24, 24)], [0])
    with pytest.raises(ValueError, match="color 'lab'"):
        RestorationMetric(color="lab")
    assert metric.compute()["num_images"] == 0  # nothing was kept from the failed updates


# --- two real processes -------------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list | None) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        pairs = [random_pair(60 + i, size) for i, size in enumerate(SIZES)]
        if shards is None:
            sampler = DistributedSampler(range(7), num_replicas=world, rank=rank, shuffle=False)
            shard = list(sampler)
        else:
            shard = shards[rank]
        metric = RestorationMetric(crop_border=2)
        update_all(metric, pairs, shard, batch=2)
        result = metric.compute()
        Path(out, f"{rank}.json").write_text(
            json.dumps({"shard": shard, "stats": result, "per_image": metric.last_per_image})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_gather_once(tmp_path: Path) -> None:
    """Two gloo processes over 7 images of different sizes (rank 1's shard repeats image 0):
    every rank computes what one process computes on the 7 images."""
    results = run_two_processes(_ddp_worker, tmp_path)
    pairs = [random_pair(60 + i, size) for i, size in enumerate(SIZES)]
    single = RestorationMetric(crop_border=2)
    update_all(single, pairs, list(range(7)), batch=3)
    expected = single.compute()
    assert results[1]["shard"] == [1, 3, 5, 0]  # the padding repeats image 0
    for got in results:
        assert got["stats"]["num_images"] == 7
        assert got["stats"]["psnr"] == pytest.approx(expected["psnr"], abs=1e-12)
        assert got["stats"]["ssim"] == pytest.approx(expected["ssim"], abs=1e-12)
        assert [row["index"] for row in got["per_image"]] == list(range(7))
    # counting image 0 twice would change the mean
    psnrs = [row["psnr"] for row in single.last_per_image]
    assert abs(np.mean([*psnrs, psnrs[0]]) - expected["psnr"]) > 1e-6


@pytest.mark.timeout(120)
def test_two_processes_one_without_images(tmp_path: Path) -> None:
    """A process that scored no image (torchmetrics sends an empty float32 placeholder for its
    states) still gathers with the other's float64 states."""
    results = run_two_processes(_ddp_worker, tmp_path, shards=[[2, 0], []])
    pairs = [random_pair(60 + i, size) for i, size in enumerate(SIZES)]
    expected = expected_per_image([pairs[0], pairs[2]], crop=2)
    for got in results:
        assert got["stats"]["num_images"] == 2
        assert [row["index"] for row in got["per_image"]] == [0, 2]
        assert got["stats"]["psnr"] == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-10)

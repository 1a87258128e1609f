"""PSNR and SSIM of restored images, as the super-resolution papers compute them (METRICS.md).

References: BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (``test_y_channel``,
``crop_border``), which reproduce the MATLAB evaluation scripts of the SR papers; SSIM as Wang et
al., "Image Quality Assessment: From Error Visibility to Structural Similarity", IEEE TIP 2004
(11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03), equal to scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255)``.

Protocol, per image, in float64:

1. Round to 8 bits: ``round(clamp(x, 0, 1) * 255)`` (half to even, as numpy and torch round),
   for the output and for the target alike (an 8-bit target is unchanged).
2. Remove ``crop_border`` pixels from each side (the papers use the SR scale).
3. ``color="y"``: the Y of ITU-R BT.601 YCbCr as MATLAB's ``rgb2ycbcr`` computes it,
   16 + (65.481 R + 128.553 G + 24.966 B) / 255 with R, G, B in [0, 255], not rounded (as
   BasicSR; MATLAB on uint8 images would round Y too). ``color="rgb"``: every channel as is.
4. PSNR = 10 log10(255^2 / MSE), the MSE over the image's pixels and channels; infinite when the
   rounded images are equal. SSIM: the mean of the SSIM map over the valid region (the window
   never leaves the image, no padding); for several channels the mean of the channels' SSIMs.

Scores are the mean over images of these per-image values, never a PSNR of one MSE pooled over
the dataset (torchmetrics' ``PeakSignalNoiseRatio`` pools unless ``dim=(1, 2, 3)``).

``color="y"`` needs RGB (3 channels); ``color="rgb"`` takes any number of channels (a gray image
(B, 1, H, W) is scored as it is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric

COLORS = ("y", "rgb")
PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def quantize(image: Tensor) -> Tensor:
    """Round an image to 8-bit values.

    Args:
        image: float tensor, any shape, nominally in [0, 1] (values outside are clamped).

    Returns:
        float64 tensor of the same shape holding integers in [0, 255]:
        ``round(clamp(image, 0, 1) * 255)``, half to even.

    >>> quantize(torch.tensor([-0.1, 0.0, 0.6 / 255, 0.4, 1.0, 1.3])).tolist()
    [0.0, 0.0, 1.0, 102.0, 255.0, 255.0]
    """
    if not image.dtype.is_floating_point:
        raise ValueError(
            f"image has dtype {image.dtype}; expected a float image in [0, 1] "
            "(divide 8-bit images by 255)"
        )
    return image.detach().double().clamp(0.0, 1.0).mul(PEAK).round()


def rgb_to_y(image: Tensor) -> Tensor:
    """Y (luma) of ITU-R BT.601 YCbCr, as MATLAB ``rgb2ycbcr``, not rounded.

    Args:
        image: (..., 3, H, W) RGB in [0, 255] (float64 recommended).

    Returns:
        (..., 1, H, W) of the input's dtype, in [16, 235]:
        16 + (65.481 R + 128.553 G + 24.966 B) / 255.

    Cyan (0, 255, 255) is 16 + 128.553 + 24.966; white is 16 + 219:

    >>> round(rgb_to_y(torch.tensor([0.0, 255.0, 255.0]).reshape(3, 1, 1)).item(), 3)
    169.519
    >>> rgb_to_y(torch.full((3, 1, 2), 255.0, dtype=torch.float64)).flatten().tolist()
    [235.0, 235.0]
    """
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(
            f"image shape {tuple(image.shape)}; expected (..., 3, H, W) RGB for color='y' "
            "(gray images: color='rgb', or repeat them to 3 channels)"
        )
    r, g, b = image.unbind(-3)
    return (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / PEAK).unsqueeze(-3)


def _check_options(color: str, crop_border: int) -> None:
    if color not in COLORS:
        raise ValueError(f"color {color!r}; expected one of {COLORS}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border {crop_border!r}; expected an integer >= 0")


def _prepare(
    preds: Tensor, targets: Tensor, *, color: str, crop_border: int
) -> tuple[Tensor, Tensor]:
    """Both images rounded, cropped and converted: (B, C', H - 2 crop, W - 2 crop) float64 in
    [0, 255], C' = 1 for ``y``."""
    _check_options(color, crop_border)
    if preds.ndim != 4 or preds.shape != targets.shape:
        raise ValueError(
            f"preds shape {tuple(preds.shape)}, targets shape {tuple(targets.shape)}; expected "
            "the same (B, C, H, W) (the output at the target's size)"
        )
    height, width = preds.shape[-2:]
    if 2 * crop_border >= min(height, width):
        raise ValueError(
            f"crop_border {crop_border} leaves nothing of a {height}x{width} (HxW) image"
        )
    p, t = quantize(preds), quantize(targets)
    if crop_border:
        p = p[..., crop_border:-crop_border, crop_border:-crop_border]
        t = t[..., crop_border:-crop_border, crop_border:-crop_border]
    if color == "y":
        p, t = rgb_to_y(p), rgb_to_y(t)
    return p, t


def psnr(preds: Tensor, targets: Tensor, *, color: str = "y", crop_border: int = 0) -> Tensor:
    """Peak signal-to-noise ratio of each image (peak 255), after 8-bit rounding.

    Args:
        preds: (B, C, H, W) float in [0, 1] (clamped), C = 3 (RGB) for ``color="y"``.
        targets: (B, C, H, W) float in [0, 1].
        color: ``y`` (BT.601 luma) or ``rgb`` (all channels).
        crop_border: pixels removed from each side before scoring.

    Returns:
        (B,) float64 dB; ``inf`` where the rounded images are equal.

    A constant error of one gray level gives 20 log10(255) dB:

    >>> target = torch.arange(192.0).reshape(1, 3, 8, 8) / 255
    >>> psnr(target + 1 / 255, target, color="rgb")
    tensor([48.1308], dtype=torch.float64)
    >>> psnr(target, target, crop_border=2)
    tensor([inf], dtype=torch.float64)
    """
    p, t = _prepare(preds, targets, color=color, crop_border=crop_border)
    return _psnr_prepared(p, t)


def _psnr_prepared(p: Tensor, t: Tensor) -> Tensor:
    """(B,) PSNR in dB of (B, C, H, W) float64 images in [0, 255] (peak 255)."""
    mse = (p - t).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(PEAK**2 / mse)


def _gaussian_window() -> list[float]:
    """11 Gaussian weights, sigma 1.5, summing to 1 (OpenCV ``getGaussianKernel(11, 1.5)``)."""
    weights = [math.exp(-((k - SSIM_WINDOW // 2) ** 2) / (2 * SSIM_SIGMA**2)) for k in range(11)]
    return [w / math.fsum(weights) for w in weights]


def _filter_valid(maps: Tensor) -> Tensor:
    """Separable 11 x 11 Gaussian filter of (N, H, W) float64, valid region only (no padding):
    (N, H - 10, W - 10). Weighted sums of shifted views: several times faster than a float64
    ``conv2d`` on the CPU, with the same values to ~1e-13."""
    window = _gaussian_window()
    for dim in (-2, -1):
        size = maps.shape[dim] - SSIM_WINDOW + 1
        out = maps.narrow(dim, 0, size) * window[0]
        for k in range(1, SSIM_WINDOW):
            out.add_(maps.narrow(dim, k, size), alpha=window[k])
        maps = out
    return maps


def _ssim_per_channel(p: Tensor, t: Tensor) -> Tensor:
    """(B, C) mean SSIM of each channel of (B, C, H, W) float64 images in [0, 255]."""
    batch, channels, height, width = p.shape
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM of a {height}x{width} (HxW) image (after crop_border): the {SSIM_WINDOW}x"
            f"{SSIM_WINDOW} window needs at least {SSIM_WINDOW} pixels each way"
        )
    p, t = p.reshape(-1, height, width), t.reshape(-1, height, width)
    mu_p, mu_t, pp, tt, pt = _filter_valid(torch.cat([p, t, p * p, t * t, p * t])).chunk(5)
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )
    return ssim_map.mean(dim=(1, 2)).reshape(batch, channels)


def ssim(preds: Tensor, targets: Tensor, *, color: str = "y", crop_border: int = 0) -> Tensor:
    """Structural similarity of each image (Wang et al. 2004), after 8-bit rounding.

    Args:
        preds: (B, C, H, W) float in [0, 1] (clamped), C = 3 (RGB) for ``color="y"``; at least
            11 x 11 pixels once ``crop_border`` is removed.
        targets: (B, C, H, W) float in [0, 1].
        color: ``y`` (BT.601 luma) or ``rgb`` (the mean of the per-channel SSIMs).
        crop_border: pixels removed from each side before scoring.

    Returns:
        (B,) float64 in [-1, 1]; 1 where the rounded images are equal.

    >>> image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(image, image).tolist(), ssim(image, 1 - image, color="rgb").item() < 0
    ([1.0], True)
    """
    p, t = _prepare(preds, targets, color=color, crop_border=crop_border)
    return _ssim_per_channel(p, t).mean(dim=1)


class RestorationMetric(PerImageMetric):
    """Mean per-image PSNR and SSIM over a split, each image counted once under DDP.

    ``update`` scores each image (see the module for the protocol) and keeps its dataset index,
    PSNR and SSIM; ``compute`` gathers them from every process once, keeps the first copy of
    each dataset index (a ``DistributedSampler`` pads shards with repeated images;
    ``cvbench.metrics.per_image``) and returns the means over images. After ``compute``,
    ``last_per_image`` holds one dict per image, ``{"index": int, "psnr": float, "ssim":
    float}``, sorted by index.

    Call ``update``: ``forward`` only updates.

    Args:
        color: ``y`` (the papers' BT.601 luma; needs RGB) or ``rgb``.
        crop_border: pixels removed from each side before scoring (SR papers: the scale).
    """

    higher_is_better = True

    def __init__(self, *, color: str = "y", crop_border: int = 0) -> None:
        super().__init__()
        _check_options(color, crop_border)
        self.color = color
        self.crop_border = crop_border
        self.last_per_image: list[dict[str, Any]] = []
        self.add_field("psnr", torch.float64)
        self.add_field("ssim", torch.float64)

    def update(
        self,
        preds: Tensor | Sequence[Tensor],
        targets: Tensor | Sequence[Tensor],
        indices: Tensor,
    ) -> None:
        """Score a batch.

        Args:
            preds: (B, C, H, W) float in [0, 1] (clamped), or a list of B (C, H_i, W_i).
            targets: the same shapes as ``preds``, float in [0, 1].
            indices: (B,) int64 dataset indices of the images.

        Raises:
            ValueError: counts or shapes disagree, an integer image, an image too small for
                ``crop_border`` or SSIM; naming the image.
        """
        indices = torch.as_tensor(indices).reshape(-1)
        if len(preds) != len(targets) or len(preds) != len(indices):
            raise ValueError(
                f"{len(preds)} outputs, {len(targets)} targets, {len(indices)} dataset "
                "indices; expected one of each per image"
            )
        if not len(indices):
            return
        options = {"color": self.color, "crop_border": self.crop_border}
        if isinstance(preds, Tensor) and isinstance(targets, Tensor):  # (B, C, H, W)
            pairs = [(preds, targets, "")]
        else:
            pairs = [
                (p[None], t[None], f"image {i} of the batch (dataset index {int(indices[i])}): ")
                for i, (p, t) in enumerate(zip(preds, targets, strict=True))
            ]
        scores = []
        for p, t, where in pairs:
            try:
                if where and p.ndim != 4:
                    raise ValueError(f"{p.ndim - 1}-dim image; expected (C, H, W) per image")
                p, t = _prepare(p.to(self.device), t.to(self.device), **options)
                scores.append((_psnr_prepared(p, t), _ssim_per_channel(p, t).mean(1)))
            except ValueError as err:
                raise ValueError(f"RestorationMetric: {where}{err}") from None
        psnrs, ssims = (torch.cat(values) for values in zip(*scores, strict=True))
        self.add_images(indices, {"psnr": psnrs, "ssim": ssims})

    def compute(self) -> dict[str, float | int | None]:
        """``psnr`` (dB) and ``ssim``: means over images (None without images); ``num_images``."""
        images = self.kept_images(device="cpu")
        index, values_psnr, values_ssim = images.index, images["psnr"], images["ssim"]
        self.last_per_image = [
            {"index": i, "psnr": p, "ssim": s}
            for i, p, s in zip(
                index.tolist(), values_psnr.tolist(), values_ssim.tolist(), strict=True
            )
        ]
        count = len(index)
        return {
            "psnr": float(values_psnr.double().mean()) if count else None,
            "ssim": float(values_ssim.double().mean()) if count else None,
            "num_images": count,
        }

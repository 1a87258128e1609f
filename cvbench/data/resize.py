"""MATLAB ``imresize(image, scale, 'bicubic')``: how the super-resolution benchmarks (Set5, Set14,
B100, Urban100, DIV2K's ``LR_bicubic``) made their low-resolution images.

The kernel is Keys' cubic with a = -0.5, stretched by 1/scale when downscaling (antialiasing),
with MATLAB's pixel-centre alignment and symmetric (mirror) border handling; uint8 results are
rounded. ``resize_right`` (Shocher et al.) computes exactly this on numpy float64 arrays with
``pad_mode="symmetric"``; torch's and OpenCV's bicubic (a = -0.75, no antialiasing) and torch's
antialiased bicubic (border weights renormalised instead of mirrored) do not. METRICS.md,
"Image restoration".

When ``size * scale`` is not an integer, resize_right centres its sampling grid where MATLAB
aligns the top-left pixel, so :func:`imresize` refuses such sizes: the SR protocol crops the
high-resolution image to multiples of the scale first (:func:`modcrop`).
"""

from __future__ import annotations

import numpy as np
from resize_right import interp_methods, resize


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize an image by ``scale`` as MATLAB's ``imresize(image, scale, 'bicubic')``.

    Args:
        image: (H, W) or (H, W, C), uint8 or float.
        scale: factor on both sides (0.5: half size); H * scale and W * scale must be
            integers (the output's size).

    Raises:
        ValueError: a side does not scale to an integer.

    Returns:
        the resized image; uint8 input gives uint8 (rounded, clamped to 0..255, as MATLAB),
        float input gives float64 (neither rounded nor clamped).

    >>> imresize(np.full((4, 6, 3), 7, dtype=np.uint8), 0.5).shape
    (2, 3, 3)
    """
    if scale <= 0:
        raise ValueError(f"imresize: scale must be > 0, got {scale}")
    for side in image.shape[:2]:
        if abs(side * scale - round(side * scale)) > 1e-9:
            raise ValueError(
                f"imresize: a side of {side} px at scale {scale:g} gives {side * scale:g} px, not "
                "an integer; crop the image to a multiple of the scale first (modcrop), the "
                "benchmarks' protocol (MATLAB aligns non-integer sizes differently)"
            )
    factors = [scale, scale] + [1] * (image.ndim - 2)
    out = resize(
        image.astype(np.float64),
        scale_factors=factors,
        interp_method=interp_methods.cubic,
        antialiasing=True,
        pad_mode="symmetric",
    )
    if image.dtype == np.uint8:
        # MATLAB rounds half away from zero; after the clamp every value is >= 0.
        return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)
    return out


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right so both sides are multiples of ``scale`` (the SR papers' HR).

    >>> modcrop(np.zeros((7, 10)), 3).shape
    (6, 9)
    """
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]

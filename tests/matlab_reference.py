"""Independent implementations of MATLAB conventions, written from MATLAB's documented
algorithms for the tests to compare cvbench against (not used by the library).

``imresize_reference``: ``imresize(A, scale, 'bicubic')`` as ``imresize.m`` computes it: Keys'
cubic (a = -0.5), stretched by 1/scale when downscaling (antialiasing), input coordinate
u = x / scale + 0.5 (1 - 1 / scale) of output pixel x (1-based), the ceil(kernel width) + 2
nearest input pixels from floor(u - width / 2), weights normalised to sum 1, out-of-range
indices mirrored (aux = [1..n, n..1]), rows resized first, then columns; uint8 rounded.
"""

from __future__ import annotations

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5."""
    a = np.abs(x)
    return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * (
        (a > 1) & (a <= 2)
    )


def contributions(n_in: int, n_out: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(n_out, P) weights and 0-based input indices of each output pixel along one axis."""
    width = 4.0
    if scale < 1:
        width /= scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * x)
    else:
        kernel = cubic
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(1, n_in + 1), np.arange(n_in, 0, -1)])
    indices = mirror[np.mod(indices - 1, len(mirror)).astype(np.int64)] - 1
    return weights, indices


def imresize_reference(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(image, scale, 'bicubic')`` of (H, W) or (H, W, C); float64 out, or uint8
    (rounded half away from zero, clamped) for uint8 in."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        n_in = out.shape[axis]
        weights, indices = contributions(n_in, int(np.ceil(n_in * scale)), scale)
        moved = np.moveaxis(out, axis, 0)
        moved = np.einsum("op,op...->o...", weights, moved[indices])
        out = np.moveaxis(moved, 0, axis)
    if image.dtype == np.uint8:
        return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)
    return out

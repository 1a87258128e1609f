"""Logits of a semantic segmentation net for a batch of images: whole-image or sliding-window
inference as MMSegmentation's ``EncoderDecoder.whole_inference`` / ``slide_inference`` do it.

Hand-written: torchvision, timm and segmentation_models_pytorch (our model libraries) have no
sliding-window inference, and the maintained implementations live in MMSegmentation (the
OpenMMLab stack) and MONAI (``sliding_window_inference``, made for 3D medical volumes), both
heavy dependencies for these ~80 lines. The window layout and the averaging follow
MMSegmentation, so a config from there (crop_size 512x1024, stride 341x683 on Cityscapes)
gives the same windows; one difference: an image smaller than the crop is zero-padded to it
(MMSegmentation runs the smaller window as is), so every window has the crop's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

Mode = Literal["whole", "slide"]
Size = int | Sequence[int]


def resize_logits(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize (``align_corners=False``, MMSegmentation's choice) of logits to ``size``.

    Args:
        logits: (B, K, h, w) or (K, h, w) float.
        size: target (H, W).

    Returns:
        (B, K, H, W) or (K, H, W) float; ``logits`` itself when it already has that size.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(logits.shape[-2:]) == size:
        return logits
    batched = logits if logits.dim() == 4 else logits[None]
    resized = F.interpolate(batched, size=size, mode="bilinear", align_corners=False)
    return resized if logits.dim() == 4 else resized[0]


def _pair(value: Size, key: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"inference.{key} must be an int or (H, W) of ints >= 1, got {value!r}")
    return pair  # type: ignore[return-value]


def _pad_bottom_right(images: Tensor, height: int, width: int) -> Tensor:
    """Zero-pad (B, C, H, W) at the bottom and right to at least (height, width)."""
    pad_h, pad_w = max(height - images.shape[-2], 0), max(width - images.shape[-1], 0)
    return F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images


def _net_logits(net: nn.Module, images: Tensor, num_classes: int, size_divisor: int) -> Tensor:
    """One forward: pad to a multiple of ``size_divisor``, take "out" of a dict, upsample the
    logits to the padded size, crop back to the input's (B, K, H, W)."""
    height, width = images.shape[-2:]
    padded = _pad_bottom_right(
        images, -(-height // size_divisor) * size_divisor, -(-width // size_divisor) * size_divisor
    )
    output = net(padded)
    logits = output["out"] if isinstance(output, dict) else output
    if logits.dim() != 4 or logits.shape[1] != num_classes:
        raise ValueError(
            f"the segmentation net returned logits of shape {tuple(logits.shape)}, expected "
            f"(B, {num_classes}, H, W) for data.num_classes={num_classes}: check the model "
            "config's num_classes / classes"
        )
    return resize_logits(logits, padded.shape[-2:])[..., :height, :width]


def _slide_logits(
    net: nn.Module,
    images: Tensor,
    num_classes: int,
    crop: tuple[int, int],
    stride: tuple[int, int],
    size_divisor: int,
) -> Tensor:
    """MMSegmentation's slide_inference on an image at least as large as ``crop``."""
    batch, _, height, width = images.shape
    (crop_h, crop_w), (stride_h, stride_w) = crop, stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    summed = images.new_zeros(batch, num_classes, height, width)
    count = images.new_zeros(1, 1, height, width)
    for row in range(rows):
        for col in range(cols):
            y2, x2 = min(row * stride_h + crop_h, height), min(col * stride_w + crop_w, width)
            y1, x1 = max(y2 - crop_h, 0), max(x2 - crop_w, 0)  # last window on the border
            window = _net_logits(net, images[..., y1:y2, x1:x2], num_classes, size_divisor)
            summed = summed + F.pad(window, (x1, width - x2, y1, height - y2))
            count[..., y1:y2, x1:x2] += 1
    return summed / count


def predict_logits(
    net: nn.Module,
    images: Tensor,
    *,
    num_classes: int,
    mode: Mode = "whole",
    crop_size: Size | None = None,
    stride: Size | None = None,
    size_divisor: int = 1,
) -> Tensor:
    """Class logits of ``net`` for every pixel of ``images``.

    The net's mode (train/eval) and autograd are left to the caller: wrap in
    ``torch.no_grad()`` and call ``net.eval()`` for evaluation.

    Args:
        net: maps (B, 3, h, w) to logits (B, K, h', w') with h' <= h (e.g. stride-4 or -8
            outputs), or to torchvision's dict whose "out" holds them.
        images: (B, 3, H, W) float, normalized as the net expects.
        num_classes: number of classes K; the net's output must have K channels.
        mode: "whole": the whole (padded) image in one forward. "slide": MMSegmentation's
            sliding windows: ``crop_size`` windows every ``stride`` pixels, the last row and
            column of windows moved back to end on the image's border; the image is
            zero-padded at the bottom/right to at least ``crop_size`` first (cropped back
            after); each pixel's logits are the mean over the windows covering it.
        crop_size: (H, W) or int, window size for "slide".
        stride: (H, W) or int, window step for "slide", at most ``crop_size``; None: 2/3 of
            ``crop_size`` rounded (MMSegmentation's Cityscapes and ADE20K configs:
            512x1024 -> 341x683).
        size_divisor: every forward's input is zero-padded at the bottom/right (0 is the mean
            colour after normalization) to a multiple of this (32 for smp's encoders), and
            the logits are cropped back.

    Returns:
        (B, K, H, W) float logits at the input's resolution. Logits the net returns at a
        lower resolution are upsampled bilinearly (``align_corners=False``).
    """
    if size_divisor < 1:
        raise ValueError(f"inference.size_divisor must be >= 1, got {size_divisor}")
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if mode == "whole":
        return _net_logits(net, images, num_classes, size_divisor)
    if mode != "slide":
        raise ValueError(f"inference.mode must be 'whole' or 'slide', got {mode!r}")
    if crop_size is None:
        raise ValueError("inference.mode=slide needs inference.crop_size, e.g. [512, 1024]")
    crop = _pair(crop_size, "crop_size")
    if stride is None:
        step = (max(round(crop[0] * 2 / 3), 1), max(round(crop[1] * 2 / 3), 1))
    else:
        step = _pair(stride, "stride")
    if step[0] > crop[0] or step[1] > crop[1]:
        raise ValueError(
            f"inference.stride {step} is larger than inference.crop_size {crop}: pixels "
            "between windows would get no logits; use a stride <= crop_size"
        )
    height, width = images.shape[-2:]
    padded = _pad_bottom_right(images, *crop)
    logits = _slide_logits(net, padded, num_classes, crop, step, size_divisor)
    return logits[..., :height, :width]

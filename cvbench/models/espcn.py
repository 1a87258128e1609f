"""ESPCN (Shi et al., 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR): convolutions at the low resolution, then one
sub-pixel convolution (a conv to C * s^2 maps and a pixel shuffle) to the high resolution.

The paper's network: 5x5 conv (64), 3x3 conv (32), 3x3 conv (C * s^2), PixelShuffle(s), with
tanh after the two hidden layers (the paper reports tanh beating ReLU for this net); the
default here. ``activation="relu"`` gives the common ReLU variant.

Choices that differ from the paper: RGB in and out (``channels=3``; the paper works on Y), zero
padding so the output is exactly ``scale`` times the input's size (the paper trains on valid
convolutions), PyTorch's default initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from cvbench.models.srcnn import check_scale

ACTIVATIONS = ("tanh", "relu")


class ESPCN(nn.Module):
    """conv5x5-act, conv3x3-act, conv3x3 to C * s^2 channels, PixelShuffle(s).

    Parameters for RGB with the defaults: 23,328 + 867 s^2 (26,796 at x2, 31,131 at x3,
    37,200 at x4).

    Args:
        scale: upscaling factor s (``${data.scale}``).
        channels: image channels C, in and out.
        features: widths of the two hidden layers (the paper's 64, 32).
        activation: "tanh" (the paper) or "relu".
    """

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        features: Sequence[int] = (64, 32),
        activation: Literal["tanh", "relu"] = "tanh",
    ) -> None:
        super().__init__()
        check_scale("ESPCN", scale)
        if len(features) != 2:
            raise ValueError(f"ESPCN: model.features needs 2 widths, got {list(features)}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"ESPCN: model.activation must be one of {ACTIVATIONS}, got {activation!r}"
            )
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, features[0], 5, padding=2),
            act(),
            nn.Conv2d(features[0], features[1], 3, padding=1),
            act(),
            nn.Conv2d(features[1], channels * scale**2, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Super-resolve.

        Args:
            images: (B, C, h, w) float low-resolution images in [0, 1].

        Returns:
            (B, C, h * s, w * s) float, [0, 1] range but not clamped.
        """
        return self.body(images)

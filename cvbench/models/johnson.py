"""Johnson, Alahi and Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016: the feed-forward image transformation network, in the layout of
pytorch/examples' ``fast_neural_style`` (instance normalisation in place of the paper's batch
normalisation, as Ulyanov et al. 2016 proposed; nearest upsampling and a convolution in place of
fractionally strided convolutions).

Layers (channels at ``width=1``): reflection-padded 9x9 conv (32), 3x3 stride-2 convs (64, 128),
``num_residual`` residual blocks of 128 channels (conv-IN-ReLU-conv-IN plus the input), two
x2 nearest upsamplings each followed by a 3x3 conv (64, 32), and a 9x9 conv to RGB. Every conv
is reflection-padded and, except the last, followed by an affine instance norm and a ReLU.
1.68 M parameters at ``width=1`` with 5 residual blocks.

Output scale: the reference works in [0, 255] and its last conv is linear, so the network must
learn outputs of the order of 100 from a PyTorch default initialisation that gives outputs of
the order of 0.4. cvbench's images are in [0, 1], so the same linear last conv (no tanh, no
residual connection to the input, no offset) starts at the right order of magnitude: with the
default initialisation and the instance-normalised ReLU features before it, its outputs start
with a standard deviation of about 0.35-0.4 and channel means within about 0.3 of 0, and the
bias learns the mean in a few steps.

Sizes: any H, W >= 5 (the 9x9 reflection padding needs 5 pixels). The two upsamplings go to the
sizes of the matching downsampling inputs (ceil(H / 2), then H), so odd sizes and sizes that
are not multiples of 4 come back exactly; for multiples of 4 this is plain x2 upsampling.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

MIN_SIZE = 5


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1.

    >>> scaled(32, 0.25), scaled(32, 0.01)
    (8, 1)
    """
    return max(1, round(channels * width))


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding of ``kernel_size // 2`` and a convolution: (B, C, H, W) ->
    (B, C', ceil(H / stride), ceil(W / stride)) for odd kernels."""
    return nn.Sequential(
        nn.ReflectionPad2d(kernel_size // 2),
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride),
    )


def conv_norm_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
) -> nn.Sequential:
    """``conv``, affine instance normalisation and ReLU."""
    return nn.Sequential(
        conv(in_channels, out_channels, kernel_size, stride),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))) with 3x3 reflection-padded convs (He et al., 2016, as
    Johnson et al. use them: no ReLU after the sum).

    Args:
        channels: C, in and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(channels, channels, 3),
            conv(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


class JohnsonNet(nn.Module):
    """Johnson et al.'s image transformation network for one style (module docstring).

    Args:
        width: multiplier of every layer's channels (32, 64, 128 at 1.0), each at least 1.
        num_residual: number of residual blocks (5 in the paper).
    """

    takes_style = False
    """The network renders one fixed style: ``forward`` ignores ``style`` and ``alpha``."""

    def __init__(self, width: float = 1.0, num_residual: int = 5) -> None:
        super().__init__()
        if width <= 0 or num_residual < 0:
            raise ValueError(
                f"JohnsonNet: width must be > 0 and num_residual >= 0, got {width} and "
                f"{num_residual}"
            )
        c1, c2, c3 = scaled(32, width), scaled(64, width), scaled(128, width)
        self.down = nn.ModuleList(
            [conv_norm_relu(3, c1, 9), conv_norm_relu(c1, c2, 3, 2), conv_norm_relu(c2, c3, 3, 2)]
        )
        self.residual = nn.Sequential(*(ResidualBlock(c3) for _ in range(num_residual)))
        self.up = nn.ModuleList([conv_norm_relu(c3, c2, 3), conv_norm_relu(c2, c1, 3)])
        self.out = conv(c1, 3, 9)

    def forward(self, content: Tensor, style: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """Render ``content`` in the network's style.

        Args:
            content: (B, 3, H, W) float RGB in [0, 1], H, W >= 5.
            style: ignored (the style is in the weights).
            alpha: ignored.

        Returns:
            (B, 3, H, W) float RGB meant to be in [0, 1], not clamped.
        """
        if content.ndim != 4 or content.shape[1] != 3 or min(content.shape[2:]) < MIN_SIZE:
            raise ValueError(
                f"JohnsonNet: content must be RGB (B, 3, H, W) with H, W >= {MIN_SIZE}, got "
                f"{tuple(content.shape)}"
            )
        x = self.down[0](content)
        sizes = [x.shape[2:]]  # the inputs of the two stride-2 convs
        x = self.down[1](x)
        sizes.append(x.shape[2:])
        x = self.residual(self.down[2](x))
        for layer, size in zip(self.up, reversed(sizes), strict=True):
            x = layer(F.interpolate(x, size=tuple(size), mode="nearest"))
        return self.out(x)

"""CycleGAN's ResNet generator (Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation
using Cycle-Consistent Adversarial Networks", ICCV 2017; Johnson et al.'s architecture, their
appendix 7.2): c7s1-ngf, d(2 ngf), d(4 ngf), ``n_blocks`` residual blocks R(4 ngf), u(2 ngf),
u(ngf), c7s1-3, with reflection padding and instance norm. Its discriminator is
:class:`cvbench.models.pix2pix.PatchDiscriminator` with ``in_channels`` 3.

Written by cvbench from the paper. Images enter and leave in [0, 1] (mapped to [-1, 1]
inside, the tanh output mapped back).
"""

from __future__ import annotations

from torch import Tensor, nn


def _conv_in_relu(in_channels: int, out_channels: int, **conv: int) -> list[nn.Module]:
    """Convolution, instance norm (no affine, as the paper's code), ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, bias=True, **conv),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class ResidualBlock(nn.Module):
    """x + (reflection pad 1, 3x3 conv, IN, ReLU, reflection pad 1, 3x3 conv, IN)(x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            *_conv_in_relu(channels, channels, kernel_size=3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The ResNet generator of the module docstring (the paper: ngf 64, 9 blocks at 256 px,
    6 at 128 px).

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first layer.
        n_blocks: residual blocks at 1/4 resolution.
    """

    def __init__(
        self, *, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9
    ) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise ValueError(f"ResnetGenerator: ngf >= 1, n_blocks >= 0; got {ngf}, {n_blocks}")
        self.size_multiple = 4  # what H and W must be divisible by
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            *_conv_in_relu(in_channels, ngf, kernel_size=7),
            *_conv_in_relu(ngf, 2 * ngf, kernel_size=3, stride=2, padding=1),
            *_conv_in_relu(2 * ngf, 4 * ngf, kernel_size=3, stride=2, padding=1),
            *[ResidualBlock(4 * ngf) for _ in range(n_blocks)],
        ]
        for channels in (4 * ngf, 2 * ngf):  # two fractionally-strided convolutions
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, 2, padding=1, output_padding=1),
                nn.InstanceNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Translate.

        Args:
            images: (B, in_channels, H, W) float in [0, 1], H and W divisible by 4.

        Returns:
            (B, out_channels, H, W) float in [0, 1].
        """
        if images.shape[-1] % 4 or images.shape[-2] % 4:
            raise ValueError(
                f"ResnetGenerator: image size {tuple(images.shape[-2:])} is not divisible by 4"
            )
        return (self.body(images * 2 - 1) + 1) / 2

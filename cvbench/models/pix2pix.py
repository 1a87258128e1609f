"""pix2pix's networks (Isola, Zhu, Zhou and Efros, "Image-to-Image Translation with Conditional
Adversarial Networks", CVPR 2017): the U-Net generator with skip connections and the PatchGAN
discriminator (also CycleGAN's, Zhu et al. 2017, with the image alone as input).

Written by cvbench from the paper's appendix (6.1.1, 6.1.2): Ck = 4x4 convolution with k
filters, stride 2, batch norm, (Leaky)ReLU; CDk the same with dropout 0.5. Images enter and
leave in [0, 1] (mapped to [-1, 1] inside, the tanh output mapped back).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _width(ngf: int, level: int) -> int:
    """Channels at encoder level ``level``: ngf, 2 ngf, 4 ngf, then 8 ngf (the paper's cap)."""
    return ngf * min(2**level, 8)


class UNetGenerator(nn.Module):
    """U-Net generator: ``num_downs`` stride-2 4x4 convolutions down to 1/2**num_downs of the
    input (LeakyReLU 0.2, batch norm except on the first and the innermost), as many stride-2
    transposed convolutions up (ReLU, batch norm, dropout 0.5 in the ``dropout_blocks``
    innermost decoder blocks), each decoder block's output concatenated with the encoder
    features of its size. The paper's net is ``num_downs`` 8 for 256 px; 6 for 64 px.

    Dropout is pix2pix's only noise (the paper drops z); cvbench evaluates in eval mode
    (dropout off, batch norm's running statistics): deterministic translations.

    Args:
        in_channels: channels of the source image.
        out_channels: channels of the output image.
        num_downs: stride-2 downsamplings; H and W must be divisible by 2**num_downs.
        ngf: filters of the first layer (the paper: 64).
        dropout_blocks: innermost decoder blocks with dropout 0.5 (the paper: 3).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 6,
        ngf: int = 64,
        dropout_blocks: int = 3,
    ) -> None:
        super().__init__()
        if num_downs < 2 or ngf < 1 or dropout_blocks < 0:
            raise ValueError(
                f"UNetGenerator: num_downs must be >= 2, ngf >= 1, dropout_blocks >= 0; got "
                f"{num_downs}, {ngf}, {dropout_blocks}"
            )
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs  # what H and W must be divisible by
        widths = [_width(ngf, i) for i in range(num_downs)]
        down: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1)]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            down.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2),
                    nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=innermost),
                    nn.Identity() if innermost else nn.BatchNorm2d(widths[i]),
                )
            )
        self.down = nn.ModuleList(down)
        up: list[nn.Module] = []  # innermost first
        for i in reversed(range(1, num_downs)):
            inner = widths[i] if i == num_downs - 1 else 2 * widths[i]
            drop = num_downs - 1 - i < dropout_blocks
            up.append(
                nn.Sequential(
                    nn.ReLU(),
                    nn.ConvTranspose2d(inner, widths[i - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(widths[i - 1]),
                    nn.Dropout(0.5) if drop else nn.Identity(),
                )
            )
        up.append(
            nn.Sequential(
                nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1), nn.Tanh()
            )
        )
        self.up = nn.ModuleList(up)

    def forward(self, images: Tensor) -> Tensor:
        """Translate.

        Args:
            images: (B, in_channels, H, W) float in [0, 1], H and W divisible by 2**num_downs.

        Returns:
            (B, out_channels, H, W) float in [0, 1].
        """
        step = self.size_multiple
        if images.shape[-1] % step or images.shape[-2] % step:
            raise ValueError(
                f"UNetGenerator: image size {tuple(images.shape[-2:])} is not divisible by "
                f"2**num_downs = {step}; resize it or lower model.generator.num_downs"
            )
        x = images * 2 - 1
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the innermost features feed the first decoder block alone
        for layer in self.up[:-1]:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return (self.up[-1](x) + 1) / 2


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: C(ndf) without norm, ``n_layers - 1`` more stride-2 Ck (k
    doubling, capped at 8 ndf), one stride-1 Ck, then a stride-1 4x4 convolution to one logit
    per patch. ``n_layers`` 3 is the paper's 70x70 PatchGAN; its receptive field is 16, 34,
    70 px for 1, 2, 3 layers.

    Args:
        in_channels: 6 for pix2pix (source and image concatenated), 3 for CycleGAN (the image).
        ndf: filters of the first layer (the paper: 64).
        n_layers: stride-2 convolutions.
        norm: "batch" (pix2pix) or "instance" (CycleGAN).
    """

    def __init__(
        self, *, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"
    ) -> None:
        super().__init__()
        if n_layers < 1 or norm not in ("batch", "instance"):
            raise ValueError(
                f"PatchDiscriminator: n_layers must be >= 1 and norm batch or instance; got "
                f"{n_layers}, {norm!r}"
            )
        self.in_channels = in_channels

        def norm_layer(channels: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(channels)
            return nn.InstanceNorm2d(channels)

        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        channels = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(channels, out, 4, stride, 1, bias=False),
                norm_layer(out),
                nn.LeakyReLU(0.2),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Patch logits.

        Args:
            images: (B, in_channels, H, W) float in [0, 1] (pix2pix: source and image
                concatenated along channels).

        Returns:
            (B, 1, h, w) real/fake logits, one per overlapping patch.
        """
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"PatchDiscriminator: {images.shape[1]} input channels, expected "
                f"{self.in_channels} (model.*.in_channels: 6 for pix2pix, 3 for CycleGAN)"
            )
        return self.body(images * 2 - 1)

"""DCGAN (Radford, Metz and Chintala, ICLR 2016): an all-convolutional generator of strided
transposed convolutions with batch norm and ReLU, tanh output, and a discriminator of strided
convolutions with LeakyReLU(0.2) and batch norm (none on its first layer), weights drawn from
N(0, 0.02) (batch-norm scales from N(1, 0.02)).

cvbench's images are RGB in [0, 1]: the generator's tanh output is mapped to [0, 1]
((tanh + 1) / 2) and the discriminator maps its [0, 1] input to [-1, 1], so both speak the
data's range. Options beyond the paper: spectral normalisation of the discriminator (Miyato et
al., ICLR 2018; it then has no batch norm) and a class-conditional variant (the one-hot class
concatenated to the generator's noise and, as constant planes, to the discriminator's input).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

IMAGE_SIZES = (32, 64)


def _stages(image_size: int) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"model image_size must be one of {list(IMAGE_SIZES)}, got {image_size}")
    return int(math.log2(image_size)) - 2  # 4x4 doubled to image_size


def init_dcgan(module: nn.Module) -> None:
    """The paper's initialisation: convolutions and linear layers N(0, 0.02), batch-norm
    scales N(1, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            weight = getattr(layer, "parametrizations", None)
            target = weight.weight.original if weight is not None else layer.weight
            nn.init.normal_(target, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def _one_hot(labels: Tensor | None, num_classes: int, like: Tensor) -> Tensor | None:
    if not num_classes:
        return None
    if labels is None:
        raise ValueError(f"a class-conditional DCGAN ({num_classes} classes) needs labels")
    return nn.functional.one_hot(labels.long(), num_classes).to(like.dtype)


class Generator(nn.Module):
    """DCGAN generator: noise (B, nz) -> a 4x4 map of ``ngf * 2^(S-1)`` channels, S - 1
    doublings (halving the channels) to ``image_size / 2``, a last one to RGB, tanh.

    Args:
        nz: noise dimensions.
        ngf: channels before the RGB layer.
        image_size: 32 or 64 (output H = W).
        channels: output channels.
        num_classes: > 0: class-conditional (one-hot class appended to the noise).
    """

    def __init__(
        self, *, nz: int = 100, ngf: int = 64, image_size: int = 32, channels: int = 3,
        num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        stages = _stages(image_size)
        self.nz, self.image_size, self.num_classes = nz, image_size, num_classes
        width = ngf * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz + num_classes, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images from noise.

        Args:
            noise: (B, nz) or (B, nz, 1, 1) float, standard normal.
            labels: (B,) int64 classes (class-conditional only).

        Returns:
            (B, channels, image_size, image_size) float in [0, 1].
        """
        noise = noise.reshape(len(noise), self.nz)
        one_hot = _one_hot(labels, self.num_classes, noise)
        if one_hot is not None:
            noise = torch.cat([noise, one_hot], 1)
        return (self.main(noise[:, :, None, None]) + 1) / 2


class Discriminator(nn.Module):
    """DCGAN discriminator: S strided 4x4 convolutions (``ndf`` channels doubling; LeakyReLU
    0.2; batch norm after all but the first, or spectral norm on every layer instead) to 4x4,
    then a 4x4 convolution to one logit.

    Args:
        ndf: channels of the first layer.
        image_size: 32 or 64 (input H = W).
        channels: input channels.
        spectral_norm: spectral normalisation of every layer (and no batch norm).
        num_classes: > 0: class-conditional (one-hot class planes appended to the input).
    """

    def __init__(
        self, *, ndf: int = 64, image_size: int = 32, channels: int = 3,
        spectral_norm: bool = False, num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        stages = _stages(image_size)
        self.num_classes = num_classes

        def conv(cin: int, cout: int, stride: int, padding: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride, padding, bias=spectral_norm)
            return apply_spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = [conv(channels + num_classes, ndf, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(stages - 1):
            layers.append(conv(width, width * 2, 2, 1))
            if not spectral_norm:
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            width *= 2
        layers.append(conv(width, 1, 1, 0))
        self.main = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """Real-vs-fake logits.

        Args:
            images: (B, channels, image_size, image_size) float in [0, 1].
            labels: (B,) int64 classes (class-conditional only).

        Returns:
            (B,) float logits (> 0: real).
        """
        x = images * 2 - 1
        one_hot = _one_hot(labels, self.num_classes, x)
        if one_hot is not None:
            planes = one_hot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], 1)
        return self.main(x).reshape(len(x))

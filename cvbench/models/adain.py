"""Huang and Belongie, "Arbitrary Style Transfer in Real-Time with Adaptive Instance
Normalization", ICCV 2017: a frozen VGG encoder f, AdaIN on its deepest features and a trained
decoder g,

    t = alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c),    output = g(t).

The encoder is a :class:`cvbench.models.loss_network.LossNetwork` (VGG-19 up to relu4_1 in the
paper); AdaIN uses its deepest requested layer. The decoder mirrors the encoder's layers up to
that layer, as the paper's: every encoder conv becomes a 3x3 reflection-padded conv from its
output to its input channels followed by a ReLU (none after the last, which gives RGB), every
pooling a x2 nearest upsampling, no normalisation. For relu4_1 that is the paper's decoder
(512 -> 256, up, 3 x 256 -> 256, 256 -> 128, up, 128 -> 128, 128 -> 64, up, 64 -> 64, 64 -> 3;
3.5 M parameters). ``decoder_width`` scales the decoder's inner channels (not its input, which
is the encoder's, nor its RGB output). The output is linear, in the [0, 1] RGB space of the
input, not clamped.

The encoder's weights stay frozen and the encoder stays in eval mode whatever ``train()`` is
called with; encoding runs without autograd, so only the decoder trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvbench.models.johnson import scaled
from cvbench.models.loss_network import LossNetwork


def adain(content_features: Tensor, style_features: Tensor, eps: float = 1e-5) -> Tensor:
    """AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y), per image and channel, with
    the population variance over positions plus ``eps`` (the same numbers as
    ``cvbench.metrics.style.adain``; written here because models do not import metrics).

    Args:
        content_features: (N, C, H, W) float.
        style_features: (N or 1, C, H', W') float.
        eps: added to both variances.

    Returns:
        (N, C, H, W) float.

    >>> adain(torch.tensor([[[[0.0, 2.0]]]]), torch.tensor([[[[5.0, 11.0]]]]), eps=0.0)
    tensor([[[[ 5., 11.]]]])
    """
    var_x, mean_x = torch.var_mean(content_features, dim=(2, 3), correction=0, keepdim=True)
    var_y, mean_y = torch.var_mean(style_features, dim=(2, 3), correction=0, keepdim=True)
    return (content_features - mean_x) / (var_x + eps).sqrt() * (var_y + eps).sqrt() + mean_y


def mirror_decoder(encoder: LossNetwork, width: float) -> tuple[nn.ModuleList, int]:
    """The decoder's layers (module docstring) and the number of upsamplings in it."""
    layers: list[nn.Module] = []
    upsamplings, first = 0, True
    for index in range(max(encoder.indices), -1, -1):
        module = encoder.features[index]
        if isinstance(module, nn.Conv2d):
            # The first conv takes the encoder's features as they are; the others are scaled.
            in_channels = module.out_channels if first else scaled(module.out_channels, width)
            out_channels = 3 if index == 0 else scaled(module.in_channels, width)
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]
            if index != 0:
                layers.append(nn.ReLU())
            first = False
        elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            upsamplings += 1
    return nn.ModuleList(layers), upsamplings


class AdaINNet(nn.Module):
    """Encoder-AdaIN-decoder for arbitrary styles (module docstring).

    Args:
        encoder: the frozen loss network whose deepest requested layer AdaIN works on
            (``relu4_1`` of VGG-19 in the paper); its weights are frozen here.
        decoder_width: multiplier of the decoder's inner channels, each at least 1.
    """

    takes_style = True
    """``forward`` renders ``content`` in the style of ``style``."""

    def __init__(self, encoder: LossNetwork, decoder_width: float = 1.0) -> None:
        super().__init__()
        if not isinstance(encoder, LossNetwork):
            raise ValueError(
                f"AdaINNet: encoder must be a cvbench.models.loss_network.LossNetwork (model."
                f"encoder: a loss_network option), got {type(encoder).__name__}"
            )
        if decoder_width <= 0:
            raise ValueError(f"AdaINNet: decoder_width must be > 0, got {decoder_width}")
        self.encoder = encoder.requires_grad_(False).eval()
        self.layer = encoder.layers[encoder.indices.index(max(encoder.indices))]
        self.decoder, self.num_upsamplings = mirror_decoder(encoder, decoder_width)
        # He-normal weights, zero biases: PyTorch's default init leaves the decoder's output
        # nearly constant on unit-scale features (spatial std ~3e-4 on the random VGG), and
        # training from there collapses to one flat colour.
        for module in self.decoder.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> AdaINNet:
        """Set the decoder's training mode; the encoder always stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def encode(self, images: Tensor) -> Tensor:
        """The encoder's deepest features, without autograd: (N, 3, H, W) in [0, 1] ->
        (N, C, H / 2^k, W / 2^k) for k poolings (rounded down at each)."""
        with torch.no_grad():
            return self.encoder(images)[self.layer]

    def target(self, content: Tensor, style: Tensor, alpha: float = 1.0) -> Tensor:
        """t = alpha * AdaIN(f(content), f(style)) + (1 - alpha) * f(content), the features
        the decoder renders (and the paper's content loss compares the output's features with).

        Args:
            content: (B, 3, H, W) float RGB in [0, 1].
            style: (B or 1, 3, H', W') float RGB in [0, 1].
            alpha: content-style trade-off in [0, 1]; 1 is full style.

        Returns:
            (B, C, h, w) float features, no autograd history.
        """
        content_features = self.encode(content)
        stylized = adain(content_features, self.encode(style))
        if alpha == 1.0:
            return stylized
        return alpha * stylized + (1.0 - alpha) * content_features

    def decode(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        """g(features): (B, C, h, w) -> (B, 3, H, W) with ``size`` = (H, W) the input's size;
        each upsampling goes to the size of the matching pooling's input."""
        sizes = [tuple(size)]
        for _ in range(self.num_upsamplings - 1):
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        x = features
        for layer in self.decoder:
            if isinstance(layer, nn.Upsample):
                x = F.interpolate(x, size=sizes.pop(), mode="nearest")
            else:
                x = layer(x)
        return x

    def forward(self, content: Tensor, style: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """Render ``content`` in the style of ``style``.

        Args:
            content: (B, 3, H, W) float RGB in [0, 1]; H, W >= 2^(k+1) for k poolings before
                the AdaIN layer (16 for relu4_1), so the deepest features are at least 2x2.
            style: (B or 1, 3, H', W') float RGB in [0, 1], same lower bound.
            alpha: content-style trade-off in [0, 1].

        Returns:
            (B, 3, H, W) float RGB meant to be in [0, 1], not clamped.
        """
        if style is None:
            raise ValueError("AdaINNet: forward needs a style image batch (style=None given)")
        smallest = 2 ** (self.num_upsamplings + 1)
        for name, images in (("content", content), ("style", style)):
            if images.ndim != 4 or images.shape[1] != 3 or min(images.shape[2:]) < smallest:
                raise ValueError(
                    f"AdaINNet: {name} must be RGB (B, 3, H, W) with H, W >= {smallest} "
                    f"({self.num_upsamplings} poolings before {self.layer}), got "
                    f"{tuple(images.shape)}"
                )
        return self.decode(self.target(content, style, alpha), content.shape[2:])

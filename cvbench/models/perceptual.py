"""Perceptual (VGG feature) loss: Johnson, Alahi and Fei-Fei, 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution", in the L1 form of ESRGAN / BasicSR
(``basicsr.losses.PerceptualLoss``), plus an L1 pixel term.

    loss = pixel_weight * L1(pred, target)
           + perceptual_weight * sum_l w_l * L1(phi_l(pred), phi_l(target))

where phi_l are activations of an ImageNet-trained VGG (Simonyan and Zisserman, 2015) on
ImageNet-normalized inputs, and L1 is the mean absolute difference.

The VGG weights are read from a local file in torchvision's format (``vgg19-dcbb9e9d.pth``):
cvbench never downloads. Only the ``features.*`` convolutions up to the deepest layer used are
built and loaded, so torchvision's full file works, and so does a file holding just those
entries. The convolutions are frozen (``requires_grad=False``) but stay part of the module's
state dict, so a checkpoint holding the loss carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torchvision's VGG layouts ("M": 2x2 max pooling), cfgs "D" and "E".
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
    + [512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
    + [512, 512, 512, 512, "M"],
}
WEIGHT_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(arch: str) -> list[str]:
    """Names of torchvision's ``features`` modules in order: conv1_1, relu1_1, ..., pool1, ...

    >>> vgg_layer_names("vgg19")[:5]
    ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1']
    >>> vgg_layer_names("vgg19").index("relu4_4")
    26
    """
    names, block, conv = [], 1, 1
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def vgg_features(arch: str, num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` modules of torchvision's ``vgg*.features`` (same indices, so
    the same state dict keys): 3x3 convs with padding 1, ReLUs, 2x2 max pooling. The ReLUs
    are not in place (torchvision's are), so a kept conv output is not overwritten."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), 3, padding=1), nn.ReLU()]
            in_channels = int(item)
    return nn.Sequential(*layers[:num_layers])


def load_features(
    features: nn.Sequential, weights_path: str, arch: str, owner: str = "PerceptualLoss"
) -> None:
    """Load ``features.*`` entries of a torchvision VGG state dict file into ``features``;
    errors start with ``owner`` (the module whose config names the file)."""
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{owner}: VGG weights file {str(path)!r} (loss weights_path) not found. "
            f"cvbench never downloads: get torchvision's {WEIGHT_URLS[arch]} on a machine "
            f"with internet, copy it here and set weights_path to it"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{owner}: cannot read {str(path)!r} as a torch state dict ({error}); "
            f"expected torchvision's {WEIGHT_URLS[arch].rsplit('/', 1)[1]}"
        ) from error
    wanted = {}
    for key, param in features.state_dict().items():
        stored = state.get(f"features.{key}") if isinstance(state, dict) else None
        if stored is None:
            raise ValueError(
                f"{owner}: {str(path)!r} has no entry 'features.{key}' (needed for the "
                f"{arch} layers asked for); expected torchvision's "
                f"{WEIGHT_URLS[arch].rsplit('/', 1)[1]} or its features.* entries"
            )
        if stored.shape != param.shape:
            raise ValueError(
                f"{owner}: 'features.{key}' in {str(path)!r} has shape "
                f"{tuple(stored.shape)}, {arch} needs {tuple(param.shape)}: is it the "
                f"weights file of another architecture (model arch: {arch})?"
            )
        wanted[key] = stored
    features.load_state_dict(wanted)


class PerceptualLoss(nn.Module):
    """L1 pixel loss plus weighted L1 distances between frozen VGG features.

    Args:
        weights_path: torchvision VGG state dict file (``vgg19-dcbb9e9d.pth`` for vgg19).
        arch: "vgg19" (ESRGAN, BasicSR) or "vgg16" (Johnson et al.).
        layers: feature layers, by name: ``relu{block}_{conv}``, ``conv{block}_{conv}``
            (before the ReLU, as ESRGAN) or ``pool{block}``.
        layer_weights: one weight per layer; default 1 / len(layers) each (their mean).
        pixel_weight: weight of the L1 pixel term (0 disables it).
        perceptual_weight: weight of the feature term (0 disables it, and VGG is not run).
    """

    def __init__(
        self,
        *,
        weights_path: str,
        arch: Literal["vgg16", "vgg19"] = "vgg19",
        layers: Sequence[str] = ("relu2_2", "relu3_4", "relu4_4"),
        layer_weights: Sequence[float] | None = None,
        pixel_weight: float = 1.0,
        perceptual_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if arch not in VGG_CONFIGS:
            raise ValueError(
                f"PerceptualLoss: arch must be one of {list(VGG_CONFIGS)}, got {arch!r}"
            )
        names = vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if not layers or unknown:
            raise ValueError(
                f"PerceptualLoss: layers must be names of {arch} layers, got unknown "
                f"{unknown or 'nothing'}; valid: {', '.join(names)}"
            )
        if layer_weights is None:
            layer_weights = [1.0 / len(layers)] * len(layers)
        if len(layer_weights) != len(layers):
            raise ValueError(
                f"PerceptualLoss: layer_weights needs one weight per layer ({list(layers)}), "
                f"got {list(layer_weights)}"
            )
        self.indices = [names.index(name) for name in layers]
        self.layer_weights = [float(w) for w in layer_weights]
        self.pixel_weight, self.perceptual_weight = float(pixel_weight), float(perceptual_weight)
        self.features = vgg_features(arch, max(self.indices) + 1)
        load_features(self.features, weights_path, arch)
        self.features.requires_grad_(False).eval()
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Set the training mode; the VGG features always stay in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    def extract(self, images: Tensor) -> list[Tensor]:
        """VGG activations of the chosen layers, in ``layers`` order.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1] (ImageNet-normalized inside).

        Returns:
            One (B, C_l, H_l, W_l) float tensor per layer.
        """
        x = (images - self.mean) / self.std
        outputs: dict[int, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            outputs[index] = x
        return [outputs[i] for i in self.indices]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """The weighted loss.

        Args:
            pred: (B, 3, H, W) float RGB in [0, 1] range (not necessarily clamped).
            target: (B, 3, H, W) float RGB in [0, 1]; no gradient flows into it.

        Returns:
            Scalar float tensor.
        """
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(
                f"PerceptualLoss: pred and target must both be RGB (B, 3, H, W), got "
                f"{tuple(pred.shape)} and {tuple(target.shape)}"
            )
        target = target.detach()
        loss = pred.new_zeros(())
        if self.pixel_weight:
            loss = loss + self.pixel_weight * F.l1_loss(pred, target)
        if self.perceptual_weight:
            with torch.no_grad():
                target_features = self.extract(target)
            pred_features = self.extract(pred)
            for weight, p, t in zip(
                self.layer_weights, pred_features, target_features, strict=True
            ):
                loss = loss + self.perceptual_weight * weight * F.l1_loss(p, t)
        return loss

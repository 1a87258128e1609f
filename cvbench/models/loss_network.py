"""The loss network of neural style transfer: frozen VGG features (Simonyan and Zisserman, 2015)
whose named activations the content and style losses compare (``cvbench.metrics.style``).

Two sources of weights:

- ``weights_path``: a local file in torchvision's format (``vgg19-dcbb9e9d.pth``,
  ``vgg16-397923af.pth``, keys ``features.N.weight``), by default torchvision's cache file
  ``$TORCH_HOME/hub/checkpoints/<file>``. cvbench never downloads. Named ``vgg19`` / ``vgg16``.
- ``random_seed``: a fixed random-weight network, named ``vgg_rand_s{seed}`` (VGG-19 layout;
  ``vgg16_rand_s{seed}`` for VGG-16). Random VGG features transfer style: Ustyuzhaninov,
  Brendel, Gatys and Bethge, "What does it take to generate natural textures?", ICLR 2017; He,
  Wang and Hopcroft, "A Powerful Generative Model Using Random Weights for the Deep Image
  Representation", NeurIPS 2016. The weights are a function of the seed alone: drawn from a local
  ``torch.Generator`` (the global RNG is untouched) as He et al. (2015) uniform noise of variance
  2 / fan_in per convolution (bound sqrt(6 / fan_in), zero biases), which keeps the activations'
  scale through the ReLU layers. Uniform rather than normal because uniform numbers come from
  the generator's integer stream by exact arithmetic (float64, then one rounding to float32),
  so they are bit-identical on every CPU; normal sampling goes through vectorised log / cos
  kernels that may differ in the last bit between machines.

Input scaling: images are (N, 3, H, W) RGB in [0, 1]. ``"imagenet"`` (torchvision's weights):
(x - mean) / std with ImageNet's per-channel mean and std. ``"caffe"`` (the Caffe VGG of Gatys
et al. and Johnson et al., as converted to torchvision's layout): BGR in [0, 255] minus the
BGR mean pixel (103.939, 116.779, 123.68). A network under another scaling or pooling is a
different loss network: ``name`` says so (``vgg19_caffe``, ``vgg19_avgpool``), so numbers under
different networks never share a metric name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from cvbench.models.perceptual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG_CONFIGS,
    WEIGHT_URLS,
    load_features,
    vgg_features,
    vgg_layer_names,
)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
SCALINGS = ("imagenet", "caffe")
POOLINGS = ("max", "avg")


def weights_file_name(arch: str) -> str:
    """torchvision's file name of ``arch``'s ImageNet weights.

    >>> weights_file_name("vgg19")
    'vgg19-dcbb9e9d.pth'
    """
    return WEIGHT_URLS[arch].rsplit("/", 1)[1]


def default_weights_path(arch: str) -> Path:
    """Where torchvision caches ``arch``'s weights: ``$TORCH_HOME/hub/checkpoints/<file>``
    (``torch.hub.get_dir()``, so ``TORCH_HOME`` and ``XDG_CACHE_HOME`` apply)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(arch)


def fill_random_vgg(features: nn.Sequential, seed: int) -> None:
    """Overwrite every convolution of ``features``, in order, with seeded He-uniform weights
    (bound sqrt(6 / fan_in), variance 2 / fan_in) and zero biases, from a local CPU generator."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for module in features:
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                uniform = torch.rand(
                    module.weight.shape, generator=generator, dtype=torch.float64, device="cpu"
                )
                weight = (2.0 * uniform - 1.0) * math.sqrt(6.0 / fan_in)
                module.weight.copy_(weight.to(module.weight.dtype))
                module.bias.zero_()


class LossNetwork(nn.Module):
    """Frozen VGG features returning the activations of named layers.

    Args:
        layers: layer names of torchvision's ``features`` (``vgg_layer_names``): ``relu4_1``,
            ``conv4_2``, ``pool3``, ...; the network runs up to the deepest one.
        arch: "vgg19" (Gatys et al., AdaIN) or "vgg16" (Johnson et al.).
        weights_path: torchvision-format weights file; None with ``random_seed`` None means
            ``default_weights_path(arch)``.
        random_seed: seed of the random-weight network (then ``weights_path`` must be None).
        input_scaling: "imagenet" or "caffe" (module docstring).
        pooling: "max" (VGG) or "avg" (Gatys et al. replace max pooling by average pooling).
    """

    def __init__(
        self,
        *,
        layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2"),
        arch: Literal["vgg16", "vgg19"] = "vgg19",
        weights_path: str | None = None,
        random_seed: int | None = None,
        input_scaling: Literal["imagenet", "caffe"] = "imagenet",
        pooling: Literal["max", "avg"] = "max",
    ) -> None:
        super().__init__()
        self._check(arch, layers, weights_path, random_seed, input_scaling, pooling)
        names = vgg_layer_names(arch)
        self.layers = list(layers)
        self.indices = [names.index(name) for name in self.layers]
        self.arch, self.random_seed = arch, random_seed
        self.input_scaling, self.pooling = input_scaling, pooling
        with torch.device("meta"):  # no initialisation, so the global RNG is never drawn from
            features = vgg_features(arch, max(self.indices) + 1)
        self.features = features.to_empty(device="cpu")
        if random_seed is None:
            path = Path(weights_path).expanduser() if weights_path else default_weights_path(arch)
            if not path.is_file():
                raise FileNotFoundError(
                    f"LossNetwork: VGG weights file {str(path)!r} not found; cvbench never "
                    f"downloads: copy torchvision's {weights_file_name(arch)} "
                    f"({WEIGHT_URLS[arch]}) to {default_weights_path(arch)} or set the loss "
                    f"network's weights_path to it, or use random_seed for a random network"
                )
            self.weights_path: Path | None = path
            load_features(self.features, str(path), arch, owner="LossNetwork")
        else:
            self.weights_path = None
            fill_random_vgg(self.features, random_seed)
        if pooling == "avg":
            for index, module in enumerate(self.features):
                if isinstance(module, nn.MaxPool2d):
                    self.features[index] = nn.AvgPool2d(kernel_size=2, stride=2)
        self.features.requires_grad_(False).eval()
        if input_scaling == "imagenet":
            mean, scale = torch.tensor(IMAGENET_MEAN), 1.0 / torch.tensor(IMAGENET_STD)
        else:
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _check(
        arch: str,
        layers: Sequence[str],
        weights_path: str | None,
        random_seed: int | None,
        input_scaling: str,
        pooling: str,
    ) -> None:
        if arch not in VGG_CONFIGS:
            raise ValueError(f"LossNetwork: arch must be one of {list(VGG_CONFIGS)}, got {arch!r}")
        names = vgg_layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if not layers or unknown or isinstance(layers, str):
            raise ValueError(
                f"LossNetwork: layers must be a list of {arch} layer names, got unknown "
                f"{unknown or 'nothing'}; valid: {', '.join(names)}"
            )
        if weights_path is not None and random_seed is not None:
            raise ValueError(
                "LossNetwork: set weights_path (a weights file) or random_seed (a random "
                f"network), not both (got {weights_path!r} and {random_seed})"
            )
        if input_scaling not in SCALINGS or pooling not in POOLINGS:
            raise ValueError(
                f"LossNetwork: input_scaling must be one of {SCALINGS} and pooling one of "
                f"{POOLINGS}, got {input_scaling!r} and {pooling!r}"
            )

    @property
    def name(self) -> str:
        """The network's name in metric names: ``vgg19``, ``vgg16``, ``vgg_rand_s0`` (VGG-19),
        ``vgg16_rand_s0``, plus ``_caffe`` for Caffe scaling and ``_avgpool`` for average
        pooling."""
        if self.random_seed is None:
            base = self.arch
        else:
            prefix = "vgg" if self.arch == "vgg19" else self.arch
            base = f"{prefix}_rand_s{self.random_seed}"
        scaling = "" if self.input_scaling == "imagenet" else f"_{self.input_scaling}"
        pooling = "" if self.pooling == "max" else f"_{self.pooling}pool"
        return base + scaling + pooling

    @property
    def protocol(self) -> str:
        """One line for the run record: network, weights, pooling, layers and input scaling."""
        weights = (
            f"weights file {self.weights_path.name}"
            if self.weights_path is not None
            else f"random He-uniform weights, seed {self.random_seed}"
        )
        scaling = {
            "imagenet": "RGB in [0, 1], ImageNet mean/std",
            "caffe": "BGR in [0, 255] minus Caffe's mean pixel",
        }[self.input_scaling]
        return (
            f"{self.name}: {self.arch} features, {weights}, {self.pooling} pooling, layers "
            f"{', '.join(self.layers)}, input {scaling}"
        )

    def train(self, mode: bool = True) -> LossNetwork:
        """Set the training mode; the VGG features always stay in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    def scale_input(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> the network's input scaling, same shape."""
        if self.input_scaling == "caffe":
            images = images.flip(1)  # RGB -> BGR; mean and scale are stored in BGR order
        return (images - self.mean) * self.scale

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Activations of the chosen layers; gradients flow to ``images``, not to the weights.

        Args:
            images: (N, 3, H, W) float RGB in [0, 1].

        Returns:
            ``{layer name: (N, C_l, H_l, W_l) float}``, in ``layers`` order.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"LossNetwork: images must be RGB (N, 3, H, W), got {tuple(images.shape)}"
            )
        x = self.scale_input(images)
        outputs: dict[int, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            outputs[index] = x
        return {name: outputs[index] for name, index in zip(self.layers, self.indices, strict=True)}

"""Shared fakes of the FID/KID/IS tests: an Inception of random weights saved in the reference
file format (none can be downloaded), and small folders of PNG images.

The reference file, ``weights-inception-2015-12-05-6726825d.pth``, is the plain state dict of
torch-fidelity's ``FeatureExtractorInceptionV3`` saved with ``torch.save``. The fake is the
state dict of that very class, built from torch-fidelity's own code with seeded random weights
(He-normal convolutions, random batch-norm statistics, so that activations keep their scale
through the 94 layers; class weights that see how features differ, so that the Inception Score
is not 1), saved the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"


class _RandomInception(FeatureExtractorInceptionV3):
    """torch-fidelity's network keeping its freshly initialised weights: its constructor always
    loads a file, and this one ignores what it loads (an empty dict written by the test)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ANN001, ANN201
        return None


def write_random_inception(path: Path, seed: int = 0) -> Path:
    """Write the seeded random Inception's state dict to ``path`` (about 95 MB)."""
    empty = path.with_name("empty_state_dict.pth")
    torch.save({}, empty)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _RandomInception("random", ["2048"], feature_extractor_weights_path=str(empty))
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0.0, 0.1)
            elif isinstance(module, torch.nn.Linear):  # rows summing to 0: pool3 features are
                torch.nn.init.normal_(module.weight, 0.0, 0.05)  # all > 0, and a common part
                module.weight.data -= module.weight.data.mean(1, keepdim=True)  # picks 1 class
    torch.save(net.state_dict(), path)
    empty.unlink()
    return path


def random_inception_file(factory: pytest.TempPathFactory) -> Path:
    """The random Inception file of this test session, written on first use (shared by every
    module: it lives in the session's base temporary folder)."""
    path = factory.getbasetemp() / "random_inception" / WEIGHTS_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_random_inception(path)
    return path


def write_images(folder: Path, count: int, *, seed: int, size: int = 16, shift: int = 0) -> None:
    """``count`` PNG files ``img_00.png`` ... of blocky random colours (``shift`` added to every
    value, clipped): image 1 saved as 8-bit gray, image 2 as RGBA (both read as RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        blocks = rng.integers(0, 256, (size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
        rgb = np.clip(blocks + shift, 0, 255).astype(np.uint8)
        if i == 1:
            Image.fromarray(rgb[..., 0]).save(folder / f"img_{i:02d}.png")
        elif i == 2:
            alpha = np.full((size, size, 1), 200, np.uint8)
            Image.fromarray(np.concatenate([rgb, alpha], axis=2)).save(folder / f"img_{i:02d}.png")
        else:
            Image.fromarray(rgb).save(folder / f"img_{i:02d}.png")

"""Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR
2016: style transfer as the optimisation of one image. Its "model" is that image, a parameter
the optimiser (L-BFGS or Adam) updates, so the optimisation runs as the training of a task.

The paper starts from white noise or from the content image (their Fig. 6 shows both);
``init="content"`` copies the first content image the model sees in ``forward`` (under
``no_grad``, once; a persistent buffer records that, so a checkpoint restores the image as
optimised, not re-initialised), ``init="noise"`` draws uniform noise in [0, 1] from a local
generator seeded with ``seed`` (the global RNG is untouched).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

INITS = ("content", "noise")


class GatysImage(nn.Module):
    """One (1, 3, height, width) image to optimise (module docstring).

    Args:
        height: the image's height in pixels, the content's (``data.crop_size``).
        width: the image's width in pixels.
        init: "content" (the first content image seen) or "noise" (seeded uniform noise).
        seed: the noise's seed (``init="noise"`` only).
    """

    takes_style = False
    """The style is in the optimised pixels: ``forward`` ignores ``style`` and ``alpha``."""

    def __init__(
        self, height: int, width: int, init: Literal["content", "noise"] = "content", seed: int = 0
    ) -> None:
        super().__init__()
        if height < 1 or width < 1 or init not in INITS:
            raise ValueError(
                f"GatysImage: height and width must be >= 1 and init one of {INITS}, got "
                f"{height}, {width} and {init!r}"
            )
        self.init = init
        if init == "noise":
            generator = torch.Generator(device="cpu").manual_seed(seed)
            image = torch.rand(1, 3, height, width, generator=generator)
        else:
            image = torch.full((1, 3, height, width), 0.5)  # replaced by the first content
        self.image = nn.Parameter(image)
        self.register_buffer("initialised", torch.tensor(init == "noise"))

    def forward(self, content: Tensor, style: Tensor | None = None, alpha: float = 1.0) -> Tensor:
        """The image, for every content image of the batch (the first content image seen
        initialises it when ``init="content"``).

        Args:
            content: (B, 3, height, width) float RGB in [0, 1].
            style: ignored.
            alpha: ignored.

        Returns:
            (B, 3, height, width) float, the one image expanded over the batch (gradients of
            the B copies add up in the parameter); not clamped.
        """
        height, width = self.image.shape[2:]
        if content.ndim != 4 or content.shape[1] != 3 or content.shape[2:] != (height, width):
            raise ValueError(
                f"GatysImage: content is {tuple(content.shape)} but the optimised image is "
                f"(B, 3, {height}, {width}): set model.height and model.width to the content's "
                f"size (they follow data.crop_size, which must equal data.eval_size)"
            )
        if not self.initialised:
            with torch.no_grad():
                self.image.copy_(content[:1])
                self.initialised.fill_(True)
        image = self.image.expand(content.shape[0], -1, -1, -1)
        # Without gradients a view of the leaf parameter has no autograd history, which
        # torch's FlopCounterMode (the run's FLOP count) cannot hook: hand out a copy.
        return image if torch.is_grad_enabled() else image.clone()

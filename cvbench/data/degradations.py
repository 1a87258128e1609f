"""The degradations of image restoration, made on the fly from clean images.

Each degradation turns a clean (H, W, 3) uint8 image into a training sample ``{"input",
"target", "image"}`` of float32 (C, H, W) tensors, and says how a network's output becomes an
RGB image again (:meth:`compose`), so the task scores every restoration the same way:

- :class:`BicubicDownscale` (super-resolution): MATLAB bicubic downscaling; the network
  outputs the RGB image.
- :class:`LabColorization` (colorization, as Zhang et al. 2016 and Iizuka et al. 2016): CIE
  L*a*b* (D65); the input is L, the target a*b*, the output a*b* joined with the input's L.
- :class:`HoleMasks` (inpainting): boxes and free-form strokes; the input is the image with
  the hole set to 0 plus the mask channel; known pixels of the output are the input's.

Images are in [0, 1]; "image" is the clean 8-bit image the result is scored against.
"""

from __future__ import annotations

import kornia.color
import numpy as np
import torch
from torch import Tensor

from cvbench.data.hole_masks import hole_mask
from cvbench.data.resize import imresize, modcrop

Sample = dict[str, Tensor]

L_RANGE = 100.0  # L* is in [0, 100]: the input is L* / 100, in [0, 1]
AB_RANGE = 110.0  # a*, b* of sRGB colours are within about +-110: the target is a*b* / 110


def to_tensor(image: np.ndarray) -> Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0


class BicubicDownscale:
    """Super-resolution inputs as the benchmarks made them: MATLAB ``imresize(hr, 1/scale,
    'bicubic')`` rounded to 8 bits, from the image cropped to multiples of ``scale``.

    Args:
        scale: 2, 3 or 4.
    """

    def __init__(self, *, scale: int) -> None:
        if scale < 1:
            raise ValueError(f"BicubicDownscale: scale must be >= 1, got {scale}")
        self.scale = scale

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Sample:
        """``input`` (3, H/s, W/s), ``target`` = ``image`` (3, H, W) of the modcropped image."""
        hr = modcrop(image, self.scale)
        clean = to_tensor(hr)
        return {"input": to_tensor(imresize(hr, 1 / self.scale)), "target": clean, "image": clean}

    def compose(self, inputs: Tensor, outputs: Tensor) -> Tensor:
        """The output (B, 3, H, W) is the image."""
        return outputs


class LabColorization:
    """Colorization: L* in, a*b* out (CIE L*a*b*, D65, kornia's sRGB conversion)."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Sample:
        """``input`` L*/100 (1, H, W), ``target`` a*b*/110 (2, H, W), ``image`` (3, H, W)."""
        clean = to_tensor(image)
        lab = kornia.color.rgb_to_lab(clean[None])[0]
        return {"input": lab[:1] / L_RANGE, "target": lab[1:] / AB_RANGE, "image": clean}

    def compose(self, inputs: Tensor, outputs: Tensor) -> Tensor:
        """RGB (B, 3, H, W) in [0, 1] of the input's L* (B, 1, H, W) and the predicted a*b*
        (B, 2, H, W); colours outside sRGB are clamped."""
        lab = torch.cat([inputs * L_RANGE, outputs * AB_RANGE], dim=1)
        return kornia.color.lab_to_rgb(lab, clip=True)


class HoleMasks:
    """Inpainting: a random hole of boxes and strokes (:func:`cvbench.data.hole_masks.hole_mask`).

    Args:
        max_boxes: up to this many boxes per mask.
        max_strokes: up to this many free-form strokes per mask.
        box_size: (min, max) box side in pixels.
        stroke_width: (min, max) brush width in pixels.
        stroke_length: (min, max) length of a stroke's segments in pixels.
        max_fraction: the largest share of the image a mask may cover.
    """

    def __init__(
        self,
        *,
        max_boxes: int = 2,
        max_strokes: int = 3,
        box_size: tuple[float, float] = (12, 48),
        stroke_width: tuple[float, float] = (5, 15),
        stroke_length: tuple[float, float] = (8, 32),
        max_fraction: float = 0.5,
    ) -> None:
        self.shape = {
            "max_boxes": max_boxes,
            "max_strokes": max_strokes,
            "box_size": tuple(box_size),
            "stroke_width": tuple(stroke_width),
            "stroke_length": tuple(stroke_length),
            "max_fraction": max_fraction,
        }

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Sample:
        """``input`` (4, H, W): RGB with the hole at 0, then the mask (1 = missing);
        ``target`` = ``image`` (3, H, W)."""
        clean = to_tensor(image)
        mask = hole_mask(*image.shape[:2], rng, **self.shape)
        hole = torch.from_numpy(mask)[None].float()
        return {"input": torch.cat([clean * (1 - hole), hole]), "target": clean, "image": clean}

    def compose(self, inputs: Tensor, outputs: Tensor) -> Tensor:
        """The output (B, 3, H, W) inside the hole, the input's known pixels outside it."""
        hole = inputs[:, 3:4]
        return outputs * hole + inputs[:, :3] * (1 - hole)

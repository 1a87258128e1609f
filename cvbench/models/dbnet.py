"""DBNet: a segmentation-based text detector with differentiable binarization (Liao et al.,
"Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020).

A backbone gives features at strides 4, 8, 16 and 32; an FPN-like neck (lateral 1x1 convolutions,
top-down addition, a 3x3 convolution per level to a quarter of the neck's width, upsampled to
stride 4 and concatenated, as the paper's Fig. 2 and MMOCR's ``FPNC``) fuses them; two heads
(3x3 convolution, then two stride-2 transposed convolutions back to the input's size) give the
probability map P and the threshold map T, and in training the approximate binary map
B = sigmoid(k (P - T)) (the paper's Eq. 2, k = 50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DBHead(nn.Module):
    """One map from the fused features: 3x3 conv, BN, ReLU, then x2 up (transposed conv, BN,
    ReLU), then x2 up to one channel and a sigmoid (the paper's prediction branch).

    Args:
        in_channels: width of the fused features.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        mid = max(in_channels // 4, 1)
        self.layers = nn.Sequential(
            _conv_bn_relu(in_channels, mid, 3),
            nn.ConvTranspose2d(mid, mid, 2, stride=2, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(mid, 1, 2, stride=2),
        )

    def forward(self, features: Tensor) -> Tensor:
        """(B, 1, 4h, 4w) map in (0, 1) of fused features (B, C, h, w)."""
        return torch.sigmoid(self.layers(features))


class DBNet(nn.Module):
    """Backbone, FPN-like neck and the DB heads.

    Args:
        backbone: maps images (B, 3, H, W) to a list of 4 feature maps at strides 4, 8, 16, 32
            and has ``feature_info.channels()`` (timm's ``create_model(...,
            features_only=True, out_indices=(1, 2, 3, 4))``).
        neck_channels: width of the lateral maps; the fused map has as many channels (a quarter
            per level). The paper uses 256.
        k: the amplifying factor of the approximate binarization (the paper's 50).

    Raises:
        ValueError: the backbone does not give 4 levels.
    """

    def __init__(self, *, backbone: nn.Module, neck_channels: int = 256, k: float = 50.0) -> None:
        super().__init__()
        channels = list(backbone.feature_info.channels())
        if len(channels) != 4:
            raise ValueError(
                f"DBNet needs a backbone with 4 feature levels (strides 4..32), got channels "
                f"{channels}: give timm.create_model features_only: true, out_indices: [1, 2, 3, 4]"
            )
        if neck_channels % 4:
            raise ValueError(f"model.neck_channels={neck_channels}: must be a multiple of 4")
        self.backbone = backbone
        self.k = k
        self.laterals = nn.ModuleList(nn.Conv2d(c, neck_channels, 1, bias=False) for c in channels)
        self.smooth = nn.ModuleList(
            _conv_bn_relu(neck_channels, neck_channels // 4, 3) for _ in channels
        )
        self.prob_head = DBHead(neck_channels)
        self.thresh_head = DBHead(neck_channels)

    def fuse(self, images: Tensor) -> Tensor:
        """The neck's fused features (B, neck_channels, H/4, W/4) of images (B, 3, H, W)."""
        features = self.backbone(images)
        laterals = [conv(f) for conv, f in zip(self.laterals, features, strict=True)]
        for level in range(len(laterals) - 1, 0, -1):  # top-down: coarse into fine
            finer = laterals[level - 1]
            up = F.interpolate(laterals[level], size=finer.shape[-2:], mode="nearest")
            laterals[level - 1] = finer + up
        size = laterals[0].shape[-2:]
        levels = [
            F.interpolate(conv(p), size=size, mode="nearest") if i else conv(p)
            for i, (conv, p) in enumerate(zip(self.smooth, laterals, strict=True))
        ]
        return torch.cat(levels, dim=1)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """The DB maps of images (B, 3, H, W) float (H, W multiples of 32 keep the strides
        exact; other sizes are resized back to H, W).

        Returns:
            ``prob``: (B, 1, H, W) probability map P in (0, 1); in training mode also
            ``thresh``: (B, 1, H, W) threshold map T in (0, 1) and ``binary``: (B, 1, H, W)
            approximate binary map sigmoid(k (P - T)).
        """
        fused = self.fuse(images)
        size = images.shape[-2:]

        def at_input_size(map_: Tensor) -> Tensor:
            if map_.shape[-2:] == size:
                return map_
            return F.interpolate(map_, size=size, mode="bilinear", align_corners=False)

        prob = at_input_size(self.prob_head(fused))
        if not self.training:
            return {"prob": prob}
        thresh = at_input_size(self.thresh_head(fused))
        binary = torch.sigmoid(self.k * (prob - thresh))
        return {"prob": prob, "thresh": thresh, "binary": binary}

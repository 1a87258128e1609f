"""A single-object localizer: a pooled-feature backbone with a class head and a box head.

The classification-with-localization baseline of OverFeat (Sermanet et al., 2014) and the
ILSVRC CLS-LOC entries reduced to one class-agnostic box per image: a linear classifier and a
small MLP regressing the box as normalized (cx, cy, w, h) in [0, 1] (sigmoid), both on the
backbone's globally pooled features.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import box_convert, clip_boxes_to_image


class Localizer(nn.Module):
    """Backbone, linear class head and MLP box head.

    Args:
        backbone: maps (B, C, H, W) images to pooled features (B, num_features), e.g.
            ``timm.create_model("resnet18", pretrained=False, num_classes=0)``.
        num_features: width of the backbone's output (``backbone.num_features`` for timm).
        num_classes: number of class logits.
        hidden: width of the box head's hidden layer.
    """

    def __init__(
        self, *, backbone: nn.Module, num_features: int, num_classes: int, hidden: int = 256
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.class_head = nn.Linear(num_features, num_classes)
        self.box_head = nn.Sequential(
            nn.Linear(num_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 4),
            nn.Sigmoid(),
        )

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Class logits and one box per image.

        Args:
            images: (B, C, H, W) float, normalized as the backbone expects.

        Returns:
            ``logits``: (B, num_classes) float; ``boxes``: (B, 4) float normalized
            (cx, cy, w, h) in [0, 1], relative to the image's width and height.
        """
        features = self.backbone(images)
        return {"logits": self.class_head(features), "boxes": self.box_head(features)}

    @staticmethod
    def boxes_to_pixels(boxes: Tensor, height: int, width: int) -> Tensor:
        """Normalized (cx, cy, w, h) boxes to pixel corners, clipped to the image.

        Args:
            boxes: (B, 4) float normalized (cx, cy, w, h) in [0, 1].
            height: image height in pixels.
            width: image width in pixels.

        Returns:
            (B, 4) float (x0, y0, x1, y1) pixels, continuous coordinates, inside
            [0, width] x [0, height].

        >>> import torch
        >>> Localizer.boxes_to_pixels(torch.tensor([[0.5, 0.5, 0.5, 1.0]]), 20, 40).tolist()
        [[10.0, 0.0, 30.0, 20.0]]
        """
        scale = boxes.new_tensor([width, height, width, height])
        xyxy = box_convert(boxes * scale, in_fmt="cxcywh", out_fmt="xyxy")
        return clip_boxes_to_image(xyxy, (height, width))

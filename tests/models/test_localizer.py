"""Localizer: output shapes and ranges with a timm backbone, backward, the box conversion, and
a fit of boxes on a fixed batch of synthetic images."""

from __future__ import annotations

import doctest

import timm
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

import cvbench.models.localizer as localizer
from cvbench.models.localizer import Localizer


def test_doctests() -> None:
    result = doctest.testmod(localizer)
    assert result.attempted > 0
    assert result.failed == 0


def test_forward_backward_with_a_timm_backbone() -> None:
    torch.manual_seed(0)
    backbone = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert backbone.num_features == 512
    model = Localizer(backbone=backbone, num_features=backbone.num_features, num_classes=7)
    out = model(torch.randn(2, 3, 32, 48))
    assert set(out) == {"logits", "boxes"}
    assert out["logits"].shape == (2, 7)
    assert out["boxes"].shape == (2, 4)
    assert ((out["boxes"] >= 0) & (out["boxes"] <= 1)).all()
    (out["logits"].sum() + out["boxes"].sum()).backward()
    for name in ("backbone.conv1.weight", "class_head.weight", "box_head.0.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_boxes_to_pixels_known_answers() -> None:
    boxes = torch.tensor(
        [
            [0.5, 0.5, 1.0, 1.0],  # the whole image
            [0.25, 0.75, 0.5, 0.5],  # bottom-left quarter
            [0.9, 0.1, 0.4, 0.4],  # sticks out top-right: clipped to the image
        ]
    )
    pixels = Localizer.boxes_to_pixels(boxes, height=20, width=40)
    expected = torch.tensor([[0.0, 0, 40, 20], [0, 10, 20, 20], [28, 0, 40, 6]])
    torch.testing.assert_close(pixels, expected, rtol=0, atol=1e-5)


def _squares(n: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n black images with one bright square each (side 8..15 at a seeded random position).

    Returns:
        images (n, 3, size, size), boxes (n, 4) xyxy pixels, labels (n,) (side >= 12).
    """
    gen = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 3, size, size)
    boxes = []
    for i in range(n):
        side = int(torch.randint(8, 16, (1,), generator=gen))
        x0, y0 = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=gen))
        images[i, :, y0 : y0 + side, x0 : x0 + side] = 1.0
        boxes.append([x0, y0, x0 + side, y0 + side])
    boxes = torch.tensor(boxes, dtype=torch.float32)
    return images, boxes, (boxes[:, 2] - boxes[:, 0] >= 12).long()


def test_fits_the_boxes_of_a_fixed_batch() -> None:
    """200 Adam steps on 8 images: every predicted box overlaps its square with IoU > 0.5
    (the untrained model's do not). A small plain CNN backbone keeps this ~1 s on a CPU
    (a timm resnet18 needs ~20x longer per step)."""
    torch.manual_seed(0)
    images, boxes, labels = _squares()
    size = images.shape[-1]
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),  # keeps where things are: (B, 16 * 8 * 8)
    )
    model = Localizer(backbone=backbone, num_features=16 * 8 * 8, num_classes=2, hidden=64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    target = torch.stack([cx, cy, w, h], dim=1) / size

    def iou() -> torch.Tensor:
        with torch.no_grad():
            predicted = Localizer.boxes_to_pixels(model(images)["boxes"], size, size)
        return box_iou(predicted, boxes).diagonal()

    assert iou().min() < 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        out = model(images)
        loss = F.l1_loss(out["boxes"], target) + F.cross_entropy(out["logits"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert iou().min() > 0.5
    assert (model(images)["logits"].argmax(dim=1) == labels).all()

"""Whole-image and MMSegmentation-style sliding-window inference: windows, averaging, padding
to a size divisor, torchvision's dict outputs and low-resolution logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvbench.tasks.segmentation_inference import predict_logits, resize_logits


def pointwise_net(num_classes: int = 4) -> nn.Module:
    """1x1 convs only: each pixel's logits depend on that pixel alone, wherever it is cut."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.Tanh(), nn.Conv2d(8, num_classes, 1)).eval()


class CountingNet(nn.Module):
    """Logits 1 in both classes everywhere: the averaged result is exactly 1 where each
    window is counted once. Records each window's size and top-left corner, read from
    images whose channels 0 and 1 hold the row and column index."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []
        self.corners: list[tuple[int, int]] = []

    def forward(self, images: Tensor) -> Tensor:
        self.sizes.append(tuple(images.shape[-2:]))
        self.corners.append((int(images[0, 0, 0, 0]), int(images[0, 1, 0, 0])))
        return images.new_ones(len(images), 2, *images.shape[-2:])


def index_images(batch: int, height: int, width: int) -> Tensor:
    """(batch, 3, H, W): channel 0 the row index, channel 1 the column index, channel 2 zero."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([rows, cols, torch.zeros_like(rows)]).float().expand(batch, -1, -1, -1)


class DictNet(nn.Module):
    """torchvision's interface: {"out": ..., "aux": ...}."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        logits = self.net(images)
        return {"out": logits, "aux": torch.zeros_like(logits)}


class StridedNet(nn.Module):
    """Logits at 1/4 of the input size: the pointwise net on a 4x average-pooled image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return self.net(F.avg_pool2d(images, 4))


def test_slide_equals_whole_for_a_pointwise_net() -> None:
    net, images = pointwise_net(), torch.randn(2, 3, 50, 71)
    with torch.no_grad():
        whole = predict_logits(net, images, num_classes=4)
        slide = predict_logits(
            net, images, num_classes=4, mode="slide", crop_size=(24, 32), stride=(16, 20)
        )
    assert whole.shape == slide.shape == (2, 4, 50, 71)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-6)


def test_slide_windows_follow_mmsegmentation() -> None:
    """MMSeg: rows = ceil((H - crop) / stride) + 1, the last window moved back to end on the
    border; each pixel's sum divided by its own count."""
    net = CountingNet()
    logits = predict_logits(
        net, index_images(2, 50, 71), num_classes=2, mode="slide", crop_size=24, stride=16
    )
    # rows: 0, 16, then 32 -> moved back to 26 (50 - 24); cols: 0, 16, 32, then 48 -> 47
    assert sorted(net.corners) == [(y, x) for y in (0, 16, 26) for x in (0, 16, 32, 47)]
    assert set(net.sizes) == {(24, 24)}
    torch.testing.assert_close(logits, torch.ones(2, 2, 50, 71))


def test_window_counts_are_per_pixel() -> None:
    """A net whose logits are the window's (unnormalized) pixel row index: averaging over
    windows at different offsets differs from any single window, so a wrong count shows."""

    class RowIndexNet(nn.Module):
        def forward(self, images: Tensor) -> Tensor:
            rows = torch.arange(images.shape[-2], dtype=images.dtype)
            return rows[:, None].expand(images.shape[-2:]).expand(len(images), 1, -1, -1)

    height, crop, stride = 10, 6, 4  # windows at rows 0..5 and 4..9
    logits = predict_logits(
        RowIndexNet(),
        torch.zeros(1, 3, height, 3),
        num_classes=1,
        mode="slide",
        crop_size=(crop, 3),
        stride=(stride, 3),
    )
    expected = torch.tensor([0, 1, 2, 3, (4 + 0) / 2, (5 + 1) / 2, 2, 3, 4, 5])
    torch.testing.assert_close(logits[0, 0, :, 0], expected)


def test_image_smaller_than_the_crop_is_padded() -> None:
    net, images = CountingNet(), torch.randn(2, 3, 20, 30)
    logits = predict_logits(net, images, num_classes=2, mode="slide", crop_size=32, stride=24)
    assert net.sizes == [(32, 32)]  # one window: the image zero-padded to the crop
    assert logits.shape == (2, 2, 20, 30)
    pointwise = pointwise_net()
    with torch.no_grad():
        slide = predict_logits(pointwise, images, num_classes=4, mode="slide", crop_size=32)
        torch.testing.assert_close(slide, pointwise(images), rtol=1e-5, atol=1e-6)


def test_default_stride_is_two_thirds_of_the_crop() -> None:
    """MMSeg's Cityscapes crop 512 x 1024 goes with stride 341 x 683."""
    net = CountingNet()
    images = index_images(1, 512 + 341 + 10, 1024 + 683 + 100)
    predict_logits(net, images, num_classes=2, mode="slide", crop_size=(512, 1024))
    assert sorted(net.corners) == [(y, x) for y in (0, 341, 351) for x in (0, 683, 783)]


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_size_divisor_pads_and_crops_back(mode: str) -> None:
    net, images = pointwise_net(), torch.randn(2, 3, 45, 70)
    seen: list[tuple[int, int]] = []
    net.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        logits = predict_logits(
            net, images, num_classes=4, mode=mode, crop_size=(40, 60), stride=30, size_divisor=32
        )
        torch.testing.assert_close(logits, net(images), rtol=1e-5, atol=1e-6)
    assert logits.shape == (2, 4, 45, 70)
    assert all(h % 32 == 0 and w % 32 == 0 for h, w in seen[:-1])


def test_torchvision_dict_output_uses_out() -> None:
    net, images = pointwise_net(), torch.randn(2, 3, 16, 24)
    with torch.no_grad():
        logits = predict_logits(DictNet(net), images, num_classes=4)
        torch.testing.assert_close(logits, net(images))


def test_low_resolution_logits_are_upsampled_bilinearly() -> None:
    net, images = StridedNet(pointwise_net()), torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        logits = predict_logits(net, images, num_classes=4)
        small = net(images)
    assert small.shape == (2, 4, 8, 12) and logits.shape == (2, 4, 32, 48)
    expected = F.interpolate(small, size=(32, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(logits, expected)


def test_gradients_flow_through_inference() -> None:
    net, images = pointwise_net(), torch.randn(1, 3, 20, 20)
    predict_logits(net.train(), images, num_classes=4, mode="slide", crop_size=12).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_resize_logits() -> None:
    logits = torch.randn(2, 3, 8, 8)
    assert resize_logits(logits, (8, 8)) is logits
    assert resize_logits(logits, (17, 5)).shape == (2, 3, 17, 5)
    torch.testing.assert_close(
        resize_logits(logits[0], (16, 16)), resize_logits(logits, (16, 16))[0]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 5}, "expected \\(B, 5, H, W\\)"),
        ({"num_classes": 4, "mode": "sliding"}, "mode"),
        ({"num_classes": 4, "mode": "slide"}, "crop_size"),
        ({"num_classes": 4, "mode": "slide", "crop_size": 8, "stride": 9}, "stride"),
        ({"num_classes": 4, "size_divisor": 0}, "size_divisor"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        predict_logits(pointwise_net(), torch.randn(1, 3, 16, 16), **kwargs)

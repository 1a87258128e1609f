"""cvbench's small U-Net: logits at the input's size for any H, W, finite gradients, and it
learns: overfits two synthetic 32x32 masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cvbench.models.unet import UNet


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (17, 64), (8, 9)])
@pytest.mark.parametrize("depth", [1, 3])
def test_logits_at_input_size(size: tuple[int, int], depth: int) -> None:
    net = UNet(out_channels=5, base_channels=4, depth=depth).eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 3, *size))
    assert logits.shape == (2, 5, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_backward_gives_finite_grads_to_every_parameter(norm: str) -> None:
    net = UNet(in_channels=1, out_channels=3, base_channels=4, depth=2, norm=norm)
    logits = net(torch.randn(2, 1, 20, 28))
    F.cross_entropy(logits, torch.randint(0, 3, (2, 20, 28))).backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_width_and_depth_set_the_parameter_count() -> None:
    def count(**kwargs: int) -> int:
        return sum(p.numel() for p in UNet(out_channels=2, **kwargs).parameters())

    assert 1.7e6 < count(base_channels=16, depth=4) < 1.9e6
    assert 3.5 < count(base_channels=16, depth=4) / count(base_channels=16, depth=3) < 4.5


def test_input_smaller_than_the_pooling_is_rejected() -> None:
    with pytest.raises(ValueError, match="2\\*\\*depth = 16"):
        UNet(out_channels=2, depth=4)(torch.randn(1, 3, 12, 40))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"out_channels": 0}, "out_channels"), ({"out_channels": 2, "norm": "layer"}, "norm")],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)


def synthetic_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 32x32 images: a square (class 1) and a disc (class 2) on background 0, each
    class with its own mean colour plus noise."""
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    masks = torch.zeros(2, 32, 32, dtype=torch.int64)
    masks[0, 4:20, 10:28] = 1
    masks[0][(yy - 24) ** 2 + (xx - 8) ** 2 < 36] = 2
    masks[1][(yy - 14) ** 2 + (xx - 16) ** 2 < 81] = 2
    masks[1, 26:31, 2:30] = 1
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.5, 0.2], [-0.4, 0.8, 1.0]])
    generator = torch.Generator().manual_seed(0)
    images = colours[masks].permute(0, 3, 1, 2) + 0.3 * torch.randn(
        2, 3, 32, 32, generator=generator
    )
    return images, masks


def test_overfits_two_images() -> None:
    torch.manual_seed(0)
    images, masks = synthetic_batch()
    net = UNet(out_channels=3, base_channels=8, depth=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(50):
        optimizer.zero_grad()
        F.cross_entropy(net(images), masks).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(images).argmax(dim=1) == masks).float().mean().item()
    assert accuracy > 0.95

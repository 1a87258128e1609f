"""Style-transfer losses against closed forms on known tensors, against plain torch reductions
computed another way, and their invariances (spatial permutation for Gram matrices)."""

from __future__ import annotations

import doctest

import pytest
import torch

import cvbench.metrics.style as style
from cvbench.metrics.style import (
    adain,
    channel_mean_std,
    content_loss,
    gram_matrix,
    gram_style_loss,
    mean_std_style_loss,
)


def test_doctests() -> None:
    assert doctest.testmod(style).failed == 0


def test_gram_matrix_by_hand() -> None:
    # C=2, H=2, W=1: channel 0 = (1, 0), channel 1 = (2, 3); C*H*W = 4.
    features = torch.tensor([[[[1.0], [0.0]], [[2.0], [3.0]]]])
    expected = torch.tensor([[[1.0, 2.0], [2.0, 13.0]]]) / 4  # (1*1, 1*2; 2*1, 4+9)
    assert torch.equal(gram_matrix(features), expected)


def test_gram_matrix_equals_einsum_per_image() -> None:
    features = torch.randn(
        3, 4, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    expected = torch.einsum("nchw,ndhw->ncd", features, features) / (4 * 5 * 6)
    torch.testing.assert_close(gram_matrix(features), expected, rtol=1e-12, atol=1e-12)


def test_content_loss_zero_for_identical_and_by_hand() -> None:
    a = torch.randn(2, 3, 4, 4)
    assert torch.equal(content_loss(a, a.clone()), torch.zeros(2))
    out = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]], [[[0.0, 0.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[[1.0, 0.0]], [[0.0, 4.0]]], [[[1.0, 1.0]], [[1.0, -1.0]]]])
    # image 0: squared differences 0, 4, 9, 0 -> 13 / 4; image 1: four ones -> 1.
    assert torch.equal(content_loss(out, target), torch.tensor([13 / 4, 1.0]))


def test_content_loss_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        content_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))


def test_gram_style_loss_by_hand_with_weights_and_broadcast_style() -> None:
    # Layer 1 (C=1, H=1, W=2): out (1, 1) -> G = 2/2 = 1; style (0, 2) -> G = 4/2 = 2.
    # Layer 2 (C=2, H=W=1): out (1, 0) -> G = [[1, 0], [0, 0]] / 2; style (0, 0) -> zeros;
    #   MSE = (1/2)^2 / 4 = 1/16.
    out = [torch.tensor([[[[1.0, 1.0]]]]).repeat(2, 1, 1, 1), torch.tensor([[[[1.0]], [[0.0]]]])]
    out[1] = torch.cat([out[1], torch.zeros(1, 2, 1, 1)])  # second image: zeros, G = 0
    style_feats = [torch.tensor([[[[0.0, 2.0]]]]), torch.zeros(1, 2, 1, 1)]
    loss = gram_style_loss(out, style_feats, weights=[2.0, 10.0])
    # image 0: 2 * (1 - 2)^2 + 10 / 16 = 2.625; image 1: 2 * 1 + 0 = 2.
    assert torch.equal(loss, torch.tensor([2.625, 2.0]))
    assert torch.equal(gram_style_loss(out, style_feats), torch.tensor([1.0625, 1.0]))


def test_gram_style_loss_ignores_where_the_pixels_are() -> None:
    generator = torch.Generator().manual_seed(1)
    out = [torch.randn(2, 8, 6, 5, generator=generator, dtype=torch.float64)]
    style_feats = [torch.randn(1, 8, 7, 9, generator=generator, dtype=torch.float64)]
    permutation = torch.randperm(30, generator=generator)
    shuffled = [out[0].flatten(2)[:, :, permutation].reshape(2, 8, 6, 5)]
    assert not torch.equal(shuffled[0], out[0])
    torch.testing.assert_close(
        gram_style_loss(shuffled, style_feats),
        gram_style_loss(out, style_feats),
        rtol=1e-12,
        atol=0,
    )
    assert torch.equal(
        gram_style_loss(style_feats, style_feats), torch.zeros(1, dtype=torch.float64)
    )


def test_style_losses_refuse_mismatched_layers_and_weights() -> None:
    one = [torch.zeros(1, 2, 3, 3)]
    with pytest.raises(ValueError, match="same, non-zero number of layers"):
        gram_style_loss(one, one + one)
    with pytest.raises(ValueError, match="one value per layer"):
        mean_std_style_loss(one, one, weights=[1.0, 2.0])


def test_channel_mean_std_equals_torch_population_statistics() -> None:
    features = torch.randn(
        3, 5, 4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    mean, std = channel_mean_std(features, eps=0.0)
    assert mean.shape == std.shape == (3, 5)
    for n in range(3):
        for c in range(5):
            torch.testing.assert_close(mean[n, c], torch.mean(features[n, c]), rtol=1e-12, atol=0)
            torch.testing.assert_close(
                std[n, c], torch.std(features[n, c], unbiased=False), rtol=1e-12, atol=0
            )
    _, std_eps = channel_mean_std(features, eps=0.5)
    torch.testing.assert_close(std_eps, (std.square() + 0.5).sqrt(), rtol=1e-12, atol=0)


def test_mean_std_style_loss_by_hand() -> None:
    # Layer (C=2, H=1, W=2). Output channels (0, 2) and (1, 1): means (1, 1), stds (1, 0).
    # Style channels (4, 4) and (-1, 5): means (4, 2), stds (0, 3).
    out = [torch.tensor([[[[0.0, 2.0]], [[1.0, 1.0]]]])]
    style_feats = [torch.tensor([[[[4.0, 4.0]], [[-1.0, 5.0]]]])]
    # ||(-3, -1)|| + ||(1, -3)|| = 2 sqrt(10), times the layer weight 0.5.
    loss = mean_std_style_loss(out, style_feats, weights=[0.5], eps=0.0)
    torch.testing.assert_close(loss, torch.tensor([10.0**0.5]))
    assert torch.equal(mean_std_style_loss(out, out, eps=0.0), torch.zeros(1))


def test_mean_std_style_loss_has_a_finite_gradient_at_zero() -> None:
    out = torch.tensor([[[[0.0, 2.0]]]], requires_grad=True)
    mean_std_style_loss([out], [out.detach().clone()]).sum().backward()
    assert torch.isfinite(out.grad).all()


@pytest.mark.parametrize("style_batch", [1, 3])
def test_adain_gives_the_style_statistics_and_keeps_the_content_pattern(style_batch: int) -> None:
    generator = torch.Generator().manual_seed(3)
    content = 2.0 * torch.randn(3, 4, 6, 6, generator=generator, dtype=torch.float64) + 1.0
    style_feats = 0.3 * torch.randn(style_batch, 4, 5, 9, generator=generator, dtype=torch.float64)
    style_feats = style_feats - 2.0
    out = adain(content, style_feats, eps=0.0)
    assert out.shape == content.shape
    mean_out, std_out = channel_mean_std(out, eps=0.0)
    mean_style, std_style = channel_mean_std(style_feats, eps=0.0)
    torch.testing.assert_close(mean_out, mean_style.expand(3, 4), rtol=0, atol=1e-5)
    torch.testing.assert_close(std_out, std_style.expand(3, 4), rtol=0, atol=1e-5)
    mean_c, std_c = channel_mean_std(content, eps=0.0)
    pattern_content = (content - mean_c[..., None, None]) / std_c[..., None, None]
    pattern_out = (out - mean_out[..., None, None]) / std_out[..., None, None]
    torch.testing.assert_close(pattern_out, pattern_content, rtol=0, atol=1e-5)
    # With the default eps the statistics are matched up to eps's effect (variances ~ 0.1-4).
    mean_eps, std_eps = channel_mean_std(adain(content, style_feats), eps=0.0)
    torch.testing.assert_close(mean_eps, mean_style.expand(3, 4), rtol=0, atol=1e-5)
    torch.testing.assert_close(std_eps, std_style.expand(3, 4), rtol=1e-4, atol=0)


def test_adain_refuses_other_channel_counts() -> None:
    with pytest.raises(ValueError, match="same channels"):
        adain(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))

"""Content and style losses of neural style transfer, as pure per-image tensor functions.

References:
    Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks",
    CVPR 2016 (content loss, Gram-matrix style loss); Johnson, Alahi and Fei-Fei, "Perceptual
    Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016, as pytorch/examples'
    ``fast_neural_style`` computes it (Gram matrix normalised by C*H*W, mean squared errors);
    Huang and Belongie, "Arbitrary Style Transfer in Real-Time with Adaptive Instance
    Normalization", ICCV 2017 (AdaIN, eq. 8; the mean/std style loss, eq. 12).

Every loss returns one value per image, shape (N,), so a per-image metric can keep them and
average over a split's images. The features are activations of one named loss network
(``cvbench.models.loss_network.LossNetwork``); a loss value means something only under that
network, its layers and its input scaling, which is why reported names carry the network's name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrices of feature maps, normalised by the number of entries C*H*W.

    G[n, i, j] = sum_{h, w} F[n, i, h, w] * F[n, j, h, w] / (C * H * W), as pytorch/examples'
    ``fast_neural_style`` (Johnson et al.). Gatys et al. use the unnormalised sum G_l = F F^T and
    put the normalisation into the loss instead, E_l = sum (G_l - A_l)^2 / (4 N_l^2 M_l^2) with
    N_l = C channels and M_l = H*W positions; the per-layer MSE of these normalised Grams
    (``gram_style_loss``) is 4 / C^2 times Gatys's E_l. The two conventions differ by factors
    that depend on the layer's width, so they weight the layers differently and give numbers
    orders of magnitude apart: a style loss is only comparable under the normalisation it names
    (this one, ``C*H*W``).

    Args:
        features: (N, C, H, W) float activations.

    Returns:
        (N, C, C) float Gram matrices, symmetric, in the features' units squared.

    >>> gram_matrix(torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]))  # C=2, H=1, W=2: F F^T / 4
    tensor([[[1.2500, 2.7500],
             [2.7500, 6.2500]]])
    """
    if features.ndim != 4:
        raise ValueError(f"gram_matrix: features must be (N, C, H, W), got {tuple(features.shape)}")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features_out: Tensor, features_content: Tensor) -> Tensor:
    """Per-image mean squared error between feature maps (Johnson et al.'s feature
    reconstruction loss, ||phi(y) - phi(x)||^2 / (C*H*W); Gatys et al. write it as
    1/2 * sum of squares, i.e. C*H*W / 2 times this).

    Args:
        features_out: (N, C, H, W) float activations of the output images.
        features_content: (N, C, H, W) float activations of the content images.

    Returns:
        (N,) float, mean over channels and positions of the squared differences.

    >>> content_loss(torch.zeros(2, 1, 1, 2), torch.tensor([1.0, 3.0, 0.0, 2.0]).view(2, 1, 1, 2))
    tensor([5., 2.])
    """
    if features_out.shape != features_content.shape or features_out.ndim != 4:
        raise ValueError(
            f"content_loss: features must both be (N, C, H, W) of one shape, got "
            f"{tuple(features_out.shape)} and {tuple(features_content.shape)}"
        )
    return (features_out - features_content).square().flatten(1).mean(dim=1)


def _layer_weights(name: str, num_layers: int, weights: Sequence[float] | None) -> list[float]:
    """``weights`` as floats (1.0 per layer when None), checked against the number of layers."""
    if weights is None:
        return [1.0] * num_layers
    if len(weights) != num_layers:
        raise ValueError(
            f"{name}: weights needs one value per layer ({num_layers} layers), got {list(weights)}"
        )
    return [float(weight) for weight in weights]


def _check_layers(name: str, feats_out: Sequence[Tensor], feats_style: Sequence[Tensor]) -> None:
    if not feats_out or len(feats_out) != len(feats_style):
        raise ValueError(
            f"{name}: feats_out and feats_style need the same, non-zero number of layers, got "
            f"{len(feats_out)} and {len(feats_style)}"
        )


def gram_style_loss(
    feats_out: Sequence[Tensor],
    feats_style: Sequence[Tensor],
    weights: Sequence[float] | None = None,
) -> Tensor:
    """Gram-matrix style loss: sum over layers l of w_l * MSE(G(out_l), G(style_l)) per image.

    The MSE is the mean over the C*C entries of the ``gram_matrix`` (normalised by C*H*W)
    differences, as pytorch/examples' ``fast_neural_style``; the sizes of the output and style
    images may differ (a Gram matrix has no spatial dimensions).

    Args:
        feats_out: per layer, (N, C_l, H_l, W_l) float activations of the output images.
        feats_style: per layer, (N or 1, C_l, H'_l, W'_l) float activations of the style
            images; a batch of 1 is one style image for every output.
        weights: one weight per layer; 1.0 each when None (a plain sum).

    Returns:
        (N,) float style loss per output image.

    >>> out = [torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])]
    >>> gram_style_loss(out, [torch.zeros(1, 2, 1, 2)])  # (1.25^2 + 2 * 2.75^2 + 6.25^2) / 4
    tensor([13.9375])
    """
    _check_layers("gram_style_loss", feats_out, feats_style)
    layer_weights = _layer_weights("gram_style_loss", len(feats_out), weights)
    total = None
    for weight, out, style in zip(layer_weights, feats_out, feats_style, strict=True):
        layer = (gram_matrix(out) - gram_matrix(style)).square().mean(dim=(1, 2))
        total = weight * layer if total is None else total + weight * layer
    return total


def channel_mean_std(features: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over positions (Huang and Belongie, eqs. 5-6).

    mu = sum_{h, w} F / (H*W), sigma = sqrt(sum_{h, w} (F - mu)^2 / (H*W) + eps): the
    population variance (divided by H*W, as instance normalisation), plus ``eps``. (The authors'
    PyTorch port, naoto0804/pytorch-AdaIN, divides by H*W - 1.)

    Args:
        features: (N, C, H, W) float activations.
        eps: added to the variance before the square root, so sigma > 0.

    Returns:
        ``(mean, std)``, each (N, C) float.

    >>> mean, std = channel_mean_std(torch.tensor([[[[1.0, 3.0]]]]), eps=0.0)
    >>> mean, std
    (tensor([[2.]]), tensor([[1.]]))
    """
    if features.ndim != 4:
        raise ValueError(
            f"channel_mean_std: features must be (N, C, H, W), got {tuple(features.shape)}"
        )
    flat = features.flatten(2)
    mean = flat.mean(dim=2)
    variance = flat.var(dim=2, unbiased=False)
    return mean, (variance + eps).sqrt()


def mean_std_style_loss(
    feats_out: Sequence[Tensor],
    feats_style: Sequence[Tensor],
    weights: Sequence[float] | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """AdaIN's style loss (Huang and Belongie, eq. 12), per image:

    sum_l w_l * (||mu(out_l) - mu(style_l)||_2 + ||sigma(out_l) - sigma(style_l)||_2),

    with the Euclidean norms over channels of ``channel_mean_std``, as the paper writes it. (The
    authors' PyTorch port uses the mean of squares over channels instead, a different scale.)

    Args:
        feats_out: per layer, (N, C_l, H_l, W_l) float activations of the output images.
        feats_style: per layer, (N or 1, C_l, H'_l, W'_l) float activations of the style
            images; a batch of 1 is one style image for every output.
        weights: one weight per layer; 1.0 each when None (the paper's plain sum).
        eps: added to the variances (``channel_mean_std``).

    Returns:
        (N,) float style loss per output image.

    >>> out = [torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]]])]  # means (2, 0), stds (1, 0)
    >>> mean_std_style_loss(out, [torch.zeros(1, 2, 1, 2)], eps=0.0)  # |(2, 0)| + |(1, 0)|
    tensor([3.])
    """
    _check_layers("mean_std_style_loss", feats_out, feats_style)
    layer_weights = _layer_weights("mean_std_style_loss", len(feats_out), weights)
    total = None
    for weight, out, style in zip(layer_weights, feats_out, feats_style, strict=True):
        mean_out, std_out = channel_mean_std(out, eps)
        mean_style, std_style = channel_mean_std(style, eps)
        layer = torch.linalg.vector_norm(mean_out - mean_style, dim=1) + torch.linalg.vector_norm(
            std_out - std_style, dim=1
        )
        total = weight * layer if total is None else total + weight * layer
    return total


def adain(content_features: Tensor, style_features: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalisation (Huang and Belongie, eq. 8):

    AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y),

    per image and channel, with ``channel_mean_std`` (population variance plus ``eps``).

    Args:
        content_features: (N, C, H, W) float activations x of the content images.
        style_features: (N or 1, C, H', W') float activations y of the style images; a batch of
            1 is one style image for every content image.
        eps: added to both variances.

    Returns:
        (N, C, H, W) float: x's normalised pattern with y's channel means and stds.

    >>> adain(torch.tensor([[[[0.0, 2.0]]]]), torch.tensor([[[[5.0, 11.0]]]]), eps=0.0)
    tensor([[[[ 5., 11.]]]])
    """
    if content_features.ndim != 4 or style_features.ndim != 4:
        raise ValueError(
            f"adain: features must be (N, C, H, W), got {tuple(content_features.shape)} and "
            f"{tuple(style_features.shape)}"
        )
    if style_features.shape[1] != content_features.shape[1]:
        raise ValueError(
            f"adain: content and style features need the same channels, got "
            f"{content_features.shape[1]} and {style_features.shape[1]}"
        )
    mean_x, std_x = channel_mean_std(content_features, eps)
    mean_y, std_y = channel_mean_std(style_features, eps)
    normalised = (content_features - mean_x[..., None, None]) / std_x[..., None, None]
    return normalised * std_y[..., None, None] + mean_y[..., None, None]

"""StyleTransferMetric: closed forms on known feature tensors, SSIM of the luma against
scikit-image, each grid cell once, the held-out styles' means and the network in the keys."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from skimage.metrics import structural_similarity

import cvbench.metrics.style_transfer as style_transfer
from cvbench.metrics.restoration import quantize, rgb_to_y
from cvbench.metrics.style_transfer import StyleTransferMetric, cell_scores


def test_doctests() -> None:
    assert doctest.testmod(style_transfer).failed == 0


def _image(seed: int, size: int = 16) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_losses_equal_the_closed_forms() -> None:
    # Content: layers a and b, one image; squared differences (1, 9) over 2 entries in a,
    # (4) over 1 entry in b: 5 + 4 = 9.
    out = {
        "a": torch.zeros(1, 1, 1, 2),
        "b": torch.zeros(1, 1, 1, 1),
        "s": torch.tensor([[[[1.0, 3.0]], [[0.0, 0.0]]]]),  # C=2, H=1, W=2
    }
    content = {
        "a": torch.tensor([1.0, 3.0]).view(1, 1, 1, 2),
        "b": torch.full((1, 1, 1, 1), 2.0),
        "s": torch.zeros(1, 2, 1, 2),
    }
    style = {"s": torch.zeros(1, 2, 1, 2)}
    image = _image(0)
    scores = cell_scores(
        out, content, style, image, image, content_layers=["a", "b"], style_layers=["s"]
    )
    assert scores["content_loss"].tolist() == [9.0]
    # Gram of s: F F^T / (C H W) = [[10, 0], [0, 0]] / 4; against zeros: (2.5^2) / 4 entries.
    assert scores["style_loss"].item() == pytest.approx(2.5**2 / 4, abs=1e-12)
    # Mean/std: means (2, 0) vs (0, 0); stds sqrt(1 + eps), sqrt(eps) vs sqrt(eps) twice.
    eps = 1e-5
    expected = 2.0 + math.sqrt(1 + eps) - math.sqrt(eps)
    assert scores["style_loss_mean_std"].item() == pytest.approx(expected, abs=1e-6)
    assert scores["ssim_content"].item() == 1.0


def test_ssim_content_is_scikit_image_ssim_of_the_8_bit_luma() -> None:
    output, content = _image(1, 24), _image(2, 24)
    output = 0.5 * output + 0.5 * content  # some structure in common
    feats = {"a": torch.zeros(1, 1, 2, 2)}
    scores = cell_scores(
        feats, feats, feats, output, content, content_layers=["a"], style_layers=["a"]
    )
    y_out, y_content = (rgb_to_y(quantize(x))[0, 0].numpy() for x in (output, content))
    reference = structural_similarity(
        y_out,
        y_content,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert 0.1 < reference < 0.99
    assert scores["ssim_content"].item() == pytest.approx(reference, abs=1e-9)


def _batch(values: list[float], index: list[int], style_index: list[int]) -> dict:
    """A batch whose content loss per cell is ``values`` (one feature entry, content zeros)."""
    n = len(values)
    out = {"a": torch.tensor(values).sqrt().view(n, 1, 1, 1)}
    zeros = {"a": torch.zeros(n, 1, 1, 1)}
    images = _image(3).expand(n, -1, -1, -1)
    return {
        "feats_out": out,
        "feats_content": zeros,
        "feats_style": zeros,
        "outputs": images,
        "contents": images,
        "index": torch.tensor(index),
        "content_index": torch.tensor(index) // 2,
        "style_index": torch.tensor(style_index),
    }


def test_each_cell_once_held_out_means_and_network_keys() -> None:
    metric = StyleTransferMetric(content_layers=["a"], style_layers=["a"])
    metric.tie_to("vgg_rand_s0", held_out_styles=[1])
    metric.update(**_batch([1.0, 2.0, 4.0], index=[0, 1, 2], style_index=[0, 1, 0]))
    metric.update(**_batch([100.0, 8.0], index=[1, 3], style_index=[1, 1]))  # 1 repeated
    scores = metric.compute()
    assert scores["num_images"] == 4
    assert scores["content_loss@vgg_rand_s0"] == pytest.approx((1 + 2 + 4 + 8) / 4)
    assert scores["content_loss_held_out@vgg_rand_s0"] == pytest.approx((2 + 8) / 2)
    assert scores["num_images_held_out"] == 2
    assert scores["ssim_content"] == 1.0
    assert {"style_loss@vgg_rand_s0", "style_loss_mean_std@vgg_rand_s0"} <= set(scores)
    rows = metric.last_per_image
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    assert [row["style_index"] for row in rows] == [0, 1, 0, 1]
    assert [row["content_index"] for row in rows] == [0, 0, 1, 1]
    assert rows[1]["content_loss"] == pytest.approx(2.0)  # the first copy, not the repeat


def test_untied_metric_and_bad_layers_are_errors() -> None:
    metric = StyleTransferMetric(content_layers=["a"], style_layers=["a"])
    metric.update(**_batch([1.0], index=[0], style_index=[0]))
    with pytest.raises(ValueError, match="tie_to"):
        metric.compute()
    with pytest.raises(ValueError, match="style_layers"):
        StyleTransferMetric(content_layers=["a"], style_layers="a")
    other = StyleTransferMetric(content_layers=["a"], style_layers=["b"])
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        other.update(**_batch([1.0], index=[0], style_index=[0]))


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_without_cells_the_means_are_none() -> None:
    metric = StyleTransferMetric(content_layers=["a"], style_layers=["a"])
    metric.tie_to("n")
    scores = metric.compute()
    assert scores["num_images"] == 0
    assert scores["style_loss@n"] is None

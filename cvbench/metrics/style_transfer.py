"""Style transfer scored on a fixed grid of content x style images under one named loss network
(METRICS.md "Style transfer").

Per grid cell (output o of content c in style s; features phi_l of the judging network):

- ``content_loss@<net>``: the sum over the content layers of ``content_loss(phi_l(o),
  phi_l(c))``, the mean squared feature difference (``cvbench.metrics.style``);
- ``style_loss@<net>``: the Gram-matrix style loss over the style layers, ``gram_style_loss``
  (Grams normalised by C*H*W, MSE over the C*C entries, a plain sum over layers);
- ``style_loss_mean_std@<net>``: AdaIN's mean/std style loss over the same layers,
  ``mean_std_style_loss`` (Huang and Belongie, eq. 12);
- ``ssim_content``: SSIM (Wang et al. 2004; 11 x 11 Gaussian window, sigma 1.5) between the
  luma Y (BT.601) of o and of c, both rounded to 8 bits, as ``cvbench.metrics.restoration.ssim``
  with ``color="y"``: how much of the content's structure survives, whatever the colours.

Each value is the mean over the grid's cells, each cell counted once (``PerImageMetric``). The
losses mean something only under the network that computed them (its weights, layers and input
scaling), so their keys carry its name (``style_loss@vgg_rand_s0``); SSIM needs no network.
Call :meth:`StyleTransferMetric.tie_to` with the judging network's name before ``compute``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric
from cvbench.metrics.restoration import ssim
from cvbench.metrics.style import content_loss, gram_style_loss, mean_std_style_loss

LOSSES = ("content_loss", "style_loss", "style_loss_mean_std")
"""The per-cell losses kept, whose reported keys carry the network's name."""
SCORES = (*LOSSES, "ssim_content")


def cell_scores(
    feats_out: Mapping[str, Tensor],
    feats_content: Mapping[str, Tensor],
    feats_style: Mapping[str, Tensor],
    outputs: Tensor,
    contents: Tensor,
    *,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
) -> dict[str, Tensor]:
    """The scores of each grid cell (module docstring).

    Args:
        feats_out: ``{layer: (B, C_l, H_l, W_l)}`` features of the outputs.
        feats_content: the same layers of the content images, the outputs' shapes.
        feats_style: the same layers of the style images, (B or 1, C_l, H'_l, W'_l).
        outputs: (B, 3, H, W) float RGB, clamped to [0, 1] for SSIM.
        contents: (B, 3, H, W) float RGB in [0, 1].
        content_layers: layers of the content loss (summed).
        style_layers: layers of both style losses (summed, weight 1 each).

    Returns:
        ``content_loss``, ``style_loss``, ``style_loss_mean_std``, ``ssim_content``: (B,)
        float64 each.

    The content image scored as its own output has no content loss and an SSIM of 1:

    >>> image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> feats = {"a": image * 2}
    >>> scores = cell_scores(feats, feats, {"a": torch.zeros(1, 3, 4, 4)}, image, image,
    ...                      content_layers=["a"], style_layers=["a"])
    >>> scores["content_loss"].item(), scores["ssim_content"].item()
    (0.0, 1.0)
    """
    for name, layers in (("content_layers", content_layers), ("style_layers", style_layers)):
        missing = [layer for layer in layers if layer not in feats_out]
        if not layers or missing:
            raise ValueError(
                f"StyleTransferMetric: {name} {list(layers)} needs features of every layer, "
                f"missing {missing}; the judging network computes {sorted(feats_out)}"
            )
    content = sum(content_loss(feats_out[layer], feats_content[layer]) for layer in content_layers)
    out_style = [feats_out[layer] for layer in style_layers]
    style = [feats_style[layer] for layer in style_layers]
    return {
        "content_loss": content.double(),
        "style_loss": gram_style_loss(out_style, style).double(),
        "style_loss_mean_std": mean_std_style_loss(out_style, style).double(),
        "ssim_content": ssim(outputs, contents, color="y"),
    }


def mean_scores(values: Mapping[str, Tensor], network: str, suffix: str = "") -> dict[str, Any]:
    """Means over cells of the per-cell scores, keyed ``<score><suffix>[@network]``.

    Args:
        values: (N,) per-cell values of each of ``SCORES``.
        network: the judging network's name, appended to the losses' keys.
        suffix: appended to each score's name (``"_held_out"``).

    Returns:
        one float per score (None without cells) and ``num_images<suffix>``.

    >>> values = {name: torch.tensor([1.0, 3.0]) for name in SCORES}
    >>> mean_scores(values, "vgg_rand_s0")["style_loss@vgg_rand_s0"]
    2.0
    >>> sorted(mean_scores({name: torch.zeros(0) for name in SCORES}, "n", "_held_out").items())
    ... # doctest: +NORMALIZE_WHITESPACE
    [('content_loss_held_out@n', None), ('num_images_held_out', 0),
     ('ssim_content_held_out', None), ('style_loss_held_out@n', None),
     ('style_loss_mean_std_held_out@n', None)]
    """
    count = len(values["content_loss"])
    scores: dict[str, Any] = {}
    for name in SCORES:
        key = f"{name}{suffix}@{network}" if name in LOSSES else f"{name}{suffix}"
        scores[key] = float(values[name].double().mean()) if count else None
    scores[f"num_images{suffix}"] = count
    return scores


class StyleTransferMetric(PerImageMetric):
    """Content, style and structure scores of style-transfer outputs over a grid (see the
    module), each grid cell counted once under DDP.

    ``update`` keeps each cell's scores with its grid index and its content and style indices;
    ``compute`` returns their means, and with ``held_out_styles`` the same over the cells of
    those styles (``style_loss_held_out@<net>``, ...). After ``compute``, ``last_per_image``
    holds one dict per cell, sorted by index: ``index``, ``content_index``, ``style_index``
    and the four scores.

    Args:
        content_layers: the judging network's layers of the content loss (Gatys et al.:
            ``relu4_2``).
        style_layers: its layers of the style losses (Gatys et al.: ``relu1_1`` ...
            ``relu5_1``).
    """

    higher_is_better = False

    def __init__(self, *, content_layers: Sequence[str], style_layers: Sequence[str]) -> None:
        super().__init__()
        for name, layers in (("content_layers", content_layers), ("style_layers", style_layers)):
            if isinstance(layers, str) or not layers:
                raise ValueError(
                    f"StyleTransferMetric: {name} must be a non-empty list of layer names, got "
                    f"{layers!r}"
                )
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.network: str | None = None
        self.held_out_styles: set[int] = set()
        self.last_per_image: list[dict[str, Any]] = []
        for name in SCORES:
            self.add_field(name, torch.float64)
        self.add_field("content_index", torch.int64)
        self.add_field("style_index", torch.int64)

    @property
    def layers(self) -> list[str]:
        """Every layer the judging network must compute, content layers first."""
        return list(dict.fromkeys(self.content_layers + self.style_layers))

    def tie_to(self, network: str, held_out_styles: Collection[int] = ()) -> None:
        """Name the judging network (in every loss key) and the style indices whose cells are
        also scored apart (``*_held_out``)."""
        self.network = network
        self.held_out_styles = {int(s) for s in held_out_styles}

    def update(
        self,
        feats_out: Mapping[str, Tensor],
        feats_content: Mapping[str, Tensor],
        feats_style: Mapping[str, Tensor],
        outputs: Tensor,
        contents: Tensor,
        index: Tensor,
        content_index: Tensor,
        style_index: Tensor,
    ) -> None:
        """Score a batch of grid cells (arguments of :func:`cell_scores`; ``index``,
        ``content_index``, ``style_index``: (B,) int64 of the ``StyleBatch``)."""
        scores = cell_scores(
            feats_out,
            feats_content,
            feats_style,
            outputs.to(self.device),
            contents.to(self.device),
            content_layers=self.content_layers,
            style_layers=self.style_layers,
        )
        self.add_images(
            index, scores | {"content_index": content_index, "style_index": style_index}
        )

    def compute(self) -> dict[str, Any]:
        """The means of :func:`mean_scores` over all cells, and over the held-out styles'
        cells when ``tie_to`` named some."""
        if self.network is None:
            raise ValueError(
                "StyleTransferMetric: the judging network is not named: the task calls "
                "tie_to(network name) before computing"
            )
        images = self.kept_images(device="cpu")
        columns = {name: images[name] for name in (*SCORES, "content_index", "style_index")}
        self.last_per_image = [
            {"index": i} | {name: values[k].item() for name, values in columns.items()}
            for k, i in enumerate(images.index.tolist())
        ]
        scores = mean_scores(images.values, self.network)
        if self.held_out_styles:
            held = torch.isin(images["style_index"], torch.tensor(sorted(self.held_out_styles)))
            held_values = {name: images[name][held] for name in SCORES}
            scores |= mean_scores(held_values, self.network, "_held_out")
        return scores

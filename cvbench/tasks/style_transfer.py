"""Neural style transfer as one LightningModule: Gatys et al.'s optimised image, Johnson et al.'s
feed-forward network for one style and Huang and Belongie's AdaIN for arbitrary styles, trained
with their own loss network and layers, and all judged alike by one named network on a fixed
grid of content x style images (``cvbench.metrics.style_transfer``).

Training objective per image, with the features phi of ``loss_network`` (the method's):

    content_weight * sum_{l in content_layers} MSE(phi_l(o), target_l)
    + style_weight * style_loss(phi(o), phi(s)) over style_layers
    + tv_weight * TV(o),

where o is the output, s the style image, target_l = phi_l(c) of the content image c
(``content_target: image``, Gatys, Johnson) or AdaIN(phi_l(c), phi_l(s)) (``content_target:
adain``, Huang and Belongie's decoder loss), ``style_loss`` the Gram-matrix loss (``gram``) or
AdaIN's mean/std loss (``mean_std``) of ``cvbench.metrics.style``, and TV the mean squared
difference of neighbouring pixels. ``{stage}/loss`` is its mean over a stage's images.

Evaluation: the judging network ``eval_network`` with the protocol's layers (fixed in the task
YAML) scores the clamped outputs, and the same metric scores two baselines: the content image
itself (``baseline_content_*``) and, with ``untrained_baseline``, the network as built before
training (``baseline_untrained_*``: for AdaIN, the style's statistics pasted on the encoder
features by an untrained decoder).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from cvbench.data.batches import StyleBatch
from cvbench.metrics.style import adain, content_loss, gram_style_loss, mean_std_style_loss
from cvbench.metrics.style_transfer import StyleTransferMetric
from cvbench.models.loss_network import LossNetwork
from cvbench.tasks.base import EVAL_STAGES, STAGES, TaskModule
from cvbench.tasks.optimization import optimizer_config

STYLE_LOSSES = {"gram": gram_style_loss, "mean_std": mean_std_style_loss}
CONTENT_TARGETS = ("image", "adain")
BASELINES = ("content", "untrained")
FROZEN = ("loss_network.", "eval_network.")
"""State-dict prefixes of the frozen loss networks: rebuilt from the config (a seed or a
weights file), never stored in checkpoints (a VGG-19 to relu5_1 is 60 MB)."""


@runtime_checkable
class HeldOutStylesSource(Protocol):
    """A datamodule that names the test styles never trained on and gives each split's style
    records (``cvbench.data.style.StyleDataModule``)."""

    @property
    def held_out_styles(self) -> list[str]: ...

    def split(self, split: str) -> Any: ...


@dataclass(frozen=True)
class StyleTransferTestOutput:
    """The last test's per-cell scores, for the report.

    Attributes:
        per_cell: one dict per test grid cell, by index: ``index``, ``content_index``,
            ``style_index``, ``content_loss``, ``style_loss``, ``style_loss_mean_std``,
            ``ssim_content``, and the same of each baseline prefixed ``baseline_<name>_``.
        network: the judging network's name (the losses' unit).
        baselines: the baselines scored ("content", and "untrained" when there is one).
    """

    per_cell: list[dict[str, Any]]
    network: str
    baselines: tuple[str, ...]


def total_variation(images: Tensor) -> Tensor:
    """Per-image mean of the squared differences of vertically and horizontally neighbouring
    pixels (a smooth total-variation penalty, differentiable everywhere for L-BFGS).

    Args:
        images: (B, C, H, W) float, H, W >= 2.

    Returns:
        (B,) float.

    >>> total_variation(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]]))  # 0 down, 1 across
    tensor([1.])
    """
    down = (images[:, :, 1:] - images[:, :, :-1]).square().flatten(1).mean(1)
    across = (images[:, :, :, 1:] - images[:, :, :, :-1]).square().flatten(1).mean(1)
    return down + across


class StyleTransferTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.StyleBatch` batches (module docstring)
    and reports per eval stage what its :class:`~cvbench.metrics.style_transfer.
    StyleTransferMetric` computes (``{stage}/style_loss@<net>``, ...), the same of each
    baseline (``{stage}/baseline_content_style_loss@<net>``, ...), ``{stage}/loss`` and
    ``{stage}/loss_network`` (the judging network's protocol; ``train/loss_network``: the
    training one's). Steps log ``train/loss_step``, ``train/content_loss``,
    ``train/style_loss``. ``test_output`` is a :class:`StyleTransferTestOutput`.

    Args:
        loss_network: the method's loss network, computing at least ``content_layers`` and
            ``style_layers``.
        eval_network: the judging network, computing the metric's layers.
        content_layers: layers of ``loss_network`` in the content loss (summed).
        style_layers: layers of ``loss_network`` in the style loss (summed).
        content_weight: weight of the content loss.
        style_weight: weight of the style loss.
        tv_weight: weight of the total-variation penalty.
        style_loss: "gram" (Gatys, Johnson) or "mean_std" (AdaIN).
        content_target: "image" (features of the content image) or "adain" (AdaIN of the
            content's and the style's features at each content layer).
        untrained_baseline: keep a frozen copy of ``net`` as built and score it.
        alpha: test-time content-style trade-off of networks that take a style (AdaIN).
        **base: ``nets`` (one, ``net``: ``forward(content (B, 3, H, W), style (B, 3, H', W')
            | None, alpha) -> (B, 3, H, W)`` RGB, with a class attribute ``takes_style``),
            ``optimization`` and ``metrics`` (one ``StyleTransferMetric``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    frozen_prefixes = FROZEN
    loss_stages = STAGES
    progress_bar_key = "val/loss"

    def __init__(
        self,
        *,
        loss_network: LossNetwork,
        eval_network: LossNetwork,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        style_loss: Literal["gram", "mean_std"] = "gram",
        content_target: Literal["image", "adain"] = "image",
        untrained_baseline: bool = False,
        alpha: float = 1.0,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        _check_layers("task.module.loss_network", loss_network, content_layers, style_layers)
        if style_loss not in STYLE_LOSSES or content_target not in CONTENT_TARGETS:
            raise ValueError(
                f"task.module.style_loss must be one of {list(STYLE_LOSSES)} and content_target "
                f"one of {list(CONTENT_TARGETS)}, got {style_loss!r} and {content_target!r}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"task.module.alpha must be in [0, 1], got {alpha}")
        self.loss_network = loss_network
        self.eval_network = eval_network
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        self.weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        self.style_loss, self.content_target, self.alpha = style_loss, content_target, alpha
        scores = self.metric("test", StyleTransferMetric)
        _check_layers(
            "task.module.eval_network", eval_network, scores.content_layers, scores.style_layers
        )
        self.untrained_net = (
            copy.deepcopy(self.net).requires_grad_(False) if untrained_baseline else None
        )
        self.baselines = BASELINES if untrained_baseline else BASELINES[:1]
        self.baseline_metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": self.metric(stage, StyleTransferMetric).clone()
                for stage in EVAL_STAGES
                for name in self.baselines
            }
        )
        for metric in self._all_metrics():
            metric.tie_to(eval_network.name)
        self._last_targets: tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]] | None
        self._last_targets = None

    def _all_metrics(self) -> list[StyleTransferMetric]:
        stage_metrics = [self.metric(stage, StyleTransferMetric) for stage in EVAL_STAGES]
        return stage_metrics + list(self.baseline_metrics.values())

    # --- rendering ---------------------------------------------------------------------------

    def forward(self, content: Tensor, style: Tensor | None = None) -> Tensor:
        """The network's outputs (B, 3, H, W), not clamped, of content (B, 3, H, W) in [0, 1]
        in the style of ``style`` (B or 1, 3, H', W'); a network that takes a style and gets
        none uses the content as its own style (what counting FLOPs on one image does)."""
        return self._render(self.net, content, style)

    def _render(self, net: nn.Module, content: Tensor, style: Tensor | None) -> Tensor:
        if getattr(net, "takes_style", False):
            return net(content, content if style is None else style, alpha=self.alpha)
        return net(content)

    @torch.no_grad()
    def stylize(self, content: Tensor, style: Tensor | None = None, *, untrained: bool = False):
        """The stylized images (B, 3, H, W) clamped to [0, 1], by the network or (``untrained``)
        by its copy as built."""
        net = self.untrained_net if untrained else self.net
        if net is None:
            raise ValueError("this task keeps no untrained copy (task.module.untrained_baseline)")
        return self._render(net, content, style).clamp(0, 1)

    # --- the training objective --------------------------------------------------------------

    def _targets(self, content: Tensor, style: Tensor) -> tuple[dict[str, Tensor], dict]:
        """The content targets and style features of the loss network, without autograd;
        reused while the batch holds the same images (Gatys: every step, every L-BFGS
        evaluation)."""
        last = self._last_targets
        if (
            last is not None
            and last[0].shape == content.shape
            and last[1].shape == style.shape
            and torch.equal(last[0], content)
            and torch.equal(last[1], style)
        ):
            return last[2], last[3]
        with torch.no_grad():
            feats_content = self.loss_network(content)
            feats_style = self.loss_network(style)
        targets = {layer: feats_content[layer] for layer in self.content_layers}
        if self.content_target == "adain":
            targets = {layer: adain(targets[layer], feats_style[layer]) for layer in targets}
        self._last_targets = (content.detach(), style.detach(), targets, feats_style)
        return targets, feats_style

    def objective(self, outputs: Tensor, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        """The per-image terms of the training objective and their weighted sum ``loss``.

        Args:
            outputs: (B, 3, H, W) float, the network's outputs (not clamped).
            content: (B, 3, H, W) float in [0, 1].
            style: (B or 1, 3, H', W') float in [0, 1].

        Returns:
            ``content``, ``style``, ``tv``, ``loss``: (B,) float each.
        """
        targets, feats_style = self._targets(content, style)
        feats = self.loss_network(outputs)
        terms = {
            "content": sum(content_loss(feats[layer], targets[layer]) for layer in targets),
            "style": STYLE_LOSSES[self.style_loss](
                [feats[layer] for layer in self.style_layers],
                [feats_style[layer] for layer in self.style_layers],
            ),
            "tv": total_variation(outputs),
        }
        terms["loss"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms

    def training_step(self, batch: StyleBatch, batch_idx: int) -> Tensor:
        terms = self.objective(self(batch.content, batch.style), batch.content, batch.style)
        loss = terms["loss"].mean()
        size = len(batch.content)
        self.update_loss("train", loss, weight=size)
        self.log_step(
            batch_idx,
            {
                "loss_step": loss,
                "content_loss": terms["content"].mean(),
                "style_loss": terms["style"].mean(),
            },
            batch_size=size,
        )
        return loss

    # --- evaluation --------------------------------------------------------------------------

    def _eval_step(self, batch: StyleBatch, stage: str) -> None:
        content, style = batch.content, batch.style
        raw = self(content, style)
        self.update_loss(stage, self.objective(raw, content, style)["loss"], weight=len(content))
        feats_content, feats_style = self.eval_network(content), self.eval_network(style)
        outputs = {"": raw.clamp(0, 1), "content": content}
        if self.untrained_net is not None:
            outputs["untrained"] = self.stylize(content, style, untrained=True)
        indices = (batch.index, batch.content_index, batch.style_index)
        for name, images in outputs.items():
            metric = (
                self.baseline_metrics[f"{stage}_{name}"]
                if name
                else self.metric(stage, StyleTransferMetric)
            )
            feats = feats_content if name == "content" else self.eval_network(images)
            metric.update(feats, feats_content, feats_style, images, content, *indices)

    def validation_step(self, batch: StyleBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "val")

    def test_step(self, batch: StyleBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "test")

    def on_test_start(self) -> None:
        """Score the test styles never trained on apart (``*_held_out``), when the data says
        which they are."""
        datamodule = getattr(self.trainer, "datamodule", None)
        held_out: list[int] = []
        if isinstance(datamodule, HeldOutStylesSource):
            names = set(datamodule.held_out_styles)
            styles = datamodule.split("test").style_records
            held_out = [s for s in range(len(styles)) if styles.name(s) in names]
        for metric in [self.metric("test", StyleTransferMetric)] + [
            self.baseline_metrics[f"test_{name}"] for name in self.baselines
        ]:
            metric.tie_to(self.eval_network.name, held_out_styles=held_out)

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The baselines' scores and the loss network's protocol of ``stage``."""
        if stage == "train":
            return {"train/loss_network": self.loss_network.protocol}
        values: dict[str, float | str | None] = {}
        per_cell = {
            row["index"]: dict(row)
            for row in self.metric(stage, StyleTransferMetric).last_per_image
        }
        for name in self.baselines:
            metric = self.baseline_metrics[f"{stage}_{name}"]
            for key, value in metric.compute().items():
                if not key.startswith("num_images"):
                    values[f"{stage}/baseline_{name}_{key}"] = value
            for row in metric.last_per_image:
                scores = {k: v for k, v in row.items() if not k.endswith("index")}
                per_cell.setdefault(row["index"], {"index": row["index"]}).update(
                    {f"baseline_{name}_{k}": v for k, v in scores.items()}
                )
            metric.reset()
        if stage == "test":
            self.test_output = StyleTransferTestOutput(
                per_cell=[per_cell[i] for i in sorted(per_cell)],
                network=self.eval_network.name,
                baselines=self.baselines,
            )
        values[f"{stage}/loss_network"] = self.eval_network.protocol
        return values

    # --- optimization and checkpoints --------------------------------------------------------

    def configure_optimizers(self) -> dict:
        """One optimizer over the network's trainable parameters only (L-BFGS keeps flat
        copies of every parameter it is given; the loss networks and the untrained copy are
        frozen)."""
        (optimization,) = self.optimization.values()
        parameters = [p for p in self.net.parameters() if p.requires_grad]
        return optimizer_config(self, parameters, optimization)


def _check_layers(
    key: str, network: LossNetwork, content_layers: Sequence[str], style_layers: Sequence[str]
) -> None:
    """Every content and style layer is one the network computes, else an error naming
    ``key``."""
    missing = [layer for layer in (*content_layers, *style_layers) if layer not in network.layers]
    if missing or not content_layers or not style_layers:
        raise ValueError(
            f"{key}.layers {network.layers} must hold every content and style layer (and there "
            f"must be some), missing {missing}"
        )

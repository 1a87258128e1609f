"""A task with two networks and two optimizers (a GAN's generator and discriminator) is a config
of the task skeleton, trained by the real ``run_train`` with Lightning's manual optimization:
nothing in the run layer knows about it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric

from cvbench.data.batches import ClassificationBatch
from cvbench.run.build import build_task
from cvbench.run.train import run_train
from cvbench.tasks.base import EVAL_STAGES, TaskModule

NOISE = 16
PIXELS = 64  # the embedded digits are 1 x 8 x 8
STEPS = 3  # training batches per epoch
EPOCHS = 2


class TwoNetworkTask(TaskModule):
    """A tiny GAN on the digits: ``generator`` maps noise (B, 16) to flat images (B, 64),
    ``discriminator`` flat images to a real/fake logit (B, 1); each network takes one step of
    its own optimizer per batch. Reports ``{stage}/real_score`` (its declared metric: the
    discriminator's mean probability that a real image is real) and ``train/loss``."""

    metric_stages = EVAL_STAGES
    loss_stages = ("train",)

    def __init__(self, *, noise_dim: int, **base: Any) -> None:
        super().__init__(**base)
        self.noise_dim = noise_dim

    def forward(self, images: Tensor) -> Tensor:
        """Real/fake logits (B, 1) of images (B, 1, 8, 8)."""
        return self.discriminator(images.flatten(1))

    def training_step(self, batch: ClassificationBatch, batch_idx: int) -> None:
        real = batch.images.flatten(1)
        fake = self.generator(torch.randn(len(real), self.noise_dim, device=real.device))
        ones, zeros = real.new_ones(len(real), 1), real.new_zeros(len(real), 1)
        bce = F.binary_cross_entropy_with_logits
        d_loss = bce(self.discriminator(real), ones) + bce(self.discriminator(fake.detach()), zeros)
        self.optimize("discriminator", d_loss)
        g_loss = bce(self.discriminator(fake), ones)
        self.optimize("generator", g_loss)
        self.update_loss("train", d_loss + g_loss, weight=len(real))
        self.log_step(batch_idx, {"d_loss": d_loss, "g_loss": g_loss}, batch_size=len(real))

    def _eval_step(self, batch: ClassificationBatch, stage: str) -> None:
        scores = torch.sigmoid(self(batch.images)).squeeze(1)
        self.metric(stage, MeanMetric).update(scores)

    def validation_step(self, batch: ClassificationBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: ClassificationBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")


class InitialWeights(pl.Callback):
    """Keeps a copy of each network's weights as training starts (``InitialWeights.seen``)."""

    seen: list[dict[str, Tensor]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        InitialWeights.seen.append(
            {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        )


def linear(inputs: int, outputs: int) -> str:
    return f"{{_target_: torch.nn.Linear, in_features: {inputs}, out_features: {outputs}}}"


GAN = (
    "~model",
    f"+model={{generator: {linear(NOISE, PIXELS)}, discriminator: {linear(PIXELS, 1)}}}",
    "~optim",
    "+optim={generator: {_target_: torch.optim.Adam, _partial_: true, lr: 0.001},"
    " discriminator: {_target_: torch.optim.AdamW, _partial_: true, lr: 0.01}}",
    "~task.module",
    f"+task.module={{_target_: {__name__}.TwoNetworkTask, _partial_: true, noise_dim: {NOISE},"
    " metrics: {real_score: {_target_: torchmetrics.MeanMetric}}}",
    "task.monitor=val/real_score",
    "task.monitor_mode=max",
    "~task.callbacks.report",
)


@pytest.mark.slow
def test_two_networks_two_optimizers_train_through_run_train(make_cfg, tmp_path: Path) -> None:
    InitialWeights.seen.clear()
    cfg = make_cfg(
        *GAN,
        f"+callbacks.initial_weights={{_target_: {__name__}.InitialWeights}}",
        f"trainer.max_epochs={EPOCHS}",
        f"trainer.limit_train_batches={STEPS}",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
    )
    metrics = run_train(cfg)
    assert 0.0 <= metrics["test/real_score"] <= 1.0
    assert metrics["train/loss"] > 0.0

    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    weights = checkpoint["state_dict"]
    assert sorted(weights) == [
        "discriminator.bias",
        "discriminator.weight",
        "generator.bias",
        "generator.weight",
    ]
    (initial,) = InitialWeights.seen
    for name in ("generator.weight", "discriminator.weight"):
        assert not torch.equal(weights[name], initial[name]), f"{name} did not change"

    # One optimizer per network, in the model's order, each stepped once per training batch.
    adam, adamw = checkpoint["optimizer_states"]
    assert [g["initial_lr"] for s in (adam, adamw) for g in s["param_groups"]] == [0.001, 0.01]
    last_epoch = checkpoint["epoch"]  # last.ckpt of the last epoch: every batch of it done
    for state in (adam, adamw):
        assert len(state["state"]) == 2  # weight and bias
        assert all(int(s["step"]) == (last_epoch + 1) * STEPS for s in state["state"].values())
    # The shared cosine schedule (sched=cosine, T_max = max_epochs) stepped by the task after
    # each training epoch: each optimizer's rate is where the schedule says.
    schedules = checkpoint["lr_schedulers"]
    assert len(schedules) == 2
    for state, schedule in zip((adam, adamw), schedules, strict=True):
        group = state["param_groups"][0]
        factor = (1 + math.cos(math.pi * schedule["last_epoch"] / EPOCHS)) / 2
        assert group["lr"] == pytest.approx(group["initial_lr"] * factor)
    assert schedules[0]["last_epoch"] >= 1


def test_one_network_is_registered_as_net(make_cfg) -> None:
    task = build_task(make_cfg())
    assert task.network_names == ("net",) and task.automatic_optimization
    assert all(key.startswith("net.") for key in task.state_dict())


def test_several_networks_share_one_optimizer_node(make_cfg) -> None:
    """``optim`` with a ``_target_`` (the default adamw) builds one optimizer per network."""
    cfg = make_cfg(*[o for o in GAN if "optim" not in o])
    task = build_task(cfg)
    assert task.network_names == ("generator", "discriminator")
    assert not task.automatic_optimization
    assert {o.optimizer.func for o in task.optimization.values()} == {torch.optim.AdamW}


def test_optimizers_must_name_the_networks(make_cfg) -> None:
    cfg = make_cfg(
        *[o for o in GAN if "optim=" not in o],
        "+optim={generator: {_target_: torch.optim.Adam, _partial_: true}}",
    )
    with pytest.raises(ValueError, match=r"optim names \['generator'\] but model has the netw"):
        build_task(cfg)


def test_undeclared_metric_names_the_config_key(make_cfg) -> None:
    with pytest.raises(ValueError, match=r"needs one TopKError in task.module.metrics"):
        build_task(make_cfg("~task.module.metrics"))

"""DDPM as a task (cvbench/tasks/diffusion.py), built from the real experiment config with a
tiny U-Net: the noise-prediction objective trains, samples are a function of (seed, sample
index) alone whatever the batch, labels condition them, the grid has a column per class, and
a real training run keeps an EMA of the weights that checkpoints hold (without the judge)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from cvbench.run.build import build_datamodule, build_task
from cvbench.tasks.diffusion import DiffusionTask

TINY = (
    "experiment=synthesis/ddpm_digits",
    "model.widths=[8,16]",
    "model.norm_groups=4",
    "task.module.eval_steps=4",
    "task.module.grid_size=20",
    "task.module.judge.width=4",
    "task.module.judge.feature_dim=8",
    "task.module.judge.train_epochs=1",
)


@pytest.fixture
def task(make_cfg) -> DiffusionTask:
    torch.manual_seed(0)
    built = build_task(make_cfg(*TINY))
    assert isinstance(built, DiffusionTask) and built.num_classes == 10
    return built.eval()


def test_training_reduces_the_denoising_loss(task: DiffusionTask) -> None:
    """Adam on one fixed batch (fixed noise and timesteps) at least halves the noise MSE."""
    images = torch.zeros(8, 3, 32, 32)
    for i in range(8):  # bright squares of different sizes and places
        images[i, :, 2 + i : 12 + 2 * i, 4 + i : 14 + i] = 1.0
    labels = torch.arange(8)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (8,), generator=generator)
    task.net.train()
    optimizer = torch.optim.Adam(task.net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = task.denoising_loss(images, labels, noise, timesteps).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_sample_depends_on_seed_and_index_only(task: DiffusionTask, sampler: str) -> None:
    """Sample j of ``generate`` is the same drawn among 3 or alone (``first=j``), again and
    again; another seed gives other images."""
    three = task.generate(3, 5, sampler=sampler, steps=4)
    assert three.shape == (3, 3, 32, 32) and three.min() >= 0 and three.max() <= 1
    alone = task.generate(1, 5, first=2, sampler=sampler, steps=4)
    assert torch.allclose(alone[0], three[2], atol=1e-3)  # float sums in another order
    assert torch.equal(task.generate(3, 5, sampler=sampler, steps=4), three)
    assert not torch.allclose(task.generate(3, 6, sampler=sampler, steps=4), three, atol=1e-3)


def test_labels_condition_samples_and_options_are_checked(task: DiffusionTask) -> None:
    threes, fours = task.generate(2, 0, label=3), task.generate(2, 0, label=4)
    assert not torch.allclose(threes, fours, atol=1e-4)
    with pytest.raises(ValueError, match="sampler"):
        task.generate(1, 0, sampler="euler")
    with pytest.raises(ValueError, match="steps=2000"):
        task.generate(1, 0, steps=2000)
    with pytest.raises(ValueError, match="guidance"):
        task.generate(1, 0, guidance=2.0)


def test_grid_has_a_column_per_class(task: DiffusionTask) -> None:
    images, nrow = task.grid_images()
    assert images.shape == (20, 3, 32, 32) and nrow == 10


@pytest.mark.slow
def test_training_keeps_an_ema_that_checkpoints_hold(make_cfg, tmp_path) -> None:
    """Three real optimizer steps: the EMA has averaged each, differs from the network and is
    what is sampled; a checkpoint holds network and EMA but not the judge."""
    cfg = make_cfg(*TINY, "data.batch_size=8")
    torch.manual_seed(0)
    task, datamodule = build_task(cfg), build_datamodule(cfg)
    trainer = pl.Trainer(
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(task, datamodule=datamodule)
    assert int(task.net_ema.n_averaged) == 3
    ema, net = task.net_ema.module.state_dict(), task.net.state_dict()
    assert any(not torch.equal(ema[k], net[k]) for k in net)
    assert task.sampling_network() is task.net_ema.module
    assert task.sampling_protocol() == "ddpm sampler, 4 of 1000 steps, EMA of the weights"
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("net_ema.") for k in state) and any(k.startswith("net.") for k in state)
    assert not any(k.startswith("judge.") for k in state)

"""The DDPM denoiser and its samplers (cvbench/models/ddpm.py): the model contract of kind
``denoiser`` (every model YAML whose ``contract.output`` is ``denoiser``), how cvbench uses
diffusers' schedules (the closed forms of Ho et al.), and what the samplers promise: DDIM with
eta 0 is a function of the initial noise, a sample does not depend on its batch, labels
condition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF, options
from omegaconf import OmegaConf

from cvbench.models.ddpm import DenoisingUNet, build_scheduler, sample
from cvbench.run.build import build_model

DENOISERS = [
    name
    for name in options("model")
    if (OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract") or {}).get("output")
    == "denoiser"
]


def test_ddpm_unet_is_a_denoiser() -> None:
    assert "synthesis/ddpm_unet" in DENOISERS


@pytest.mark.parametrize("model", DENOISERS)
def test_denoiser_contract(make_cfg, model: str) -> None:
    """Built as a run builds it (with its contract's data), it maps noisy images and timesteps
    (and labels, if class-conditional) to noise of their shape; one step trains every
    parameter (finite gradients)."""
    contract = OmegaConf.load(CONF / "model" / f"{model}.yaml").contract
    cfg = make_cfg(f"data={contract.data}", f"model={model}")
    torch.manual_seed(0)
    net = build_model(cfg)
    noisy = torch.randn(2, *contract.input)
    timesteps = torch.tensor([0, 999])
    labels = torch.tensor([0, 1]) if net.num_classes else None
    output = net(noisy, timesteps, labels)
    assert output.shape == noisy.shape and torch.isfinite(output).all()
    F.mse_loss(output, torch.randn_like(output)).backward()
    for name, param in net.named_parameters():
        if name.startswith("unet.class_embedding"):  # only the rows of the labels used
            continue
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def tiny(num_classes: int = 0) -> DenoisingUNet:
    torch.manual_seed(0)
    return DenoisingUNet(
        image_size=8, widths=(8, 16), norm_groups=4, num_classes=num_classes
    ).eval()


def test_linear_schedule_is_ho_et_al() -> None:
    """alpha-bar_t = prod_{s<=t} (1 - beta_s), betas linear from 1e-4 to 0.02 over T = 1000;
    x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps."""
    scheduler = build_scheduler("ddpm", num_timesteps=1000, beta_schedule="linear")
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    assert torch.allclose(scheduler.alphas_cumprod.double(), abar, rtol=1e-5)
    x0, eps = torch.rand(3, 3, 4, 4) * 2 - 1, torch.randn(3, 3, 4, 4)
    t = torch.tensor([0, 500, 999])
    a = abar[t].float().view(-1, 1, 1, 1)
    expected = a.sqrt() * x0 + (1 - a).sqrt() * eps
    assert torch.allclose(scheduler.add_noise(x0, eps, t), expected, atol=1e-5)
    cosine = build_scheduler("ddim", num_timesteps=1000, beta_schedule="cosine")
    assert cosine.alphas_cumprod[-1] < 1e-3 < cosine.alphas_cumprod[0] < 1  # a full schedule


def test_ddim_is_deterministic_and_batch_independent() -> None:
    """DDIM (eta 0): the same noise gives the same images; a sample is the same alone or in a
    batch; images are in [0, 1]."""
    net, scheduler = tiny(), build_scheduler("ddim", num_timesteps=100)
    noise = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    batch = sample(net, noise, scheduler, 10)
    assert batch.shape == noise.shape and batch.min() >= 0 and batch.max() <= 1
    assert torch.equal(sample(net, noise, scheduler, 10), batch)
    alone = sample(net, noise[1:2], scheduler, 10)
    assert torch.allclose(alone[0], batch[1], atol=1e-5)
    assert not torch.allclose(batch[0], batch[1], atol=1e-2)


def test_ddpm_noise_comes_from_each_samples_generator() -> None:
    """DDPM draws fresh noise per step from the sample's own generator: the same seeds give
    the same images, a sample does not depend on its batch, other seeds give others."""
    net, scheduler = tiny(), build_scheduler("ddpm", num_timesteps=50)
    noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))

    def generators(*seeds: int) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in seeds]

    first = sample(net, noise, scheduler, 50, generators=generators(10, 11))
    assert torch.equal(sample(net, noise, scheduler, 50, generators=generators(10, 11)), first)
    alone = sample(net, noise[1:], scheduler, 50, generators=generators(11))
    assert torch.allclose(alone[0], first[1], atol=1e-5)
    other = sample(net, noise, scheduler, 50, generators=generators(12, 13))
    assert not torch.allclose(other, first, atol=1e-3)


def test_labels_condition_the_output() -> None:
    net = tiny(num_classes=3)
    with torch.no_grad():  # a fresh embedding is random, so an untrained net already differs
        noisy, t = torch.randn(1, 3, 8, 8).expand(2, -1, -1, -1), torch.tensor([5, 5])
        out = net(noisy, t, torch.tensor([0, 2]))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        net(noisy, t, torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="labels"):
        net(noisy, t, None)

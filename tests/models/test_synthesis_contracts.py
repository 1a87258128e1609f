"""Contract test of the output kind ``gan`` (DCGAN: ``cvbench/conf/model/synthesis/*.yaml``
whose contract says ``output: gan``): both networks built from the real composed config as a
run builds them (:func:`cvbench.run.build.build_networks`); the generator maps noise (B, nz)
(and classes, when conditional) to images (B, 3, H, W) in [0, 1] of the data's size, the
discriminator those images to (B,) logits; one GAN step backpropagates a finite gradient to
every parameter of both."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, options
from omegaconf import OmegaConf
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from cvbench.run.build import build_networks

CONTRACTS = {
    name: OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract")
    for name in options("model")
}
GANS = [n for n, c in CONTRACTS.items() if c is not None and c.get("output") == "gan"]


def test_the_gan_models_are_found() -> None:
    assert "synthesis/dcgan" in GANS


def finite_grads(net: torch.nn.Module, name: str) -> None:
    for param, value in net.named_parameters():
        assert value.grad is not None, f"{name}: no gradient for {param}"
        assert torch.isfinite(value.grad).all(), f"{name}: non-finite gradient in {param}"


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("model", GANS)
def test_gan_contract(make_cfg, model: str, conditional: bool) -> None:
    contract = CONTRACTS[model]
    classes = ("model.generator.num_classes=10", "model.discriminator.num_classes=10")
    cfg = make_cfg(f"data={contract.data}", f"model={model}", *(classes if conditional else ()))
    nets = build_networks(cfg)
    assert set(nets) == {"generator", "discriminator"}
    generator, discriminator = nets["generator"], nets["discriminator"]
    labels = torch.tensor([3, 7]) if conditional else None
    images = generator(torch.randn(2, generator.nz), labels)
    assert images.shape == (2, *contract.input)
    assert images.min() >= 0 and images.max() <= 1
    logits = discriminator(images, labels)
    assert logits.shape == (2,)
    real = torch.rand(2, *contract.input)
    loss = bce(discriminator(real, labels), torch.ones(2)) + bce(logits, torch.zeros(2))
    loss.backward()
    finite_grads(generator, f"{model} generator")
    finite_grads(discriminator, f"{model} discriminator")

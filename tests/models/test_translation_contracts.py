"""Contract test of the output kind ``translator`` (pix2pix, CycleGAN: ``cvbench/conf/model/
translation/*.yaml``): every network the YAML maps is built from the real composed config as a
run builds it (:func:`cvbench.run.build.build_networks`); each ``generator*`` maps images
(B, 3, H, W) in [0, 1] to images of the same shape in [0, 1] (deterministic in eval mode), each
``discriminator*`` its ``in_channels`` (the image, or source and image concatenated) to patch
logits (B, 1, h, w); one step backpropagates a finite gradient to every parameter."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, options
from omegaconf import OmegaConf

from cvbench.run.build import build_networks

CONTRACTS = {
    name: OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract")
    for name in options("model")
}
TRANSLATORS = [n for n, c in CONTRACTS.items() if c is not None and c.get("output") == "translator"]


def test_the_translation_models_are_found() -> None:
    assert {"translation/pix2pix", "translation/cyclegan"} <= set(TRANSLATORS)


@pytest.mark.parametrize("model", TRANSLATORS)
def test_translator_contract(make_cfg, model: str) -> None:
    contract = CONTRACTS[model]
    cfg = make_cfg(f"data={contract.data}", f"model={model}")
    torch.manual_seed(0)
    nets = build_networks(cfg)
    generators = {n: net for n, net in nets.items() if n.startswith("generator")}
    discriminators = {n: net for n, net in nets.items() if n.startswith("discriminator")}
    assert generators and discriminators and len(generators) + len(discriminators) == len(nets)
    images = torch.rand(2, *contract.input)
    loss = torch.zeros(())
    for name, net in generators.items():
        net.train()
        out = net(images)
        assert out.shape == images.shape, name
        assert out.min() >= 0.0 and out.max() <= 1.0, name
        loss = loss + out.mean()
        net.eval()
        with torch.no_grad():
            assert torch.equal(net(images), net(images)), f"{name} is not deterministic in eval"
        net.train()
    for name, net in discriminators.items():
        repeats = net.in_channels // images.shape[1]
        assert repeats * images.shape[1] == net.in_channels, name
        logits = net(images.repeat(1, repeats, 1, 1))
        assert logits.shape[:2] == (2, 1) and min(logits.shape[2:]) >= 1, name
        loss = loss + logits.mean()
    loss.backward()
    for name, net in nets.items():
        for param_name, param in net.named_parameters():
            assert param.grad is not None, f"{name}: no gradient for {param_name}"
            assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient {param_name}"


def test_generators_refuse_sizes_they_cannot_take() -> None:
    from cvbench.models.cyclegan import ResnetGenerator
    from cvbench.models.pix2pix import PatchDiscriminator, UNetGenerator

    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_downs = 8"):
        UNetGenerator(num_downs=3, ngf=4)(torch.rand(1, 3, 12, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(ngf=4, n_blocks=1)(torch.rand(1, 3, 10, 16))
    with pytest.raises(ValueError, match="expected 6"):
        PatchDiscriminator(in_channels=6, ndf=4)(torch.rand(1, 3, 16, 16))

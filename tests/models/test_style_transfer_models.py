"""The style transfer networks: Johnson et al.'s transformation network (sizes, parameter counts
in closed form, instance norm), AdaIN's encoder-AdaIN-decoder (alpha, AdaIN against
cvbench.metrics.style.adain, the paper's decoder, a frozen encoder) and Gatys et al.'s optimised
image (initialisation, size check, checkpoint state); the loss_network and model configs."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import torch
from conftest import CONF
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

import cvbench.models.adain as adain_module
import cvbench.models.gatys as gatys_module
import cvbench.models.johnson as johnson_module
from cvbench.metrics.style import adain as metrics_adain
from cvbench.models.adain import AdaINNet
from cvbench.models.gatys import GatysImage
from cvbench.models.johnson import JohnsonNet
from cvbench.models.loss_network import LossNetwork
from cvbench.run.build import build_model

PAPER_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


@pytest.fixture(scope="module")
def encoder() -> LossNetwork:
    """The embedded random VGG-19 up to relu4_1, as model/style_transfer/adain.yaml builds it."""
    return LossNetwork(layers=PAPER_LAYERS, random_seed=0)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("module", [johnson_module, adain_module, gatys_module])
def test_doctests(module) -> None:
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("size", [(5, 5), (7, 13), (32, 32), (33, 30)])
def test_johnson_keeps_any_size(size: tuple[int, int]) -> None:
    net = JohnsonNet(width=0.125, num_residual=1)
    out = net(rand(2, 3, *size), rand(2, 3, 8, 8), alpha=0.3)  # style and alpha are ignored
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()
    assert JohnsonNet.takes_style is False


@pytest.mark.parametrize("shape", [(1, 3, 4, 9), (1, 1, 9, 9)])
def test_johnson_rejects_tiny_or_gray_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"RGB \(B, 3, H, W\) with H, W >= 5, got"):
        JohnsonNet(width=0.125)(torch.rand(*shape))


def johnson_parameters(c1: int, c2: int, c3: int, num_residual: int) -> int:
    """Weights + biases of every conv and the 2 C affine parameters of every instance norm."""

    def conv(cin: int, cout: int, k: int) -> int:
        return k * k * cin * cout + cout

    with_norm = conv(3, c1, 9) + conv(c1, c2, 3) + conv(c2, c3, 3) + conv(c3, c2, 3)
    with_norm += conv(c2, c1, 3) + 2 * conv(c3, c3, 3) * num_residual
    norms = 2 * (2 * c1 + 2 * c2 + c3 + 2 * c3 * num_residual)
    return with_norm + norms + conv(c1, 3, 9)


@pytest.mark.parametrize(
    ("width", "num_residual", "channels"),
    [(1.0, 5, (32, 64, 128)), (0.25, 5, (8, 16, 32)), (0.5, 2, (16, 32, 64)), (0.001, 1, (1,) * 3)],
)
def test_johnson_width_scales_every_layer(
    width: float, num_residual: int, channels: tuple[int, int, int]
) -> None:
    net = JohnsonNet(width=width, num_residual=num_residual)
    count = sum(p.numel() for p in net.parameters())
    assert count == johnson_parameters(*channels, num_residual)
    if width == 1.0:
        assert count == 1_679_235  # the reference TransformerNet's size


def test_johnson_has_affine_instance_norm_after_every_conv_but_the_last() -> None:
    net = JohnsonNet(width=0.25, num_residual=3)
    modules = list(net.modules())
    norms = [m for m in modules if isinstance(m, torch.nn.InstanceNorm2d)]
    convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 + 2 * 3 + 1 and len(norms) == len(convs) - 1
    assert all(norm.affine for norm in norms)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)
    assert isinstance(list(net.out.children())[-1], torch.nn.Conv2d)  # linear output
    assert isinstance(list(net.out.children())[0], torch.nn.ReflectionPad2d)


def test_the_models_adain_equals_the_metrics_adain() -> None:
    content = rand(3, 6, 5, 7, seed=1) * 4 - 1
    for style in (rand(3, 6, 4, 4, seed=2) * 2, rand(1, 6, 9, 3, seed=3)):  # one per image, one
        torch.testing.assert_close(
            adain_module.adain(content, style), metrics_adain(content, style), rtol=1e-5, atol=1e-6
        )


def test_adain_decoder_is_the_papers_mirror_of_vgg19(encoder: LossNetwork) -> None:
    net = AdaINNet(encoder)
    convs = [(m.in_channels, m.out_channels) for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128)] + [
        (128, 64),
        (64, 64),
        (64, 3),
    ]
    assert net.num_upsamplings == 3 and net.layer == "relu4_1" and AdaINNet.takes_style
    assert not any(
        isinstance(m, torch.nn.InstanceNorm2d | torch.nn.BatchNorm2d) for m in net.modules()
    )
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == sum(9 * i * o + o for i, o in convs)
    half = AdaINNet(encoder, decoder_width=0.5)
    assert [m.out_channels for m in half.decoder if isinstance(m, torch.nn.Conv2d)] == [
        128, 128, 128, 128, 64, 64, 32, 32, 3
    ]  # fmt: skip


@pytest.mark.parametrize("size", [(16, 16), (17, 30), (24, 40)])
def test_adain_output_has_the_contents_size(encoder: LossNetwork, size: tuple[int, int]) -> None:
    net = AdaINNet(encoder, decoder_width=0.125)
    out = net(rand(2, 3, *size), rand(1, 3, 20, 18), alpha=0.7)
    assert out.shape == (2, 3, *size) and torch.isfinite(out).all()


def test_adain_alpha_blends_the_features_before_decoding(encoder: LossNetwork) -> None:
    net = AdaINNet(encoder, decoder_width=0.125).eval()
    content, style = rand(2, 3, 16, 24, seed=1), rand(2, 3, 24, 16, seed=2)
    with torch.no_grad():
        f_content, f_style = encoder(content)["relu4_1"], encoder(style)["relu4_1"]
        full = net.decode(metrics_adain(f_content, f_style), (16, 24))
        none = net.decode(f_content, (16, 24))
        torch.testing.assert_close(net(content, style, alpha=1.0), full)
        torch.testing.assert_close(net(content, style, alpha=0.0), none)
        half = net.target(content, style, alpha=0.25)
        torch.testing.assert_close(
            half, 0.25 * metrics_adain(f_content, f_style) + 0.75 * f_content
        )
    assert not torch.allclose(full, none)


def test_adain_encoder_stays_frozen_and_in_eval_mode(encoder: LossNetwork) -> None:
    net = AdaINNet(encoder, decoder_width=0.125)
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    net.train()
    assert net.training and net.decoder.training
    assert not net.encoder.training and not any(m.training for m in net.encoder.modules())
    out = net(rand(2, 3, 16, 16), rand(2, 3, 16, 16))
    out.square().mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in net.encoder.parameters())
    assert all(p.grad is not None for p in net.decoder.parameters())
    torch.optim.SGD(net.parameters(), lr=1.0).step()
    assert all(torch.equal(before[k], v) for k, v in net.encoder.state_dict().items())


def test_adain_with_a_shallower_encoder_mirrors_it() -> None:
    net = AdaINNet(LossNetwork(layers=["relu1_1", "relu2_1"], random_seed=1))
    convs = [(m.in_channels, m.out_channels) for m in net.decoder if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(128, 64), (64, 64), (64, 3)] and net.num_upsamplings == 1
    assert net(rand(1, 3, 5, 7), rand(1, 3, 4, 4)).shape == (1, 3, 5, 7)


def test_adain_errors_name_the_problem(encoder: LossNetwork) -> None:
    net = AdaINNet(encoder, decoder_width=0.125)
    with pytest.raises(ValueError, match=r"content must be RGB .* H, W >= 16 .*relu4_1.*15, 32"):
        net(torch.rand(1, 3, 15, 32), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="style must be RGB"):
        net(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="needs a style image batch"):
        net(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="encoder must be a cvbench.models.loss_network"):
        AdaINNet(torch.nn.Identity())


def test_gatys_image_starts_from_the_first_content() -> None:
    model = GatysImage(height=6, width=5)
    assert not model.initialised and GatysImage.takes_style is False
    first, second = rand(2, 3, 6, 5, seed=1), rand(3, 3, 6, 5, seed=2)
    out = model(first, rand(2, 3, 9, 9), alpha=0.5)
    assert out.shape == (2, 3, 6, 5) and bool(model.initialised)
    torch.testing.assert_close(out, first[:1].expand(2, -1, -1, -1), rtol=0, atol=0)
    out = model(second)  # no second initialisation
    assert out.shape == (3, 3, 6, 5)
    torch.testing.assert_close(out[2], first[0], rtol=0, atol=0)
    out.sum().backward()
    torch.testing.assert_close(model.image.grad, torch.full((1, 3, 6, 5), 3.0))


def test_gatys_noise_is_seeded_uniform_and_leaves_the_global_rng() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    image = GatysImage(height=8, width=9, init="noise", seed=4).image.detach()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(image, GatysImage(height=8, width=9, init="noise", seed=4).image.detach())
    assert not torch.equal(image, GatysImage(height=8, width=9, init="noise", seed=5).image)
    assert image.min() >= 0 and image.max() <= 1 and image.std() > 0.2
    model = GatysImage(height=8, width=9, init="noise", seed=4)
    torch.testing.assert_close(model(rand(1, 3, 8, 9))[0:1].detach(), image)  # not the content


def test_gatys_size_check_names_both_sizes_and_the_keys() -> None:
    with pytest.raises(ValueError, match=r"content is \(1, 3, 8, 8\) .* \(B, 3, 6, 5\): set model"):
        GatysImage(height=6, width=5)(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="init one of"):
        GatysImage(height=6, width=5, init="zeros")


def test_gatys_state_survives_a_state_dict_round_trip(tmp_path: Path) -> None:
    model = GatysImage(height=4, width=4)
    model(rand(1, 3, 4, 4, seed=1))
    with torch.no_grad():
        model.image.add_(0.25)  # "optimised"
    torch.save(model.state_dict(), tmp_path / "state.pt")
    restored = GatysImage(height=4, width=4)
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert bool(restored.initialised)
    out = restored(rand(1, 3, 4, 4, seed=2))  # a new content does not overwrite it
    torch.testing.assert_close(out, model.image.detach(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("option", "name"), [("vgg_rand_s0", "vgg_rand_s0"), ("vgg19", None), ("vgg16", None)]
)
def test_loss_network_options_build_or_name_their_weights_file(
    make_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str, name: str | None
) -> None:
    """Each loss_network option, composed as AdaIN's encoder: the random one builds (named as
    the metrics will be), the weights ones stop at the missing torchvision file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = make_cfg("model=style_transfer/adain", f"loss_network@model.encoder={option}")
    assert "layers" not in OmegaConf.load(CONF / "loss_network" / f"{option}.yaml")
    if name is None:
        with pytest.raises(InstantiationException) as raised:  # the CLI prints its cause
            build_model(cfg)
        cause = raised.value.__cause__
        assert isinstance(cause, FileNotFoundError)
        assert f"torch_home/hub/checkpoints/{option}-" in str(cause) and "\n" not in str(cause)
        return
    cfg.model.decoder_width = 0.125
    net = build_model(cfg)
    assert isinstance(net, AdaINNet) and net.encoder.name == name
    assert net.encoder.layers == PAPER_LAYERS and net.layer == "relu4_1"


def test_gatys_config_takes_its_size_from_the_data(make_cfg) -> None:
    cfg = make_cfg("data=style/photos", "model=style_transfer/gatys", "data.crop_size=40")
    model = build_model(cfg)
    assert isinstance(model, GatysImage) and model.image.shape == (1, 3, 40, 40)
    assert model.init == "content" and not model.initialised

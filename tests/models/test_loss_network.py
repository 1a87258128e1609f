"""LossNetwork against torchvision's own VGG-19 (same random weights, saved in torchvision's file
format), its error for a missing weights file, and the seeded random network: the same weights in
every construction, other weights for another seed, the global RNG untouched."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.transforms.functional import normalize

import cvbench.models.loss_network as loss_network
from cvbench.models.loss_network import LossNetwork
from cvbench.models.perceptual import vgg_layer_names

RELU4_1 = 20  # torchvision's vgg19.features[20] is the ReLU after conv4_1


@pytest.fixture(scope="module")
def torchvision_vgg19(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """torchvision.models.vgg19(weights=None) and its whole state dict saved with torch.save."""
    torch.manual_seed(0)
    model = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_doctests() -> None:
    assert doctest.testmod(loss_network).failed == 0


def test_layer_names_match_torchvision_modules() -> None:
    features = torchvision.models.vgg19(weights=None).features
    names = vgg_layer_names("vgg19")
    assert len(names) == len(features)
    assert names.index("relu4_1") == RELU4_1
    kinds = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}
    for name, module in zip(names, features, strict=True):
        assert isinstance(module, kinds[name[:4]])


def test_relu4_1_equals_torchvision_features_21(torchvision_vgg19) -> None:
    model, path = torchvision_vgg19
    network = LossNetwork(layers=["relu2_1", "relu4_1"], weights_path=str(path))
    images = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.features[: RELU4_1 + 1](
            normalize(images, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        )
        got = network(images)
    assert list(got) == ["relu2_1", "relu4_1"]
    assert got["relu4_1"].shape == (2, 512, 4, 5)
    torch.testing.assert_close(got["relu4_1"], expected, rtol=1e-5, atol=1e-6)
    assert network.name == "vgg19"
    assert "vgg19-dcbb9e9d.pth" in network.protocol


def test_frozen_but_gradients_reach_the_image(torchvision_vgg19) -> None:
    _, path = torchvision_vgg19
    network = LossNetwork(layers=["relu1_1", "relu3_1"], weights_path=str(path)).train()
    assert not network.features.training
    assert not any(p.requires_grad for p in network.parameters())
    images = torch.rand(1, 3, 16, 16, requires_grad=True)
    network(images)["relu3_1"].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_missing_weights_file_is_one_line_naming_it(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "nowhere" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(FileNotFoundError) as error:
        LossNetwork(weights_path=str(missing))
    message = str(error.value)
    assert "\n" not in message
    assert str(missing) in message and "weights_path" in message
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError) as error:
        LossNetwork()  # neither weights_path nor random_seed: torchvision's cache file
    expected = str(tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    assert "\n" not in str(error.value) and expected in str(error.value)


def test_default_path_is_read_from_torch_home(torchvision_vgg19, tmp_path, monkeypatch) -> None:
    _, path = torchvision_vgg19
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg19-dcbb9e9d.pth").symlink_to(path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    network = LossNetwork(layers=["relu1_1"])
    assert network.weights_path == checkpoints / "vgg19-dcbb9e9d.pth"


def test_wrong_architecture_file_is_refused(torchvision_vgg19) -> None:
    _, path = torchvision_vgg19  # a vgg19 file, vgg16 asked: vgg16's conv4_1 is features.17,
    # which is a ReLU (no weight) in vgg19
    with pytest.raises(ValueError, match="features.17.weight"):
        LossNetwork(arch="vgg16", layers=["relu4_1"], weights_path=str(path))


def conv_weights(network: LossNetwork) -> list[torch.Tensor]:
    return [t.clone() for t in network.features.state_dict().values()]


def test_random_network_is_fixed_by_its_seed_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    first, second = LossNetwork(random_seed=0), LossNetwork(random_seed=0)
    other = LossNetwork(random_seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert first.name == "vgg_rand_s0" and other.name == "vgg_rand_s1"
    for a, b, c in zip(conv_weights(first), conv_weights(second), conv_weights(other), strict=True):
        assert torch.equal(a, b)
        assert a.abs().sum() == 0 or not torch.equal(a, c)  # biases are zero for every seed


def test_random_network_weights_have_he_variance_and_usable_activations() -> None:
    network = LossNetwork(random_seed=0)
    conv = network.features[vgg_layer_names("vgg19").index("conv4_1")]
    fan_in = conv.weight[0].numel()
    bound = (6.0 / fan_in) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert conv.weight.var().item() == pytest.approx(2.0 / fan_in, rel=0.02)
    with torch.no_grad():
        features = network(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    for name, value in features.items():  # neither vanishing nor exploding by relu4_2
        assert 1e-3 < value.square().mean().sqrt().item() < 1e3, name


def test_names_carry_architecture_scaling_and_pooling() -> None:
    assert LossNetwork(arch="vgg16", random_seed=3, layers=["relu1_1"]).name == "vgg16_rand_s3"
    caffe = LossNetwork(random_seed=0, layers=["relu1_1"], input_scaling="caffe")
    assert caffe.name == "vgg_rand_s0_caffe"
    assert LossNetwork(random_seed=0, pooling="avg").name == "vgg_rand_s0_avgpool"


def test_caffe_scaling_is_bgr_0_255_minus_the_mean_pixel() -> None:
    network = LossNetwork(random_seed=0, layers=["relu1_1"], input_scaling="caffe")
    images = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    mean = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    expected = images[:, [2, 1, 0]] * 255.0 - mean
    torch.testing.assert_close(network.scale_input(images), expected, rtol=1e-6, atol=1e-4)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        LossNetwork(weights_path="x.pth", random_seed=0)
    with pytest.raises(ValueError, match="relu9_1"):
        LossNetwork(random_seed=0, layers=["relu9_1"])
    with pytest.raises(ValueError, match="RGB"):
        LossNetwork(random_seed=0, layers=["relu1_1"])(torch.zeros(1, 1, 8, 8))


def test_random_network_weights_are_pinned() -> None:
    """vgg_rand_s0's first weights, recorded once: they come from the CPU generator's integer
    stream by exact arithmetic, so any machine gives these floats; if a torch release changed its
    generator, this fails and vgg_rand_s0's numbers would no longer be comparable."""
    weight = LossNetwork(random_seed=0, layers=["relu1_1"]).features[0].weight
    pinned = [0.4431702196598053, 0.1959344446659088, -0.03829412907361984]
    assert weight.flatten()[:3].tolist() == pinned
    assert weight.double().sum().item() == pytest.approx(-15.21936796803493, abs=1e-9)

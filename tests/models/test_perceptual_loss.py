"""PerceptualLoss against a reference computed here with torchvision's own VGG layers and the
same (random) weights, saved in torchvision's file format; its errors on missing or wrong
files; and the conf/loss YAMLs."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue
from torchvision.models.vgg import cfgs, make_layers
from torchvision.transforms.functional import normalize

from cvbench.models import perceptual
from cvbench.models.perceptual import PerceptualLoss, vgg_features, vgg_layer_names

RELU2_2, CONV3_1, RELU3_4 = 8, 10, 17  # indices in torchvision's vgg19.features


@pytest.fixture(scope="module")
def reference() -> torch.nn.Sequential:
    """torchvision's vgg19.features up to relu3_4 (18 modules), randomly initialised."""
    torch.manual_seed(0)
    return make_layers(cfgs["E"][:10]).eval()


@pytest.fixture(scope="module")
def weights_file(reference: torch.nn.Sequential, tmp_path_factory) -> Path:
    """A torchvision-format state dict: ``features.*`` entries plus an unused classifier one."""
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-features.pth"
    torch.save(state, path)
    return path


def reference_loss(
    reference: torch.nn.Sequential,
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: dict[int, float],
    pixel_weight: float,
) -> torch.Tensor:
    """pixel_weight * L1 + sum_l w_l * L1 of features, with torchvision's (in-place) layers."""

    def features(images: torch.Tensor) -> dict[int, torch.Tensor]:
        x = normalize(images, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        kept = {}
        for index, layer in enumerate(reference):
            x = layer(x)
            if index in weights:
                kept[index] = x.clone()  # the next in-place ReLU would overwrite a conv output
        return kept

    with torch.no_grad():
        fp, ft = features(pred), features(target)
    return pixel_weight * F.l1_loss(pred, target) + sum(
        w * F.l1_loss(fp[i], ft[i]) for i, w in weights.items()
    )


def test_layer_names_and_layout_match_torchvision() -> None:
    for arch, cfg in (("vgg16", "D"), ("vgg19", "E")):
        names = vgg_layer_names(arch)
        with torch.device("meta"):  # shapes only, no 20 M random weights
            ours, theirs = vgg_features(arch, len(names)), make_layers(cfgs[cfg])
        assert len(ours) == len(theirs) == len(names)
        for name, a, b in zip(names, ours, theirs, strict=True):
            assert type(a) is type(b), (arch, name)
            assert (
                name[:4]
                == {"Conv2d": "conv", "ReLU": "relu", "MaxPool2d": "pool"}[type(a).__name__]
            )
        shapes = {k: v.shape for k, v in theirs.state_dict().items()}
        assert {k: v.shape for k, v in ours.state_dict().items()} == shapes
    assert vgg_layer_names("vgg19")[RELU3_4] == "relu3_4"
    assert vgg_layer_names("vgg16")[22] == "relu4_3"  # Johnson et al.'s content layer is relu2_2
    assert doctest.testmod(perceptual).failed == 0


def test_loss_equals_the_reference(reference: torch.nn.Sequential, weights_file: Path) -> None:
    torch.manual_seed(1)
    target = torch.rand(2, 3, 20, 24)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    loss = PerceptualLoss(
        weights_path=str(weights_file),
        layers=["relu2_2", "conv3_1", "relu3_4"],
        layer_weights=[0.5, 2.0, 1.0],
        pixel_weight=0.3,
        perceptual_weight=0.7,
    )
    assert len(loss.features) == RELU3_4 + 1  # only what the deepest layer needs
    expected = reference_loss(
        reference, pred, target, {RELU2_2: 0.35, CONV3_1: 1.4, RELU3_4: 0.7}, 0.3
    )
    torch.testing.assert_close(loss(pred, target), expected, rtol=1e-5, atol=1e-7)
    # default layer weights: the mean over the layers; pixel_weight 0 drops the L1 term
    mean_loss = PerceptualLoss(
        weights_path=str(weights_file), layers=["relu2_2", "relu3_4"], pixel_weight=0.0
    )
    expected = reference_loss(reference, pred, target, {RELU2_2: 0.5, RELU3_4: 0.5}, 0.0)
    torch.testing.assert_close(mean_loss(pred, target), expected, rtol=1e-5, atol=1e-7)


def test_identical_images_and_pixel_only(weights_file: Path) -> None:
    images = torch.rand(1, 3, 16, 16)
    loss = PerceptualLoss(weights_path=str(weights_file), layers=["relu2_2", "relu3_4"])
    assert loss(images, images).item() == 0.0
    pixel_only = PerceptualLoss(
        weights_path=str(weights_file), layers=["relu2_2"], perceptual_weight=0.0
    )
    other = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(pixel_only(images, other), F.l1_loss(images, other))


def test_gradient_reaches_the_prediction_only(weights_file: Path) -> None:
    loss = PerceptualLoss(weights_path=str(weights_file), layers=["relu2_2", "relu3_4"])
    loss.train()
    assert not loss.features.training
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss(pred, target).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0
    assert target.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(FileNotFoundError, match="nowhere") as error:
        PerceptualLoss(weights_path=str(missing))
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in str(error.value)
    assert "never downloads" in str(error.value)


def test_wrong_files_are_named(
    reference: torch.nn.Sequential, weights_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="features.19.weight") as error:  # conv4_1 is absent
        PerceptualLoss(weights_path=str(weights_file), layers=["relu4_4"])
    assert str(weights_file) in str(error.value)

    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)  # a one-channel network
    gray = tmp_path / "gray.pth"
    torch.save(state, gray)
    with pytest.raises(ValueError, match="gray.pth.*has shape \\(64, 1, 3, 3\\)"):
        PerceptualLoss(weights_path=str(gray), layers=["relu1_1"])

    text = tmp_path / "vgg19.pth"
    text.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match="cannot read .*vgg19.pth"):
        PerceptualLoss(weights_path=str(text))


def test_bad_layers_and_inputs_are_named(weights_file: Path) -> None:
    with pytest.raises(ValueError, match="unknown \\['relu3_5'\\].*relu3_4"):
        PerceptualLoss(weights_path=str(weights_file), layers=["relu3_5"])
    with pytest.raises(ValueError, match="one weight per layer"):
        PerceptualLoss(weights_path=str(weights_file), layers=["relu2_2"], layer_weights=[1, 2])
    loss = PerceptualLoss(weights_path=str(weights_file), layers=["relu2_2"])
    with pytest.raises(ValueError, match="RGB"):
        loss(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_loss_configs(weights_file: Path) -> None:
    pred, target = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 1.0])
    assert instantiate(OmegaConf.load(CONF / "loss" / "l1.yaml"))(pred, target).item() == 1.0
    assert instantiate(OmegaConf.load(CONF / "loss" / "mse.yaml"))(pred, target).item() == (
        pytest.approx(5 / 3)
    )
    cfg = OmegaConf.load(CONF / "loss" / "perceptual.yaml")
    with pytest.raises(MissingMandatoryValue, match="weights_path"):
        instantiate(cfg)
    cfg.weights_path, cfg.layers = str(weights_file), ["relu2_2", "relu3_4"]
    loss = instantiate(cfg)
    assert isinstance(loss, PerceptualLoss)
    images = torch.rand(1, 3, 16, 16)
    assert loss(images, images).item() == 0.0

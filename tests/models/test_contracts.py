"""Contract tests from the config tree: every model YAML (``cvbench/conf/model/<task>/*.yaml``)
says in its ``contract:`` node the data config it is composed with, the (C, H, W) of its test
images and the kind of output it gives; the test of that kind composes it with the real config,
builds it as a run does (:func:`cvbench.run.build.build_model`, nothing downloaded), trains a
step (every parameter gets a finite gradient) and checks the output's shape and range.

A new model YAML is tested by adding its ``contract:``; a YAML without one fails the guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF, options
from omegaconf import DictConfig, OmegaConf
from torch import nn

from cvbench.run.build import build_model
from cvbench.tasks.segmentation_inference import predict_logits

CONTRACTS: dict[str, DictConfig | None] = {
    name: OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract")
    for name in options("model")
}
# Each output kind and the test below that checks it.
OUTPUTS = {
    "logits": "test_classifier_contract: (B, data.num_classes) logits",
    "detections": "test_detector_contract: torchvision detection dicts",
    "instances": "test_instance_segmenter_contract: detection dicts with (N, 1, H, W) masks",
    "masks": "test_segmenter_contract: (B, data.num_classes, H, W) logits",
    "image": "test_image_model_contract: (B, C, H, W) images of contract.output_shape",
    "localization": "test_localizer_contract: logits (B, K) and boxes (B, 4) in [0, 1]",
    "stylized": "test_stylizer_contract: (B, 3, H, W) images from content and style images",
    "gan": "test_gan_contract (tests/models/test_synthesis_contracts.py): generator (B, nz) "
    "-> (B, 3, H, W) in [0, 1], discriminator -> (B,) logits",
    "denoiser": "test_denoiser_contract (tests/models/test_ddpm.py): predicted noise "
    "(B, C, H, W) from noisy images, timesteps (and labels)",
    "ctc": "test_ctc_contract (tests/models/test_crnn.py): (B, T, charset classes) logits of "
    "a text crop, blank 0",
    "text_maps": "test_text_maps_contract (tests/models/test_dbnet.py): DBNet's probability, "
    "threshold and binary maps (B, 1, H, W)",
    "translator": "test_translator_contract (tests/models/test_translation_contracts.py): "
    "generator* (B, 3, H, W) -> same shape in [0, 1], discriminator* patch logits (B, 1, h, w)",
}


def models_with(output: str) -> list:
    """The models whose contract gives this output kind; ``slow: true`` marks a test slow."""
    return [
        pytest.param(name, marks=[pytest.mark.slow] if contract.get("slow") else [])
        for name, contract in CONTRACTS.items()
        if contract is not None and contract.get("output") == output
    ]


def test_every_model_declares_a_tested_contract() -> None:
    assert "classification/small_cnn" in CONTRACTS and len(CONTRACTS) >= 40
    missing = [name for name, contract in CONTRACTS.items() if contract is None]
    assert not missing, (
        f"model YAMLs without a contract: node: {missing}; add one saying the data config "
        f"the model is composed with, its test input (C, H, W) and its output kind, one of "
        f"{sorted(OUTPUTS)} (see any YAML of cvbench/conf/model/)"
    )
    for name, contract in CONTRACTS.items():
        where = f"cvbench/conf/model/{name}.yaml, contract"
        assert contract.get("output") in OUTPUTS, (
            f"{where}.output={contract.get('output')}: no contract test checks that kind; use "
            f"one of {sorted(OUTPUTS)} or add a test to {Path(__file__).name}"
        )
        shape = contract.get("input")
        assert shape is not None and len(shape) == 3 and all(s > 0 for s in shape), (
            f"{where}.input={shape}: give the test images' [C, H, W]"
        )
        assert (CONF / "data" / f"{contract.get('data')}.yaml").is_file(), (
            f"{where}.data={contract.get('data')}: not an option of data/"
        )
    assert {c.output for c in CONTRACTS.values()} == set(OUTPUTS), "a kind without models"


def compose(make_cfg, name: str) -> tuple[DictConfig, DictConfig]:
    """The run config of the model with its contract's data, and the contract."""
    contract = CONTRACTS[name]
    return make_cfg(f"data={contract.data}", f"model={name}"), contract


def assert_finite_grads(net: nn.Module, name: str, *, every: bool = True) -> None:
    """Every trainable parameter (or, ``every=False``, at least one and all that got one) has a
    finite gradient."""
    grads = {n: p.grad for n, p in net.named_parameters() if p.requires_grad}
    if not every:
        grads = {n: g for n, g in grads.items() if g is not None}
        assert grads, f"{name}: no parameter got a gradient"
    for param_name, grad in grads.items():
        assert grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(grad).all(), f"{name}: non-finite gradient in {param_name}"


@pytest.mark.parametrize("model", models_with("logits"))
def test_classifier_contract(make_cfg, model: str) -> None:
    """Builds (no weights fetched) and trains one step on a tiny batch."""
    cfg, contract = compose(make_cfg, model)
    assert contract.input[0] == cfg.data.num_channels, "the data must match the input"
    net = build_model(cfg)
    logits = net(torch.randn(2, *contract.input))
    assert logits.shape == (2, cfg.data.num_classes)
    logits.logsumexp(dim=1).sum().backward()
    assert_finite_grads(net, model)


def detector_batch(shape: list[int], *, masks: bool) -> tuple[list, list]:
    """Two images, of the contract's size and a smaller square one, one box in the first and
    none in the second (with instance masks if asked)."""
    channels, height, width = shape
    images = [torch.rand(channels, height, width), torch.rand(channels, height - 16, height - 16)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([4])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    if masks:
        targets[0]["masks"] = torch.zeros(1, height, width, dtype=torch.uint8)
        targets[0]["masks"][0, 12:70, 10:60] = 1
        targets[1]["masks"] = torch.zeros(0, *images[1].shape[1:], dtype=torch.uint8)
    return images, targets


def train_and_detect(make_cfg, model: str, *, masks: bool) -> tuple[list, list, DictConfig]:
    """One training step (losses, finite gradients), then the detections in eval mode."""
    cfg, contract = compose(make_cfg, model)
    if "min_size" in cfg.model.detector:  # SSDlite resizes to its own fixed 320 x 320
        cfg.model.detector.min_size = min(contract.input[1:])  # no upscaling to 800 px
        cfg.model.detector.max_size = max(contract.input[1:])
    net = build_model(cfg)
    images, targets = detector_batch(contract.input, masks=masks)
    net.train()
    losses = net(images, targets)
    if masks:
        assert "loss_mask" in losses
    sum(losses.values()).backward()
    assert_finite_grads(net, model, every=False)
    net.eval()
    with torch.no_grad():
        return images, net(images), cfg


@pytest.mark.slow
@pytest.mark.parametrize("model", models_with("detections"))
def test_detector_contract(make_cfg, model: str) -> None:
    """Builds from scratch, trains a step on images of two sizes (one without boxes) and
    returns detections in the input's pixels."""
    images, detections, cfg = train_and_detect(make_cfg, model, masks=False)
    assert len(detections) == 2
    for det, image in zip(detections, images, strict=True):
        assert det["boxes"].shape[1] == 4 and len(det["boxes"]) <= 100
        assert (det["boxes"][:, 2] <= image.shape[2] + 1e-3).all()
        assert (det["boxes"][:, 3] <= image.shape[1] + 1e-3).all()
        assert ((det["labels"] >= 0) & (det["labels"] <= cfg.data.num_classes)).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", models_with("instances"))
def test_instance_segmenter_contract(make_cfg, model: str) -> None:
    """Builds from scratch, trains a step with instance masks and returns per detection a
    mask of its image's size."""
    images, detections, _ = train_and_detect(make_cfg, model, masks=True)
    for det, image in zip(detections, images, strict=True):
        assert det["masks"].shape == (len(det["boxes"]), 1, *image.shape[1:])
        assert ((det["masks"] >= 0) & (det["masks"] <= 1)).all()


@pytest.mark.parametrize("model", models_with("masks"))
def test_segmenter_contract(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Builds without downloading weights, trains one step (auxiliary heads included) and
    gives logits (B, K, H, W) at the input's size through predict_logits."""
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # torchvision would download here
    cfg, contract = compose(make_cfg, model)
    num_classes = cfg.data.num_classes
    torch.manual_seed(0)
    net = build_model(cfg)
    assert not torch_home.exists(), "building the model downloaded weights"

    images = torch.randn(2, *contract.input)
    masks = torch.randint(0, num_classes, (2, *contract.input[1:]))
    net.train()
    output = net(images)
    outputs = output.values() if isinstance(output, dict) else [output]
    loss = sum(F.cross_entropy(logits, masks) for logits in outputs)  # "aux" too, if any
    loss.backward()
    assert_finite_grads(net, model)

    net.eval()
    with torch.no_grad():
        logits = predict_logits(net, images, num_classes=num_classes, size_divisor=32)
    assert logits.shape == (2, num_classes, *contract.input[1:])
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("model", models_with("image"))
def test_image_model_contract(make_cfg, model: str) -> None:
    """Composes (``data.scale`` interpolated), builds, maps a tiny batch to the contract's
    output shape and, if it has parameters, trains: every parameter gets a finite gradient."""
    cfg, contract = compose(make_cfg, model)
    torch.manual_seed(0)
    net = build_model(cfg)
    images = torch.rand(2, *contract.input)
    if contract.get("mask_channel") is not None:
        images[:, contract.mask_channel] = (images[:, contract.mask_channel] > 0.7).float()
    output = net(images)
    assert output.shape == (2, *contract.output_shape)
    assert torch.isfinite(output).all()
    if not list(net.parameters()):  # a baseline: nothing to train
        return
    F.l1_loss(output, torch.rand_like(output)).backward()
    assert_finite_grads(net, model)


@pytest.mark.parametrize("model", models_with("localization"))
def test_localizer_contract(make_cfg, model: str) -> None:
    """Class logits and one box (cx, cy, w, h) in [0, 1] per image; both heads train."""
    cfg, contract = compose(make_cfg, model)
    net = build_model(cfg)
    out = net(torch.rand(2, *contract.input))
    assert out["logits"].shape == (2, cfg.data.num_classes)
    assert out["boxes"].shape == (2, 4) and ((out["boxes"] >= 0) & (out["boxes"] <= 1)).all()
    (out["logits"].logsumexp(dim=1).sum() + out["boxes"].sum()).backward()
    assert_finite_grads(net, model, every=False)


@pytest.mark.parametrize("model", models_with("stylized"))
def test_stylizer_contract(make_cfg, model: str) -> None:
    """Renders contents of ``contract.input`` in the style of images of ``contract.style_input``
    as (B, 3, H, W); one SGD step trains every trainable parameter (finite gradients), while
    frozen parts (AdaIN's encoder) get no gradient, keep their weights and stay in eval mode."""
    cfg, contract = compose(make_cfg, model)
    torch.manual_seed(0)
    net = build_model(cfg)
    assert isinstance(net.takes_style, bool), f"{model}: no takes_style class attribute"
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    content, style = torch.rand(2, *contract.input), torch.rand(2, *contract.style_input)
    net.train()
    output = net(content, style, alpha=1.0)
    assert output.shape == (2, 3, *contract.input[1:])
    assert torch.isfinite(output).all()
    F.l1_loss(output, torch.rand_like(output)).backward()
    assert_finite_grads(net, model)
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    for param_name, param in net.named_parameters():
        if param_name in frozen:
            assert param.grad is None, f"{model}: frozen {param_name} got a gradient"
            assert torch.equal(param, frozen[param_name]), f"{model}: {param_name} changed"
    for module_name, module in net.named_modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            assert not module.training, f"{model}: frozen {module_name} is in training mode"

"""Contract test from the config tree: every conf/model/segmentation/*.yaml composes with the
real config, builds without downloading weights, trains one step (auxiliary heads included)
and gives logits (B, K, H, W) at the input's size through predict_logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import CONF
from hydra.utils import instantiate

from cvbench.tasks.segmentation_inference import predict_logits

HEAVY = ("resnet50",)  # tens of millions of parameters: seconds to build and run on CPU
SEGMENTERS = [
    pytest.param(name, marks=[pytest.mark.slow] if any(h in name for h in HEAVY) else [])
    for name in sorted(p.stem for p in (CONF / "model" / "segmentation").glob("*.yaml"))
]


def test_segmentation_configs_are_found() -> None:
    assert len(SEGMENTERS) >= 8


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmentation_model_trains_and_predicts(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))  # torchvision would download here
    cfg = make_cfg("data=detection/shapes", f"model=segmentation/{name}")
    num_classes = cfg.data.num_classes
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    assert not torch_home.exists(), "building the model downloaded weights"

    images, masks = torch.randn(2, 3, 64, 64), torch.randint(0, num_classes, (2, 64, 64))
    net.train()
    output = net(images)
    outputs = output.values() if isinstance(output, dict) else [output]
    loss = sum(F.cross_entropy(logits, masks) for logits in outputs)  # "aux" too, if any
    loss.backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient in {param_name}"

    net.eval()
    with torch.no_grad():
        logits = predict_logits(net, images, num_classes=num_classes, size_divisor=32)
    assert logits.shape == (2, num_classes, 64, 64)
    assert torch.isfinite(logits).all()

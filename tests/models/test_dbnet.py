"""DBNet: the contract of every ``text_maps`` model YAML (built as a run builds it, nothing
downloaded, the three maps at the input's size, one step trains every parameter), the
approximate binarization of the paper's Eq. 2, and any input size."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import CONF, options
from omegaconf import OmegaConf

from cvbench.models.dbnet import DBNet
from cvbench.run.build import build_model

CONTRACTS = {
    name: OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract") or {}
    for name in options("model")
}
TEXT_MAPS = [name for name, contract in CONTRACTS.items() if contract.get("output") == "text_maps"]


def test_the_dbnet_yamls_are_text_map_models() -> None:
    assert {"ocr/dbnet_resnet18", "ocr/dbnet_resnet18_slim"} <= set(TEXT_MAPS)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(name, marks=[pytest.mark.slow] if CONTRACTS[name].get("slow") else [])
        for name in TEXT_MAPS
    ],
)
def test_text_maps_contract(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Built from scratch as a run builds it (no download), a training forward gives prob,
    thresh and binary maps (B, 1, H, W) in [0, 1] with binary = sigmoid(k (prob - thresh)),
    one backward gives every parameter a finite gradient, and evaluation gives prob only."""
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    contract = OmegaConf.load(CONF / "model" / f"{model}.yaml").contract
    cfg = make_cfg(f"task={contract.task}", f"data={contract.data}", f"model={model}")
    torch.manual_seed(0)
    net = build_model(cfg)
    assert not torch_home.exists() and not (tmp_path / "hf_home").exists()
    images = torch.rand(2, *contract.input)
    shape = (2, 1, *contract.input[1:])

    net.train()
    out = net(images)
    assert set(out) == {"prob", "thresh", "binary"}
    for name, value in out.items():
        assert value.shape == shape, name
        assert torch.isfinite(value).all() and ((value >= 0) & (value <= 1)).all(), name
    expected = torch.sigmoid(net.k * (out["prob"] - out["thresh"]))
    torch.testing.assert_close(out["binary"], expected)
    target = (torch.rand(shape) > 0.5).float()
    loss = sum(F.binary_cross_entropy(v, target) for v in out.values())
    loss.backward()
    for name, param in net.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name

    net.eval()
    with torch.no_grad():
        prob = net(images)
    assert set(prob) == {"prob"} and prob["prob"].shape == shape


def tiny_net() -> DBNet:
    backbone = timm.create_model(
        "resnet18",
        pretrained=False,
        features_only=True,
        out_indices=(1, 2, 3, 4),
        channels=(8, 8, 8, 8),
        stem_width=8,
    )
    return DBNet(backbone=backbone, neck_channels=16)


def test_maps_come_back_at_any_input_size() -> None:
    torch.manual_seed(0)
    net = tiny_net().eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 70, 90))["prob"].shape == (1, 1, 70, 90)
        assert net(torch.rand(1, 3, 64, 96))["prob"].shape == (1, 1, 64, 96)


def test_a_backbone_without_four_levels_is_refused() -> None:
    backbone = timm.create_model(
        "resnet18", pretrained=False, features_only=True, out_indices=(2, 3, 4)
    )
    with pytest.raises(ValueError, match="4 feature levels"):
        DBNet(backbone=backbone)
    with pytest.raises(ValueError, match="neck_channels=30"):
        DBNet(backbone=tiny_net().backbone, neck_channels=30)

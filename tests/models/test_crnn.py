"""CRNN (cvbench/models/crnn.py): shapes, time steps, both heads, and the contract test of every
model YAML whose output is ``ctc``."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, options
from omegaconf import OmegaConf

from cvbench.models.crnn import CRNN
from cvbench.run.build import build_model

CTC_MODELS = [
    name
    for name in options("model")
    if (OmegaConf.load(CONF / "model" / f"{name}.yaml").get("contract") or {}).get("output")
    == "ctc"
]


def test_both_heads_have_a_yaml() -> None:
    assert {"ocr/crnn", "ocr/crnn_conv"} <= set(CTC_MODELS)


@pytest.mark.parametrize("model", CTC_MODELS)
def test_ctc_contract(make_cfg, model: str) -> None:
    """Built as a run builds it (with its contract's data), images (B, C, 32, W) give logits
    (B, W / 4, data.charset.num_classes); one CTC step trains every parameter (finite
    gradients), on images of the contract's width and on narrower ones."""
    contract = OmegaConf.load(CONF / "model" / f"{model}.yaml").contract
    cfg = make_cfg(f"data={contract.data}", f"model={model}")
    assert contract.input[0] == cfg.data.channels, "the data must match the input"
    torch.manual_seed(0)
    net = build_model(cfg)
    num_classes = cfg.data.charset.num_classes
    for width in (contract.input[2], 48):
        images = torch.rand(2, contract.input[0], contract.input[1], width)
        logits = net(images)
        steps = width // 4
        assert logits.shape == (2, steps, num_classes) and torch.isfinite(logits).all()
        targets = torch.tensor([[1, 2, 3], [4, 4, 0]])
        loss = torch.nn.functional.ctc_loss(
            logits.log_softmax(-1).transpose(0, 1),
            targets,
            torch.tensor([steps, steps - 2]),
            torch.tensor([3, 2]),
        )
        net.zero_grad()
        loss.backward()
        for name, param in net.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("head", ["bilstm", "conv"])
@pytest.mark.parametrize("channels", [1, 3])
def test_crnn_collapses_height_and_quarters_width(head: str, channels: int) -> None:
    net = CRNN(in_channels=channels, num_classes=11, width=4, head=head, hidden=8).eval()
    for width in (4, 37, 100):
        assert net(torch.rand(3, channels, 32, width)).shape == (3, width // 4, 11)


def test_each_time_step_sees_its_own_columns_with_the_conv_head() -> None:
    """Right padding changes no output of the first steps beyond the receptive field of the
    padding; a wider image gives more steps with the same leading columns' scores unchanged
    far from the edge (the CNN and head are local)."""
    torch.manual_seed(0)
    net = CRNN(num_classes=5, width=4, head="conv", hidden=8, head_layers=1).eval()
    image = torch.rand(1, 1, 32, 64)
    padded = torch.cat([image, torch.zeros(1, 1, 32, 64)], dim=3)
    with torch.no_grad():
        a, b = net(image), net(padded)
    assert b.shape[1] == 2 * a.shape[1]
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-5)  # far from column 64
    assert not torch.allclose(a[:, -1], b[:, a.shape[1] - 1])  # the edge sees the padding


def test_output_lengths() -> None:
    lengths = CRNN.output_lengths(torch.tensor([128, 127, 5, 4, 1, 300]), 32)
    assert lengths.tolist() == [32, 32, 2, 1, 1, 32]


def test_bad_arguments_name_the_key() -> None:
    with pytest.raises(ValueError, match="model.head"):
        CRNN(num_classes=5, head="gru")
    with pytest.raises(ValueError, match="32 pixels high"):
        CRNN(num_classes=5, width=4)(torch.rand(1, 1, 28, 40))

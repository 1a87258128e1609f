"""``TFInception``: torch-fidelity's network with weights read as data from a file in the
reference format (an Inception of random weights, none can be downloaded), the same features as
torch-fidelity's own extractor, images quantized as a PNG of them holds them; a file holding
code refused without running it; a missing file named in one line."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes_synthesis_metrics import WEIGHTS_NAME, random_inception_file
from PIL import Image
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torchvision.utils import save_image

from cvbench.models.inception import TFInception, default_weights_path
from cvbench.models.judge import Judge, to_uint8


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_inception_file(tmp_path_factory)


@pytest.mark.slow
def test_features_equal_torch_fidelity_and_png_round_trip(weights: Path, tmp_path: Path) -> None:
    """2 images: the judge's features and logits equal those of torch-fidelity's extractor
    loading the same file itself (our own test file, so its unsafe load is harmless here) on
    the images rounded as their PNG files hold them."""
    judge = TFInception(str(weights))
    assert isinstance(judge, Judge)
    assert (judge.name, judge.feature_dim, judge.num_logits) == ("inception_v3_tf", 2048, 1008)
    assert not any(p.requires_grad for p in judge.parameters())
    assert not judge.train().training and not judge.net.training  # never leaves eval mode
    assert judge.protocol.startswith("inception_v3_tf pool3 (2048) / logits_unbiased (1008)")
    assert judge.protocol.endswith(f"weights {WEIGHTS_NAME} sha256:{_sha(weights)}")

    images = torch.rand(2, 3, 20, 16, generator=torch.Generator().manual_seed(0))
    reference = FeatureExtractorInceptionV3("ref", ["2048", "logits_unbiased"], str(weights))
    ref_features, ref_logits = reference(to_uint8(images))
    features, logits = judge(images)
    assert features.dtype == logits.dtype == torch.float32
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.equal(features, ref_features) and torch.equal(logits, ref_logits)
    assert features.std(0).mean() > 1e-3  # the two images give different features

    for i in range(2):  # the PNG files hold the very bytes the judge scored
        save_image(images[i], tmp_path / f"{i}.png")
    read = np.stack([np.asarray(Image.open(tmp_path / f"{i}.png")) for i in range(2)])
    assert torch.equal(torch.from_numpy(read).permute(0, 3, 1, 2), to_uint8(images))


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class _Payload:
    """Unpickling this object would create the marker file (by calling ``os.mkdir``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.mkdir, (str(self.marker),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_file_holding_code_is_refused_without_running_it(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / WEIGHTS_NAME
    state = {"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "evil": _Payload(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path)
    with pytest.raises(ValueError) as err:
        TFInception(str(path))
    message = str(err.value)
    assert not marker.exists()
    assert "\n" not in message
    assert message.startswith(f"{path}: not a plain state dict of tensors (")
    assert message.endswith("); torch.load(weights_only=True) refused it, so nothing in it ran")
    if writer == "torch.save":  # a raw pickle is refused earlier, at its protocol-4 framing
        assert "(it calls posix.mkdir)" in message
    # the payload is real: unpickling it unsafely does run the code
    pickle.loads(pickle.dumps(state))
    assert marker.exists()


def test_a_missing_file_is_one_line_naming_it_where_it_goes_and_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / WEIGHTS_NAME
    with pytest.raises(FileNotFoundError) as err:
        TFInception(str(missing))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{missing}: no such file; put the TF-")
    assert "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" in message
    # TORCH_HOME, not torch.hub.set_dir: set_dir pins the folder for every later test
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / WEIGHTS_NAME
    assert default_weights_path() == expected
    with pytest.raises(FileNotFoundError, match=f"^{expected}: no such file;"):
        TFInception()


def test_a_state_dict_of_another_network_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError) as err:
        TFInception(str(path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{path}: not the weights of torch-fidelity's FeatureExtractorInceptionV3"
    )

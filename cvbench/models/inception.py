"""The standard FID judge: the TF-Inception (Szegedy et al. 2016, the 2015-12-05 TensorFlow
graph of Heusel et al.'s FID code) as torch-fidelity ports it, ``FeatureExtractorInceptionV3``:
pool3 features (2048) for FID, KID and precision/recall, ``logits_unbiased`` (1008) for the
Inception Score, after TF1's bilinear resize to 299 x 299 of uint8 images.

The weights are torch-fidelity's file ``weights-inception-2015-12-05-6726825d.pth``, read from a
local file (the one torch-fidelity and torchmetrics download into ``torch.hub``'s checkpoints
folder); cvbench never downloads it. The file is read as data only (``torch.load`` with
``weights_only=True``): torch-fidelity's own loader unpickles it with ``weights_only=False``,
which would run any code a crafted file holds, so it is never given the user's file.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    FeatureExtractorInceptionV3,
)

from cvbench.models.judge import to_uint8

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FEATURES = ("2048", "logits_unbiased")  # pool3 and the logits without the bias (IS)


def default_weights_path() -> Path:
    """Where torch-fidelity and torchmetrics keep the weights:
    ``<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def read_weights(path: Path) -> tuple[dict[str, Tensor], str]:
    """The state dict of a weights file, read as data (never code), and its sha256.

    Raises:
        FileNotFoundError: no such file; one line naming it, where it goes and its URL.
        ValueError: the file holds anything but tensors (pickled code is refused unread), or
            is no torch file; one line naming it.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; put the TF-Inception weights of FID/KID/IS there "
            f"({WEIGHTS_FILE}, which torch-fidelity downloads from {URL_INCEPTION_V3}; cvbench "
            "never downloads it) or name the file with task.module.judge.weights_path=FILE "
            f"(cvbench score: features=FILE); the default is {default_weights_path()}"
        )
    data = path.read_bytes()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as err:
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        reason = f"it calls {found.group(1)}" if found else type(err).__name__
        raise ValueError(
            f"{path}: not a plain state dict of tensors ({reason}); torch.load(weights_only="
            "True) refused it, so nothing in it ran"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path}: expected a state dict (names to tensors), got {type(state)}")
    return state, hashlib.sha256(data).hexdigest()


class TFInception(nn.Module):
    """torch-fidelity's TF-Inception as a judge (:class:`cvbench.models.judge.Judge`): frozen,
    always in eval mode (``train()`` keeps it there: batch norm in train mode is the classic
    doubled-FID bug).

    Images in [0, 1] are quantized to uint8 as a PNG of them holds them
    (:func:`~cvbench.models.judge.to_uint8`), so generated images and the same images saved and
    read back give the same features.

    Args:
        weights_path: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``; None:
            :func:`default_weights_path`.
        name: the judge's name, the same as every judge config has one (the metric keys of
            this network are the plain ``fid``, ``kid_mean``, ...); only ``inception_v3_tf``.

    Raises:
        FileNotFoundError: the file is missing (one line: the file, where it goes, its URL).
        ValueError: the file is not a plain state dict of this network.
    """

    name = "inception_v3_tf"
    feature_dim = 2048
    num_logits = 1008

    def __init__(
        self, weights_path: str | None = None, name: Literal["inception_v3_tf"] = "inception_v3_tf"
    ) -> None:
        super().__init__()
        if name != self.name:
            raise ValueError(f"TFInception: name={name!r}; the TF-Inception is {self.name!r}")
        path = Path(weights_path).expanduser() if weights_path else default_weights_path()
        state, sha256 = read_weights(path)
        # torch-fidelity's constructor has one way in for weights: torch.load(path_or_buffer,
        # weights_only=False). It gets a buffer that cvbench wrote here from tensors already
        # read as data above, so that unpickling can only rebuild tensors; the network stays
        # torch-fidelity's own class, with its own forward (the numbers equal torch-fidelity's).
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        del state
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", list(FEATURES), buffer)
        except RuntimeError as err:  # load_state_dict: missing, unexpected or misshapen keys
            reason = " ".join(str(err).split())[:200]
            raise ValueError(
                f"{path}: not the weights of torch-fidelity's FeatureExtractorInceptionV3 "
                f"({reason})"
            ) from None
        self.net.requires_grad_(False)
        self.protocol = (
            "inception_v3_tf pool3 (2048) / logits_unbiased (1008), tf1-bilinear resize to "
            f"299, uint8 input, weights {path.name} sha256:{sha256[:12]}"
        )
        self.train(False)

    def train(self, mode: bool = True) -> TFInception:
        """Stays in eval mode whatever ``mode`` (a judge is never trained)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """pool3 features and unbiased logits.

        Args:
            images: (B, 3, H, W) float in [0, 1], any size (resized to 299 inside).

        Returns:
            features (B, 2048) float32 and logits (B, 1008) float32.
        """
        return self.forward_uint8(to_uint8(images))

    @torch.no_grad()
    def forward_uint8(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The same from (B, 3, H, W) uint8 images (as read from files)."""
        features, logits = self.net(images)
        return features, logits

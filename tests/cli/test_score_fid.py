"""``cvbench score task=fid``: two folders of PNG files written here, an Inception of random
weights in the reference file format (none can be downloaded); the command's FID, KID, IS and
precision/recall equal torch-fidelity's ``calculate_metrics`` on the same folders and file, and
torchmetrics on the same network; one-line errors for missing and empty folders and a missing
weights file.

Inception at 299 px costs about 0.3 s per image on a CPU: 6 images of 16 x 16 per folder, and
one torch-fidelity run shared by the tests of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity
from fakes_synthesis_metrics import random_inception_file, write_images
from PIL import Image
from torch import nn
from torchmetrics.image import FrechetInceptionDistance, InceptionScore, KernelInceptionDistance

from cvbench.cli.score import main
from cvbench.metrics.fidelity import inception_score, kernel_distance
from cvbench.models.inception import TFInception

NUM = 6  # images per folder
KID_SUBSET = 4  # < NUM: KID's random subsets are drawn
ISC_SPLITS = 2


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_inception_file(tmp_path_factory)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """real/ and fake/ (brighter), 6 PNG files each (one gray, one RGBA); a text file and a
    sub-folder that are not read."""
    root = tmp_path_factory.mktemp("fid")
    write_images(root / "real", NUM, seed=0)
    write_images(root / "fake", NUM, seed=1, shift=60)
    (root / "real" / "notes.txt").write_text("not an image")
    write_images(root / "real" / "sub", 2, seed=2)
    return root / "real", root / "fake"


@pytest.fixture(scope="module")
def reference(folders: tuple[Path, Path], weights: Path) -> dict[str, float]:
    """torch-fidelity on the folders (input1 the generated one, as its docs say), reading our
    own test file with its unsafe loader (harmless here: we wrote it). Precision/recall on the
    Inception's pool3 features, as cvbench computes them on its judge's (torch-fidelity's own
    default for them is VGG16: another network, other numbers)."""
    real, fake = folders
    return torch_fidelity.calculate_metrics(
        input1=str(fake),
        input2=str(real),
        cuda=torch.cuda.is_available(),  # where the command runs its network
        fid=True,
        kid=True,
        isc=True,
        prc=True,
        feature_extractor="inception-v3-compat",
        feature_layer_prc="2048",
        feature_extractor_weights_path=str(weights),
        kid_subset_size=KID_SUBSET,
        isc_splits=ISC_SPLITS,
        save_cpu_ram=True,  # no DataLoader worker processes
        verbose=False,
        cache=False,
    )


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main(["task=fid", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_the_command_equals_torch_fidelity(capsys, folders, weights, reference, tmp_path) -> None:
    real, fake = folders
    out = tmp_path / "fid.json"
    settings = [f"kid_subset_size={KID_SUBSET}", f"isc_splits={ISC_SPLITS}", f"out={out}"]
    code, stdout, stderr = run_main(
        capsys, f"real={real}", f"fake={fake}", f"features={weights}", *settings
    )
    assert code == 0, stderr
    got = json.loads(stdout)
    pairs = {
        "fid": "frechet_inception_distance",
        "kid_mean": "kernel_inception_distance_mean",
        "kid_std": "kernel_inception_distance_std",
        "is_mean": "inception_score_mean",
        "is_std": "inception_score_std",
        "precision": "precision",
        "recall": "recall",
    }
    for ours, theirs in pairs.items():
        assert got[ours] == pytest.approx(reference[theirs], rel=1e-6), ours
    assert got["fid"] > 1 and got["kid_std"] > 0 and got["is_mean"] > 1  # not degenerate
    assert (got["num_real"], got["num_fake"]) == (NUM, NUM)
    assert "weights-inception-2015-12-05-6726825d.pth sha256:" in got["protocol"]
    assert "KID subset size used 4, IS splits used 2" in got["protocol"]
    assert out.read_text() == stdout


def _uint8_images(folder: Path) -> torch.Tensor:
    """The folder's PNG files as torch-fidelity reads them: (N, 3, H, W) uint8 RGB."""
    files = sorted(folder.glob("*.png"))
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


class _Output(nn.Module):
    """The judge as a torchmetrics ``feature=`` network: uint8 images -> one of its outputs."""

    def __init__(self, judge: TFInception, which: int) -> None:
        super().__init__()
        self.judge, self.which = judge, which

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.judge.forward_uint8(images)[self.which]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features")
@pytest.mark.filterwarnings("ignore:std\\(\\)")
def test_torchmetrics_on_the_same_network(folders, weights) -> None:
    """3 images per folder (Inception costs ~0.3 s per image, FID at D = 2048 seconds):

    - torchmetrics 1.9's FID takes the weights path: its network, loading the file itself with
      antialias=False (torch-fidelity's TF1 resize; its default, antialiased, is another
      resize), gives the judge's features; torchmetrics' FID formula against cvbench's is
      checked on small features in tests/metrics/test_generative.py;
    - its KID and IS take no weights path: their ``feature=`` network is the judge; cvbench's
      KID (subsets of the whole sets) and IS (one split), where torchmetrics' torch.randperm
      subsets and shuffle do not matter, on the features torchmetrics computed with it."""
    real, fake = (_uint8_images(folder)[:3] for folder in folders)
    judge = TFInception(str(weights))
    kid = KernelInceptionDistance(feature=_Output(judge, 0), subsets=2, subset_size=3)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    kid_mean, _ = kid.compute()
    real_features, fake_features = torch.cat(kid.real_features), torch.cat(kid.fake_features)
    ours, _ = kernel_distance(real_features, fake_features, subsets=2, subset_size=3)
    assert ours == pytest.approx(float(kid_mean), rel=1e-5)
    assert ours != pytest.approx(0.0, abs=1e-3)

    isc = InceptionScore(feature=_Output(judge, 1), splits=1)
    isc.update(fake)
    is_mean, _ = isc.compute()
    ours, _ = inception_score(torch.cat(isc.features), splits=1)
    assert ours == pytest.approx(float(is_mean), rel=1e-5) and ours > 1.01

    fid = FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=str(weights), antialias=False
    )
    theirs = fid.inception(torch.cat([real, fake]))
    assert torch.allclose(theirs, torch.cat([real_features, fake_features]), rtol=1e-5, atol=1e-6)
    fid.inception.use_antialias = True  # torchmetrics' default resize: the check can fail
    assert not torch.allclose(fid.inception(real[:1]), real_features[:1], rtol=1e-3)

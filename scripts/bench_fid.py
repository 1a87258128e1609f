"""Time cvbench's FID (judge features + statistics) against torchmetrics'
``FrechetInceptionDistance`` on the same images and the same TF-Inception weights file.

Random RGB images (default 2 x 32 of 64 x 64: a "real" set and a brighter "generated" set),
quantized to 8 bits first so that both see the same bytes: cvbench gets the float images (its
judge rounds them as a PNG holds them), torchmetrics the uint8 ones (``normalize=False``; its
``normalize=True`` truncates instead of rounding). Both run torch-fidelity's TF-Inception port
with TF1's bilinear resize (torchmetrics ``antialias=False``: its default antialiased resize is
another protocol):

- cvbench ``TFInception`` + ``GenerativeMetric.update_real/update_fake`` per batch, then
  ``frechet_distance`` (torch-fidelity's statistics and distance) on the kept features;
- torchmetrics ``FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=FILE,
  antialias=False)``: ``update`` per batch, ``compute``.

The real weights (``weights-inception-2015-12-05-6726825d.pth``) cannot be downloaded here:
without ``--weights`` the script writes an Inception of seeded random weights in the reference
file format (torch-fidelity's network, its state dict saved with ``torch.save``) to a temporary
folder and says so; the timings do not depend on the weights' values, the FID values do.

Timed: the median over repeats (round robin) of feature extraction (ms per image) and of the
FID computation (s). With fewer images than 2048 the covariances are singular, and the two
implementations' eigenvalue routines (numpy's and torch's) agree only to about 1e-4 relative.

    .venv/bin/python scripts/bench_fid.py
    .venv/bin/python scripts/bench_fid.py --images 500 --size 128 --device cuda --weights FILE

Exit status 1 when the FID values disagree by more than ``--tolerance`` (relative).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch_fidelity
import torchmetrics
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torchmetrics.image import FrechetInceptionDistance

from cvbench.metrics.fidelity import frechet_distance
from cvbench.metrics.generative import GenerativeMetric
from cvbench.models.inception import WEIGHTS_FILE, TFInception
from cvbench.models.judge import to_uint8


class _RandomInception(FeatureExtractorInceptionV3):
    """torch-fidelity's network keeping its fresh random weights (its loader reads an empty
    dict that this script wrote, and this override ignores it)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ANN001, ANN201
        return None


def write_random_weights(folder: Path, seed: int = 0) -> Path:
    """An Inception of seeded random weights in the reference file format."""
    empty = folder / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(seed)
    net = _RandomInception("random", ["2048"], feature_extractor_weights_path=str(empty))
    for module in net.modules():  # keep activations at scale through the 94 layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = folder / WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def image_sets(num: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (num, 3, size, size) float sets in [0, 1], already on the 8-bit grid."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2 * num, 3, size // 8, size // 8, generator=gen)
    images = torch.nn.functional.interpolate(coarse, (size, size), mode="bilinear")
    images[num:] = (images[num:] * 0.8 + 0.2).clamp(0, 1)
    images = to_uint8(images).float() / 255
    return images[:num], images[num:]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_cvbench(weights: Path, real, fake, batch: int, device) -> tuple[float, float, float]:
    """(features s, FID s, FID)."""
    judge = TFInception(str(weights)).to(device)
    metric = GenerativeMetric(judge.name, judge.feature_dim, judge.num_logits)
    sync(device)
    start = time.perf_counter()
    for images, update in ((real, metric.update_real), (fake, metric.update_fake)):
        for first in range(0, len(images), batch):
            chunk = images[first : first + batch].to(device)
            features, logits = judge(chunk)
            update(features, torch.arange(first, first + len(chunk)), logits)
    sync(device)
    middle = time.perf_counter()
    kept = metric.kept_images(device="cpu")
    is_fake = kept.index % 2 == 1
    fid = frechet_distance(kept["feature"][~is_fake], kept["feature"][is_fake])
    return middle - start, time.perf_counter() - middle, fid


def run_torchmetrics(weights: Path, real, fake, batch: int, device) -> tuple[float, float, float]:
    """(features s, FID s, FID)."""
    metric = FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=str(weights), antialias=False
    ).to(device)
    sync(device)
    start = time.perf_counter()
    for images, is_real in ((real, True), (fake, False)):
        for first in range(0, len(images), batch):
            metric.update(to_uint8(images[first : first + batch]).to(device), real=is_real)
    sync(device)
    middle = time.perf_counter()
    fid = float(metric.compute())
    sync(device)
    return middle - start, time.perf_counter() - middle, fid


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="images per set")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", type=Path, default=None, help="the TF-Inception file")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative, FID")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    real, fake = image_sets(args.images, args.size, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or write_random_weights(Path(folder))
        contenders = {"cvbench": run_cvbench, "torchmetrics": run_torchmetrics}
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
        for _ in range(args.repeats):  # round robin: a change of machine load hits both alike
            for name, run in contenders.items():
                runs[name].append(run(weights, real, fake, args.batch, device))
    setup = {
        "images": f"2 x {args.images}",
        "size": f"{args.size}x{args.size}",
        "batch": args.batch,
        "repeats": args.repeats,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "torch-fidelity": torch_fidelity.__version__,
        "python": platform.python_version(),
    }
    print(", ".join(f"{k} {v}" for k, v in setup.items()))
    if args.weights is None:
        print(
            "weights: an Inception of RANDOM weights in the reference file format (the real "
            f"{WEIGHTS_FILE} cannot be had here): timings as with the real file, FID values not"
        )
    print()
    print("| implementation | features ms/image | FID s | total s | vs cvbench | FID |")
    print("|---|---:|---:|---:|---:|---:|")
    num = 2 * args.images
    totals = {n: statistics.median(f + s for f, s, _ in r) for n, r in runs.items()}
    for name, results in runs.items():
        feats = statistics.median(f for f, _, _ in results)
        fid_s = statistics.median(s for _, s, _ in results)
        print(
            f"| {name} | {1000 * feats / num:.1f} | {fid_s:.2f} | {totals[name]:.2f} | "
            f"{totals[name] / totals['cvbench']:.2f}x | {results[0][2]:.6f} |"
        )
    ours, theirs = runs["cvbench"][0][2], runs["torchmetrics"][0][2]
    difference = abs(ours - theirs) / max(abs(theirs), 1e-12)
    print()
    agrees = difference <= args.tolerance
    print(
        f"FID agrees to {args.tolerance:g} relative: {'yes' if agrees else 'NO'} ({difference:.2e})"
    )
    return 0 if agrees else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

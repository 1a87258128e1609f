"""Time the per-image PSNR + SSIM cost of cvbench's restoration metric against torchmetrics' and
scikit-image's.

Synthetic photos-like RGB images (default 20 of 320 x 480, about Set14's size): smooth random
fields rounded to 8 bits; outputs are the targets blurred a little plus noise, partly outside
[0, 1]. All three score the same rounded RGB images (``color="rgb"``, no crop: torchmetrics and
scikit-image have no Y channel of BT.601):

- cvbench ``RestorationMetric(color="rgb")``, float64, one image per ``update``;
- torchmetrics ``PeakSignalNoiseRatio(data_range=255, dim=(1, 2, 3))`` (the per-image mean) and
  ``StructuralSimilarityIndexMeasure(gaussian_kernel=True, sigma=1.5, kernel_size=11,
  data_range=255)``, given the float64 images rounded by ``quantize`` in the update;
- scikit-image ``peak_signal_noise_ratio`` and ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)`` per image (CPU only).

Timed: the median over repeats (round robin) of total update time / images. The mean PSNR of
each must agree with cvbench's to 1e-4 dB (torchmetrics sums in float32), scikit-image's mean
SSIM with cvbench's to 1e-6. torchmetrics' SSIM is shown but not compared: it averages the SSIM
map over the whole reflect-padded image, not over the valid region as Wang et al.'s code,
scikit-image and BasicSR do, so it differs near the borders.

    .venv/bin/python scripts/bench_psnr.py
    .venv/bin/python scripts/bench_psnr.py --images 10 --repeats 3 --device cuda

Exit status 1 when the values disagree.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import skimage
import torch
import torchmetrics
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from cvbench.metrics.restoration import RestorationMetric, quantize

PSNR_TOLERANCE = 1e-4  # dB
SSIM_TOLERANCE = 1e-6


def image_pairs(
    *, num_images: int, height: int, width: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(output, target) pairs of (1, 3, H, W) float32 in [0, 1]-ish, deterministic in ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(num_images):
        coarse = torch.rand(1, 3, height // 8, width // 8, generator=gen)
        target = torch.nn.functional.interpolate(coarse, (height, width), mode="bicubic")
        target = torch.round(target.clamp(0, 1) * 255) / 255
        blurred = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1)
        output = blurred + 0.03 * torch.randn(1, 3, height, width, generator=gen)
        pairs.append((output.contiguous(), target.contiguous()))
    return pairs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SkimageScores:
    """Per-image scikit-image PSNR and SSIM, kept as lists (the same interface as a metric)."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.ssim: list[float] = []

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        out = quantize(output)[0].permute(1, 2, 0).cpu().numpy()
        ref = quantize(target)[0].permute(1, 2, 0).cpu().numpy()
        self.psnr.append(peak_signal_noise_ratio(ref, out, data_range=255))
        self.ssim.append(
            structural_similarity(
                ref,
                out,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
                channel_axis=2,
            )
        )

    def compute(self) -> tuple[float, float]:
        return float(np.mean(self.psnr)), float(np.mean(self.ssim))


def contenders(device: torch.device, pairs: list) -> list[tuple[str, Callable, Callable, Callable]]:
    """(name, make, update(metric, i), scores(metric) -> (mean PSNR, mean SSIM))."""

    def cvbench_make() -> Any:
        return RestorationMetric(color="rgb").to(device)

    def cvbench_scores(metric: RestorationMetric) -> tuple[float, float]:
        out = metric.compute()
        return out["psnr"], out["ssim"]

    def cvbench_update(metric: RestorationMetric, i: int) -> None:
        metric.update(pairs[i][0], pairs[i][1], torch.tensor([i]))

    def torchmetrics_make() -> Any:
        psnr = PeakSignalNoiseRatio(data_range=255.0, dim=(1, 2, 3)).to(device)
        ssim = StructuralSimilarityIndexMeasure(
            gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0
        ).to(device)
        return psnr, ssim

    def torchmetrics_update(metrics: Any, i: int) -> None:
        output, target = quantize(pairs[i][0]), quantize(pairs[i][1])
        metrics[0].update(output, target)
        metrics[1].update(output, target)

    def skimage_update(scores: SkimageScores, i: int) -> None:
        scores.update(*pairs[i])

    def torchmetrics_scores(metrics: Any) -> tuple[float, float]:
        return float(metrics[0].compute()), float(metrics[1].compute())

    rows = [
        ("cvbench RestorationMetric", cvbench_make, cvbench_update, cvbench_scores),
        (
            "torchmetrics PSNR(dim=(1,2,3)) + SSIM",
            torchmetrics_make,
            torchmetrics_update,
            torchmetrics_scores,
        ),
    ]
    if device.type == "cpu":
        rows.append(
            (
                "scikit-image psnr + structural_similarity",
                SkimageScores,
                skimage_update,
                SkimageScores.compute,
            )
        )
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pairs = image_pairs(
        num_images=args.images, height=args.height, width=args.width, seed=args.seed
    )
    pairs = [(o.to(device), t.to(device)) for o, t in pairs]
    rows = contenders(device, pairs)
    seconds: dict[str, list[float]] = {name: [] for name, *_ in rows}
    metrics: dict[str, Any] = {}
    for _ in range(args.repeats):  # round robin: a change of machine load hits all alike
        for name, make, update, _ in rows:
            metric = make()
            sync(device)
            start = time.perf_counter()
            for i in range(args.images):
                update(metric, i)
            sync(device)
            seconds[name].append((time.perf_counter() - start) / args.images)
            metrics[name] = metric
    setup = {
        "images": args.images,
        "size": f"{args.height}x{args.width}",
        "repeats": args.repeats,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "scikit-image": skimage.__version__,
        "python": platform.python_version(),
    }
    print(", ".join(f"{k} {v}" for k, v in setup.items()))
    print()
    print("| scorer | update ms/image (median) | vs cvbench | mean PSNR dB | mean SSIM |")
    print("|---|---:|---:|---:|---:|")
    reference_ms = statistics.median(seconds[rows[0][0]])
    values = {name: scores(metrics[name]) for name, _, _, scores in rows}
    for name, *_ in rows:
        ms = statistics.median(seconds[name])
        psnr, ssim = values[name]
        print(f"| {name} | {1000 * ms:.2f} | {ms / reference_ms:.2f}x | {psnr:.6f} | {ssim:.6f} |")
    psnr, ssim = values[rows[0][0]]
    problems = [
        f"{name}: mean PSNR {got[0]} but cvbench gives {psnr}"
        for name, got in values.items()
        if abs(got[0] - psnr) > PSNR_TOLERANCE
    ]
    problems += [
        f"{name}: mean SSIM {got[1]} but cvbench gives {ssim}"
        for name, got in values.items()
        if name.startswith("scikit-image") and abs(got[1] - ssim) > SSIM_TOLERANCE
    ]
    print()
    print(
        f"PSNR agrees to {PSNR_TOLERANCE} dB, SSIM with scikit-image to {SSIM_TOLERANCE}: "
        + ("NO" if problems else "yes")
    )
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

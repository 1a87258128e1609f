"""Time the per-image update cost of cvbench's mIoU metric against torchmetrics'.

Synthetic Cityscapes-like label maps (default 50 images of 512 x 1024, 19 classes, void 255):
sky above, road below, random rectangles of the other classes, void borders and blobs, one class
that never appears. Predictions are the labels shifted by a few pixels (boundary errors) with
wrong-class blocks. Both are (1, H, W) int64 tensors, as a segmentation task updates after
``argmax``.

Timed: ``update`` over all images, one image per call, for cvbench ``SegmentationMetric`` and
torchmetrics ``MulticlassJaccardIndex(average="macro", ignore_index=255)`` (its default
``validate_args=True``, and ``False``); the median over repeats (round robin over the three) of
total time / images. ``compute`` is timed once. The mIoU of each must agree (torchmetrics
divides in float32: tolerance 1e-3 percent points).

    .venv/bin/python scripts/bench_miou.py
    .venv/bin/python scripts/bench_miou.py --images 20 --repeats 3 --device cuda

Exit status 1 when the mIoU values disagree.
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

import torch
import torchmetrics
from torchmetrics.classification import MulticlassJaccardIndex

from cvbench.metrics.segmentation import SegmentationMetric

TOLERANCE = 1e-3  # percent points; torchmetrics divides in float32


def label_maps(
    *, num_images: int, height: int, width: int, num_classes: int, ignore_index: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(pred, target) pairs of (1, H, W) int64, deterministic in ``seed``; class K-1 unused."""
    gen = torch.Generator().manual_seed(seed)

    def randint(low: int, high: int, size: tuple[int, ...] = ()) -> torch.Tensor:
        return torch.randint(low, high, size, generator=gen)

    pairs = []
    for _ in range(num_images):
        target = torch.full((height, width), 0, dtype=torch.int64)  # road
        horizon = int(randint(height // 4, height // 2))
        target[:horizon] = 10  # sky
        for _ in range(int(randint(15, 40))):  # objects and stuff, classes 1..K-2
            h, w = int(randint(8, height // 3)), int(randint(8, width // 4))
            y, x = int(randint(0, height - h)), int(randint(0, width - w))
            target[y : y + h, x : x + w] = int(randint(1, num_classes - 1))
        for _ in range(int(randint(2, 6))):  # void blobs, plus the ego-vehicle border
            h, w = int(randint(4, 60)), int(randint(4, 120))
            y, x = int(randint(0, height - h)), int(randint(0, width - w))
            target[y : y + h, x : x + w] = ignore_index
        target[-height // 12 :] = ignore_index
        pred = torch.roll(target, shifts=(int(randint(-4, 5)), int(randint(-4, 5))), dims=(0, 1))
        for _ in range(int(randint(5, 15))):  # wrong-class blocks
            h, w = int(randint(8, 80)), int(randint(8, 160))
            y, x = int(randint(0, height - h)), int(randint(0, width - w))
            pred[y : y + h, x : x + w] = int(randint(0, num_classes - 1))
        pred[pred == ignore_index] = 0  # a network predicts a class everywhere
        pairs.append((pred[None].contiguous(), target[None].contiguous()))
    return pairs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_updates(
    make: Callable[[], Any],
    update: Callable[[Any, int], None],
    *,
    images: int,
    device: torch.device,
) -> tuple[float, Any]:
    """Seconds per image of one pass of updates over all images, and the metric."""
    metric = make()
    sync(device)
    start = time.perf_counter()
    for i in range(images):
        update(metric, i)
    sync(device)
    return (time.perf_counter() - start) / images, metric


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ignore = 255
    pairs = label_maps(
        num_images=args.images,
        height=args.height,
        width=args.width,
        num_classes=args.classes,
        ignore_index=ignore,
        seed=args.seed,
    )
    pairs = [(p.to(device), t.to(device)) for p, t in pairs]
    indices = torch.arange(args.images, device=device)

    def cvbench_update(metric: SegmentationMetric, i: int) -> None:
        metric.update(pairs[i][0], pairs[i][1], indices[i : i + 1])

    def torchmetrics_update(metric: MulticlassJaccardIndex, i: int) -> None:
        metric.update(pairs[i][0], pairs[i][1])

    contenders: list[tuple[str, Callable[[], Any], Callable[[Any, int], None], Callable]] = [
        (
            "cvbench SegmentationMetric",
            lambda: SegmentationMetric(num_classes=args.classes, ignore_index=ignore).to(device),
            cvbench_update,
            lambda out: out["miou"],
        ),
    ]
    for validate in (True, False):
        contenders.append(
            (
                f"torchmetrics MulticlassJaccardIndex (validate_args={validate})",
                lambda validate=validate: MulticlassJaccardIndex(
                    num_classes=args.classes,
                    average="macro",
                    ignore_index=ignore,
                    validate_args=validate,
                ).to(device),
                torchmetrics_update,
                lambda out: 100.0 * float(out),
            )
        )
    # round robin over the contenders, so that a change of machine load hits them alike
    seconds: dict[str, list[float]] = {name: [] for name, *_ in contenders}
    metrics: dict[str, Any] = {}
    for _ in range(args.repeats):
        for name, make, update, _ in contenders:
            per_image, metrics[name] = time_updates(make, update, images=args.images, device=device)
            seconds[name].append(per_image)
    rows = []
    for name, _, _, miou_of in contenders:
        start = time.perf_counter()
        out = metrics[name].compute()
        sync(device)
        rows.append(
            {
                "name": name,
                "update_ms": 1000 * statistics.median(seconds[name]),
                "compute_ms": 1000 * (time.perf_counter() - start),
                "miou": miou_of(out),
            }
        )
    reference = rows[1]
    setup = {
        "images": args.images,
        "size": f"{args.height}x{args.width}",
        "classes": args.classes,
        "ignore_index": ignore,
        "repeats": args.repeats,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "python": platform.python_version(),
    }
    print(", ".join(f"{k} {v}" for k, v in setup.items()))
    print()
    print("| metric | update ms/image (median) | vs torchmetrics | compute ms | mIoU % |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['name']} | {row['update_ms']:.2f} | "
            f"{row['update_ms'] / reference['update_ms']:.2f}x | {row['compute_ms']:.1f} | "
            f"{row['miou']:.4f} |"
        )
    problems = [
        f"{row['name']}: mIoU {row['miou']} but cvbench gives {rows[0]['miou']}"
        for row in rows[1:]
        if abs(row["miou"] - rows[0]["miou"]) > TOLERANCE
    ]
    print()
    print(f"mIoU agrees to {TOLERANCE} percent points: " + ("NO" if problems else "yes"))
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

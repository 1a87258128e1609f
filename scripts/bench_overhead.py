"""Training-loop overhead of cvbench: the same model and data, cvbench vs a plain PyTorch loop.

The cvbench side is what ``cvbench train`` runs: the real Hydra config is composed, the objects
are built by ``cvbench.run.build`` (callbacks, loggers, checkpointing and progress bar as
configured) and ``trainer.fit`` is timed. The plain side builds the net, optimizer, scheduler,
loss and DataLoader from the same config and datamodule, with the same seed, and runs
``forward, loss, backward, step`` per batch, the scheduler as configured, and, like cvbench, a
validation pass per epoch (``--no-val`` drops it on both sides).

Throughput is training images seen / wall time of the fit, process start-up and imports
excluded. The plain fit includes the datamodule setup and optimizer creation, which
``trainer.fit`` includes too. The cvbench trainer gets one extra callback that only reads the
clock at epoch starts (to split the fit into epochs and fixed cost) and counts images.

    .venv/bin/python scripts/bench_overhead.py
    .venv/bin/python scripts/bench_overhead.py --repeats 5 +callbacks.progress_bar.refresh_rate=10
    # no bar at all: without the second override Lightning adds its default tqdm bar
    .venv/bin/python scripts/bench_overhead.py callbacks.progress_bar=null \\
        +trainer.enable_progress_bar=false
    .venv/bin/python scripts/bench_overhead.py --override trainer.log_every_n_steps=50 --json o.json

The rich progress bar draws only when stdout is a terminal, so run it in one (the table says
whether it was) to time what a user sees; redirected to a file, the bar costs less.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from cvbench.run.build import (  # noqa: E402
    build_datamodule,
    build_model,
    build_task,
    build_trainer,
    log_config,
)

DEFAULT_OVERRIDES = ("data=classification/digits", "model=classification/small_cnn")
NO_VAL_OVERRIDES = ("++trainer.limit_val_batches=0", "++trainer.num_sanity_val_steps=0")


@dataclass
class Run:
    """One timed fit: wall seconds, images seen, per-epoch seconds and the final metrics."""

    side: str
    fit_s: float
    cpu_s: float
    images: int
    epoch_s: list[float] = field(default_factory=list)
    train_loss: float = float("nan")
    val_top1_error: float = float("nan")

    @property
    def images_per_s(self) -> float:
        return self.images / self.fit_s

    @property
    def cpu_images_per_s(self) -> float:
        """Images per second of process CPU time (all threads: the progress bar's too)."""
        return self.images / self.cpu_s

    @property
    def epoch_images_per_s(self) -> float:
        """Steady-state throughput: images per epoch / median epoch time after the first."""
        steady = self.epoch_s[1:] or self.epoch_s
        return self.images / len(self.epoch_s) / statistics.median(steady)

    @property
    def fixed_s(self) -> float:
        """Fit time outside the epochs (setup, sanity check, teardown)."""
        return self.fit_s - sum(self.epoch_s)


def compose_train_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``cvbench train <overrides>`` runs, writing its run directory to output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "cvbench" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]  # as @hydra.main hands it to the task function
    return cfg


class EpochClock(pl.Callback):
    """Reads the clock at every training epoch start and at the end of the fit; counts the
    training images."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(time.perf_counter())

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.images += len(batch[1])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(time.perf_counter())


def run_cvbench(cfg: DictConfig, threads: int) -> Run:
    """Build the run as ``run_train`` does and time ``trainer.fit``."""
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    clock = EpochClock()
    trainer.callbacks.append(clock)
    log_config(trainer, cfg)

    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(task, datamodule=datamodule)
    fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

    epochs = int(cfg.trainer.max_epochs)
    if trainer.current_epoch != epochs:
        raise RuntimeError(f"cvbench stopped after {trainer.current_epoch} of {epochs} epochs")
    val = task.results.get("val", {})
    return Run(
        side="cvbench",
        fit_s=fit_s,
        cpu_s=cpu_s,
        images=clock.images,
        epoch_s=[b - a for a, b in zip(clock.marks, clock.marks[1:], strict=False)],
        train_loss=task.results["train"]["train/loss"],
        val_top1_error=val.get("val/top1_error", float("nan")),
    )


def batch_limit(limit: int | float | None, batches: int) -> int:
    """Batches per epoch under Lightning's ``limit_{train,val}_batches``: int or fraction."""
    if limit is None:
        return batches
    if isinstance(limit, float) and limit <= 1.0:
        return int(batches * limit)
    return min(int(limit), batches)


def plain_train_epoch(
    net: torch.nn.Module,
    batches: Iterable,
    loss_fn: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step_scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    memory_format: torch.memory_format,
) -> tuple[int, float]:
    """One training epoch as the task runs it; returns (images seen, mean loss)."""
    net.train()
    images, loss_sum = 0, torch.zeros((), dtype=torch.float64)
    for batch_images, targets, _ in batches:
        logits = net(batch_images.contiguous(memory_format=memory_format))
        loss = loss_fn(logits, targets).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        loss_sum += loss.detach() * len(targets)
        images += len(targets)
    return images, float(loss_sum) / max(images, 1)


def plain_val_error(
    net: torch.nn.Module, batches: Iterable, memory_format: torch.memory_format
) -> float:
    """Top-1 error (percent) of a validation pass."""
    net.eval()
    wrong, seen = 0, 0
    with torch.inference_mode():
        for batch_images, targets, _ in batches:
            logits = net(batch_images.contiguous(memory_format=memory_format))
            wrong += int((logits.argmax(1) != targets).sum())
            seen += len(targets)
    return 100.0 * wrong / max(seen, 1)


def run_plain(cfg: DictConfig, threads: int, validate: bool) -> Run:
    """The same training in a plain PyTorch loop: net, optimizer, scheduler, loss and data
    from the same config and datamodule."""
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    net = build_model(cfg)  # same RNG state as build_task's build_networks(cfg)
    loss_fn = instantiate(cfg.task.module.loss)
    memory_format = torch.channels_last if cfg.get("channels_last") else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    sched = cfg.get("sched") or {}

    start, cpu_start = time.perf_counter(), time.process_time()
    datamodule.setup("fit")
    train_loader = datamodule.train_dataloader()
    val_loader = datamodule.val_dataloader()
    optimizer = instantiate(cfg.optim)(net.parameters())
    scheduler = instantiate(sched["scheduler"])(optimizer) if sched.get("scheduler") else None
    per_step = sched.get("interval", "epoch") == "step"
    train_batches = batch_limit(cfg.trainer.get("limit_train_batches"), len(train_loader))
    val_batches = batch_limit(cfg.trainer.get("limit_val_batches"), len(val_loader))
    marks, images, train_loss, val_error = [], 0, float("nan"), float("nan")
    for _ in range(int(cfg.trainer.max_epochs)):
        marks.append(time.perf_counter())
        seen, train_loss = plain_train_epoch(
            net,
            islice(train_loader, train_batches),
            loss_fn,
            optimizer,
            scheduler if per_step else None,
            memory_format,
        )
        images += seen
        if validate and val_batches > 0:
            val_error = plain_val_error(net, islice(val_loader, val_batches), memory_format)
        if scheduler is not None and not per_step:
            scheduler.step()
    marks.append(time.perf_counter())
    cpu_s = time.process_time() - cpu_start
    return Run(
        side="plain",
        fit_s=marks[-1] - start,
        cpu_s=cpu_s,
        images=images,
        epoch_s=[b - a for a, b in zip(marks, marks[1:], strict=False)],
        train_loss=train_loss,
        val_top1_error=val_error,
    )


LEGEND = """
  img/s median, best: training images / wall time of the fit, over {repeats} repeats
  img/s CPU:          training images / process CPU time of the fit (median): leaves out
                      time spent waiting (I/O, other processes on the core), not a VM's
                      stolen time
  epoch img/s:        one epoch's images / median wall time of an epoch after the first
  fit s, fixed s:     wall time of the fit, and the part outside the epochs (setup, sanity
                      check, teardown), medians
"""
COLUMNS = (  # (summary key, header, format)
    ("images_per_s_median", "img/s median", ".0f"),
    ("images_per_s_best", "img/s best", ".0f"),
    ("cpu_images_per_s_median", "img/s CPU", ".0f"),
    ("epoch_images_per_s_median", "epoch img/s", ".0f"),
    ("fit_s_median", "fit s", ".2f"),
    ("fixed_s_median", "fixed s", ".2f"),
)


def summarize(runs: list[Run]) -> dict[str, float]:
    """Median (and best) over a side's repeats."""
    return {
        "images_per_s_median": statistics.median(r.images_per_s for r in runs),
        "images_per_s_best": max(r.images_per_s for r in runs),
        "cpu_images_per_s_median": statistics.median(r.cpu_images_per_s for r in runs),
        "epoch_images_per_s_median": statistics.median(r.epoch_images_per_s for r in runs),
        "fit_s_median": statistics.median(r.fit_s for r in runs),
        "fixed_s_median": statistics.median(r.fixed_s for r in runs),
    }


def ratios(plain: dict[str, float], cv: dict[str, float]) -> dict[str, float]:
    """cvbench / plain of every throughput (higher is better; 1.0 is no overhead)."""
    return {key: cv[key] / plain[key] for key, _, _ in COLUMNS if "images_per_s" in key}


def table(plain: dict[str, float], cv: dict[str, float]) -> str:
    """The result table: one row per side, then the ratio cvbench / plain."""
    head = f"{'':16}" + "".join(f"{title:>13}" for _, title, _ in COLUMNS)
    rule = "-" * len(head)
    rows = [head, rule]
    for name, s in (("plain PyTorch", plain), ("cvbench", cv)):
        rows.append(f"{name:16}" + "".join(f"{s[key]:>13{fmt}}" for key, _, fmt in COLUMNS))
    rows.append(rule)
    ratio = ratios(plain, cv)
    rows.append(
        f"{'cvbench / plain':16}"
        + "".join(f"{ratio[key]:>13.3f}" if key in ratio else f"{'':>13}" for key, _, _ in COLUMNS)
    )
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Hydra overrides (positional or --override) come after "
        f"{' '.join(DEFAULT_OVERRIDES)} trainer.max_epochs=EPOCHS.",
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. trainer.log_every_n_steps=50"
    )
    parser.add_argument(
        "--override", action="append", default=[], help="a Hydra override (repeatable)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per side (default 3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads for both sides (default 1: the steadiest on a shared "
        "machine; OpenCV keeps its own threads)",
    )
    parser.add_argument(
        "--no-val",
        action="store_true",
        help="no validation on either side (cvbench: limit_val_batches=0, num_sanity_val_steps=0)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed 1-epoch run of each side before timing",
    )
    parser.add_argument("--json", type=Path, help="write the numbers and every repeat here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = [*DEFAULT_OVERRIDES, f"trainer.max_epochs={args.epochs}"]
    overrides += [*NO_VAL_OVERRIDES] if args.no_val else []
    overrides += [*args.override, *args.overrides]
    validate = not args.no_val
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    runs: dict[str, list[Run]] = {"plain": [], "cvbench": []}
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        counter = iter(range(10**6))

        def config(extra: tuple[str, ...] = ()) -> DictConfig:
            return compose_train_config([*overrides, *extra], Path(tmp) / f"run{next(counter)}")

        cfg = config()
        if not args.no_warmup:  # lazy imports, first-call kernel and allocator costs
            run_cvbench(config(("trainer.max_epochs=1",)), args.threads)
            run_plain(config(("trainer.max_epochs=1",)), args.threads, validate)
        for repeat in range(args.repeats):
            order = ("cvbench", "plain") if repeat % 2 == 0 else ("plain", "cvbench")
            for side in order:
                run = (
                    run_cvbench(config(), args.threads)
                    if side == "cvbench"
                    else run_plain(config(), args.threads, validate)
                )
                runs[side].append(run)

    plain, cv = summarize(runs["plain"]), summarize(runs["cvbench"])
    setup = {
        "model": cfg.model._target_,
        "data": cfg.data.name,
        "overrides": overrides,
        "epochs": int(cfg.trainer.max_epochs),
        "train_images_per_epoch": runs["plain"][0].images // int(cfg.trainer.max_epochs),
        "batch_size": int(cfg.data.batch_size),
        "validation": "both sides, every epoch" if validate else "none on either side",
        "repeats": args.repeats,
        "threads": f"torch {args.threads}, OpenCV {cv2.getNumThreads()} (albumentations)",
        "stdout is a terminal": sys.stdout.isatty(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
    }
    print("\ncvbench vs a plain PyTorch loop: same model, data, seed and schedule")
    for key, value in setup.items():
        print(f"  {key:24}{' '.join(value) if isinstance(value, list) else value}")
    print()
    print(table(plain, cv))
    print(LEGEND.format(repeats=args.repeats))
    for side in ("plain", "cvbench"):
        last = runs[side][-1]
        print(
            f"  {side:8} last repeat: train/loss {last.train_loss:.4f}, "
            f"val/top1_error {last.val_top1_error:.2f}%"
        )
    if args.json:
        record: dict[str, Any] = {
            "setup": setup,
            "plain": plain,
            "cvbench": cv,
            "ratio": ratios(plain, cv),
            "runs": [asdict(r) for side in runs.values() for r in side],
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

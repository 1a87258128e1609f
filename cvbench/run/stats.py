"""What a run costs, measured while it runs: training throughput, FLOPs per image, peak memory.

- Throughput: images per second of the training steps (forward, backward, optimizer step),
  summed over processes; data loading is not counted, nor is the first step of the run
  (allocation and autotuning warm-up).
- FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` over the task's forward (the
  model and its post-processing) on the first test image, in an extra pass whose output is
  discarded: under the counter some kernels take other paths and round differently, and the
  reported metrics must not depend on being measured. It counts 2 FLOPs per multiply-add, as
  the FLOPs (not MACs) papers quote.
- Peak memory: on a GPU, the largest memory PyTorch allocated on the device; on the CPU, the
  peak resident memory of the process (the whole process, including earlier runs of a
  multirun in the same process).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.flop_counter import FlopCounterMode


def images_in(batch: Any) -> int:
    """The number of images in a cvbench batch: every batch carries its dataset indices,
    as ``batch["index"]`` (dict batches) or as the last element (tuples)."""
    indices = batch["index"] if isinstance(batch, dict) else batch[-1]
    return len(indices)


def _sync(pl_module: pl.LightningModule) -> None:
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)


class RunStats(pl.Callback):
    """Measures the run's cost; read :attr:`train_images_per_s`, :attr:`flops_per_image` and
    :func:`peak_memory_mb` when it ends."""

    def __init__(self) -> None:
        self.train_images = 0
        self.train_seconds = 0.0
        self.world_size = 1
        self.flops_per_image: float | None = None
        self._step_start: float | None = None
        self._skipped_first = False

    @property
    def train_images_per_s(self) -> float | None:
        """Training images per second, all processes together; None before two steps ran."""
        if self.train_seconds <= 0:
            return None
        return self.train_images * self.world_size / self.train_seconds

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        _sync(pl_module)
        self._step_start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._step_start is None:
            return
        _sync(pl_module)
        elapsed = time.perf_counter() - self._step_start
        self._step_start = None
        if not self._skipped_first:
            self._skipped_first = True
            return
        self.world_size = trainer.world_size
        self.train_seconds += elapsed
        self.train_images += images_in(batch)

    def on_test_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.flops_per_image is None and batch_idx == 0 and trainer.is_global_zero:
            self.flops_per_image = forward_flops(pl_module, first_image_inputs(batch))


def first_image_inputs(batch: Any) -> Any:
    """What a task's ``forward`` takes, for the first image of an evaluation batch: the
    images are ``batch["input"]`` (dict batches) or the first element; a (B, C, H, W) tensor
    gives (1, C, H, W), a list of images (sizes differ, or detection) gives a one-item list."""
    images = batch["input"] if isinstance(batch, dict) else batch[0]
    return images[:1]


def forward_flops(module: torch.nn.Module, inputs: Any) -> float:
    """FLOPs of ``module(inputs)``; a list of one image is given as a (1, C, H, W) batch to a
    task whose ``forward`` takes batches (``takes_image_lists`` False)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        if isinstance(inputs, list) and not getattr(module, "takes_image_lists", False):
            inputs = inputs[0][None]
        module(inputs)
    return float(counter.get_total_flops())


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: PyTorch's allocations on a CUDA ``device``, else the process's
    peak resident memory (Linux reports ``ru_maxrss`` in KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parameter_count(module: torch.nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())

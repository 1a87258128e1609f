"""What the image-synthesis tasks share (DCGAN in ``cvbench.tasks.gan``, DDPM in
``cvbench.tasks.diffusion``): the judge, evaluation of generated against real images with
per-sample seeded noise, the untrained baseline, the fixed sample grid and ``generate``.

How a generator is evaluated (val and test): the eval dataloader yields the REAL images of the
split; for a real batch with dataset indices i the task draws ``samples_per_image`` samples
with sample indices j = i * samples_per_image + r (r < samples_per_image), each from noise
seeded by (``eval_seed``, j) alone (:func:`sample_noise`: a ``torch.Generator`` per sample),
conditioned on the label of its real image i when the generator is class-conditional. The
generated set is therefore the same whatever the batch size, device or number of processes.
The judge's features of the real images go to ``GenerativeMetric.update_real(i)``, of the
generated ones to ``update_fake(j)`` (each index counted once across processes). At test, a
frozen copy of the generator as built (``untrained_baseline``) is scored by a second metric
with prefix ``baseline_untrained_``. ``{stage}/fid_protocol`` records the protocol.

Interface for a subclass (a new generation task):

- ``sampled_network``: class attribute, the name of the network (of ``cfg.model``) that
  generates: "generator" (GAN), "net" (one network, DDPM's U-Net). The untrained baseline
  is a frozen copy of it as built.
- ``generate_from(net, indices, labels, seed, **options) -> (N, 3, H, W) float in [0, 1]``:
  ABSTRACT. Samples of ``net`` (the network to sample: see ``sampling_network``, or the
  untrained copy) for sample indices ``indices`` (N,) int64, each drawn from its own noise
  ``sample_noise(indices, shape, seed, stream=...)`` (use a distinct ``stream`` per noise draw:
  DDPM's x_T is stream 0, the noise of step t stream t + 1), conditioned on ``labels`` (N,)
  int64 (or None: unconditional). ``options`` come from ``cvbench sample`` (``sampler=ddim``,
  ``steps=50``): accept what you use, raise ValueError on unknown ones. Called without
  autograd in eval mode; put outputs on ``self.device``.
- ``sampling_network() -> nn.Module``: what evaluation, the grid and ``generate`` sample
  (default: the ``sampled_network``; the GAN returns its EMA copy when it keeps one).
- ``num_classes``: attribute, > 0 for a class-conditional generator (labels are given), else
  0 (``labels`` is None).
- ``training_step``: the subclass's (manual optimization with several networks, automatic
  with one). Do not override ``validation_step``/``test_step``/``setup`` without calling these.

What this base gives: ``setup`` trains or loads the judge (a network with ``cache_path``, e.g.
``FeatureCNN``, via ``cvbench.tasks.judges``), the eval steps, ``epoch_extras`` (baseline
scores, ``{stage}/fid_protocol``, ``{stage}/judge``), ``grid_images()`` (the
``SampleGrid`` callback's), ``generate(num, seed, **options)`` (``cvbench sample``'s),
``forward(images)`` (one sample per image: what the run's FLOPs per image count) and
checkpoints without the judge (``FROZEN``); the untrained copy stays in them (``untrained.*``),
so ``cvbench eval`` scores the very baseline of the run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cvbench.metrics.generative import GenerativeMetric
from cvbench.tasks.base import EVAL_STAGES, TaskModule
from cvbench.tasks.judges import prepare_judge

FROZEN = ("judge.",)
"""State-dict prefixes of the frozen judge: rebuilt from its config (a weights file or the
judge cache), never stored in checkpoints."""
BASELINE_PREFIX = "baseline_untrained_"


def sample_seed(seed: int, index: int, stream: int = 0) -> int:
    """The seed of sample ``index``'s noise draw ``stream`` under run seed ``seed``: numpy's
    ``SeedSequence`` of the three (well-mixed, so neighbouring samples are independent).

    >>> sample_seed(0, 5) == sample_seed(0, 5) != sample_seed(0, 6)
    True
    """
    if min(seed, index, stream) < 0:
        raise ValueError(f"seed, sample index and stream must be >= 0, got {seed, index, stream}")
    return int(np.random.SeedSequence((seed, index, stream)).generate_state(1, np.uint64)[0])


def sample_noise(
    indices: Tensor | Sequence[int],
    shape: Sequence[int],
    seed: int,
    *,
    stream: int = 0,
    device: torch.device | str | None = None,
) -> Tensor:
    """Standard normal noise, each sample's row from its own generator seeded by
    (``seed``, index, ``stream``): the same rows whatever the batch they are drawn in.

    Args:
        indices: (N,) non-negative sample indices.
        shape: the shape of one sample's noise, e.g. ``(nz, 1, 1)``.
        seed: the run's evaluation (or sampling) seed.
        stream: which draw of the sample (0 for the first; DDPM: one per step).
        device: where the result goes (drawn on the CPU: the same numbers on any device).

    Returns:
        (N, *shape) float32.

    >>> a = sample_noise([3, 4], (2,), seed=0)
    >>> torch.equal(a[1], sample_noise([4], (2,), seed=0)[0])
    True
    """
    rows = []
    for index in torch.as_tensor(indices).reshape(-1).tolist():
        generator = torch.Generator().manual_seed(sample_seed(seed, int(index), stream))
        rows.append(torch.randn(tuple(shape), generator=generator))
    noise = torch.stack(rows) if rows else torch.empty((0, *shape))
    return noise.to(device) if device is not None else noise


class GenerationTask(TaskModule):
    """Base of the image-synthesis tasks (module docstring for the protocol and interface).

    Reports per eval stage what its ``GenerativeMetric`` computes
    (``{stage}/fid@<judge>``, ``{stage}/kid@<judge>``, ...; plain ``fid``... with the
    TF-Inception), at test also ``test/baseline_untrained_fid@<judge>`` ..., and the strings
    ``{stage}/fid_protocol`` and ``{stage}/judge``.

    Args:
        judge: the feature network (the judge protocol of ``cvbench.metrics.generative``):
            ``name``, ``feature_dim``, ``num_logits``, ``protocol``, ``forward(images (B, 3, H,
            W) in [0, 1]) -> (features (B, D), logits (B, K) | None)``. One with a
            ``cache_path`` is trained on the run's train split in ``setup`` (or loaded).
        metric: builds the metric, called with ``network``, ``feature_dim``, ``num_logits``
            (and ``prefix`` for the baseline): a partial of ``GenerativeMetric``.
        eval_seed: the seed of the evaluated samples' noise.
        samples_per_image: generated samples per real image of the eval split.
        untrained_baseline: keep a frozen copy of the generator as built and score it at test.
        grid_size: samples in the fixed grid (``grid_images``).
        grid_seed: the seed of the grid's noise.
        **base: ``nets``, ``optimization`` (see :class:`~cvbench.tasks.base.TaskModule`).
    """

    metric_stages = EVAL_STAGES
    frozen_prefixes = FROZEN
    sampled_network: str = "generator"
    num_classes: int = 0

    def __init__(
        self,
        *,
        judge: nn.Module,
        metric: Callable[..., GenerativeMetric],
        eval_seed: int = 0,
        samples_per_image: int = 1,
        untrained_baseline: bool = True,
        grid_size: int = 64,
        grid_seed: int = 1234,
        **base: Any,
    ) -> None:
        if samples_per_image < 1 or grid_size < 1:
            raise ValueError(
                "task.module.samples_per_image and grid_size must be >= 1, got "
                f"{samples_per_image} and {grid_size}"
            )
        super().__init__(**base, metrics={"generative": self._new_metric(metric, judge)})
        if self.sampled_network not in self.network_names:
            raise ValueError(
                f"{type(self).__name__} samples the network {self.sampled_network!r}, but model "
                f"has {list(self.network_names)}: name it so in the model config"
            )
        self.judge = judge.requires_grad_(False).eval()
        self.eval_seed, self.samples_per_image = eval_seed, samples_per_image
        self.grid_size, self.grid_seed = grid_size, grid_seed
        self.untrained = (
            copy.deepcopy(getattr(self, self.sampled_network)).requires_grad_(False).eval()
            if untrained_baseline
            else None
        )
        self.baseline_metric = (
            self._new_metric(metric, judge, prefix=BASELINE_PREFIX) if untrained_baseline else None
        )
        self._judge_ready = False

    @staticmethod
    def _new_metric(metric: Callable[..., GenerativeMetric], judge: nn.Module, **kw: Any):
        return metric(
            network=judge.name, feature_dim=judge.feature_dim, num_logits=judge.num_logits, **kw
        )

    # --- what a subclass gives -----------------------------------------------------------------

    def generate_from(
        self,
        net: nn.Module,
        indices: Tensor,
        labels: Tensor | None,
        seed: int,
        **options: Any,
    ) -> Tensor:
        """Samples (N, 3, H, W) float in [0, 1] of ``net`` for sample ``indices`` (N,), each
        from its own seeded noise (module docstring)."""
        raise NotImplementedError

    def sampling_network(self) -> nn.Module:
        """The network evaluation, the grid and ``generate`` sample."""
        return getattr(self, self.sampled_network)

    def forward(self, images: Tensor) -> Tensor:
        """One sample of the sampling network per image of ``images`` (B, 3, H, W) (only their
        number is used: what a run's FLOPs per image count), as ``generate(B, seed=0)``."""
        return self.generate(len(images), 0)

    # --- the judge -----------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Train (rank 0, once: cached) or load the judge on the run's train split."""
        if not self._judge_ready:
            prepare_judge(self.judge, self.trainer)
            self._judge_ready = True

    def train(self, mode: bool = True) -> GenerationTask:
        """Lightning's ``train()`` except that the judge and the untrained copy stay in eval
        mode (batch norm statistics frozen)."""
        super().train(mode)
        self.judge.eval()
        if self.untrained is not None:
            self.untrained.eval()
        return self

    # --- evaluation ----------------------------------------------------------------------------

    def sample_indices(self, indices: Tensor) -> Tensor:
        """(B * samples_per_image,) int64: j = i * samples_per_image + r for each real i."""
        repeat = self.samples_per_image
        offsets = torch.arange(repeat, device=indices.device)
        return (indices.long()[:, None] * repeat + offsets).reshape(-1)

    def _labels_of(self, labels: Tensor) -> Tensor | None:
        if not self.num_classes:
            return None
        if (labels < 0).any():
            raise ValueError(
                f"{type(self).__name__} is class-conditional (num_classes {self.num_classes}) "
                "but the data has unlabelled images: choose labelled data or an unconditional "
                "model"
            )
        return labels.repeat_interleave(self.samples_per_image)

    def _eval_step(self, batch: Any, stage: str) -> None:
        images, labels, indices = batch.images, batch.labels, batch.indices
        features, logits = self.judge(images)
        metrics = [(self.metric(stage, GenerativeMetric), self.sampling_network())]
        if stage == "test" and self.untrained is not None:
            metrics.append((self.baseline_metric, self.untrained))
        fake_indices = self.sample_indices(indices)
        fake_labels = self._labels_of(labels)
        for metric, net in metrics:
            metric.update_real(features, indices, logits)
            fake = self.generate_from(net, fake_indices, fake_labels, self.eval_seed)
            fake_features, fake_logits = self.judge(fake.clamp(0, 1))
            metric.update_fake(fake_features, fake_indices, fake_logits)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "test")

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The baseline's scores (test) and the protocol strings of ``stage``."""
        if stage == "train":
            return {}
        values: dict[str, float | str | None] = {}
        scores = self.metric(stage, GenerativeMetric).compute()
        if stage == "test" and self.baseline_metric is not None:
            for key, value in self.baseline_metric.compute().items():
                values[f"{stage}/{key}"] = float(value) if isinstance(value, Tensor) else value
            self.baseline_metric.reset()
        num_real, num_fake = scores.get("num_real"), scores.get("num_fake")
        metric_protocol = getattr(self.metric(stage, GenerativeMetric), "protocol", "")
        datamodule = getattr(self.trainer, "datamodule", None)
        real = (
            datamodule.real_protocol(stage)
            if hasattr(datamodule, "real_protocol")
            else f"the {stage} split"
        )
        values[f"{stage}/fid_protocol"] = (
            f"real: {real}, {_count(num_real)} counted; generated: {_count(num_fake)} "
            f"samples ({self.samples_per_image} per real image, noise seeded by eval seed "
            f"{self.eval_seed} and sample index); generator: {self.sampling_protocol()}; "
            f"judge: {self.judge.protocol}" + (f"; {metric_protocol}" if metric_protocol else "")
        )
        values[f"{stage}/judge"] = self.judge.name
        return values

    def sampling_protocol(self) -> str:
        """How the evaluated samples are drawn (one phrase for ``fid_protocol``); tasks with
        samplers or weight averages say which."""
        return "the trained weights"

    # --- samples ---------------------------------------------------------------------------------

    def _batched(
        self, net: nn.Module, indices: Tensor, labels: Tensor | None, seed: int, **options: Any
    ) -> Tensor:
        out = []
        for start in range(0, len(indices), 256):
            part = slice(start, start + 256)
            chunk = labels[part] if labels is not None else None
            out.append(self.generate_from(net, indices[part], chunk, seed, **options))
        return torch.cat(out).clamp(0, 1)

    @torch.no_grad()
    def grid_images(self) -> tuple[Tensor, int]:
        """The fixed grid: ``grid_size`` samples of the sampling network from noise seeded by
        ``grid_seed`` (class-conditional: labels 0, 1, ... in turn, one class per column).

        Returns:
            (N, 3, H, W) float in [0, 1] on the CPU, and the images per grid row.
        """
        nrow = int(np.ceil(np.sqrt(self.grid_size)))
        if self.num_classes:
            nrow = self.num_classes
        images = self.generate(self.grid_size, self.grid_seed)
        return images.cpu(), nrow

    @torch.no_grad()
    def generate(
        self, num: int, seed: int, *, label: int | None = None, first: int = 0, **options: Any
    ) -> Tensor:
        """``num`` samples of the sampling network, sample j from noise seeded by (``seed``, j).

        Args:
            num: how many.
            seed: the noise seed.
            first: the index of the first sample (samples ``first`` ... ``first + num - 1``).
            label: the class of every sample (class-conditional only); None: classes 0, 1, ...
                in turn.
            **options: the subclass's sampling options (DDPM: ``sampler``, ``steps``).

        Returns:
            (num, 3, H, W) float in [0, 1], on the task's device.
        """
        net = self.sampling_network()
        was_training = net.training
        net.eval()
        indices = torch.arange(first, first + num, device=self.device)
        labels = None
        if self.num_classes:
            labels = (
                indices % self.num_classes if label is None else torch.full_like(indices, label)
            )
            if label is not None and not 0 <= label < self.num_classes:
                raise ValueError(f"label={label}: expected a class in [0, {self.num_classes})")
        elif label is not None:
            raise ValueError(f"label={label}: this generator is not class-conditional")
        try:
            return self._batched(net, indices, labels, seed, **options)
        finally:
            net.train(was_training)


def _count(value: Any) -> str:
    return "?" if value is None else str(int(value))

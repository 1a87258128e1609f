"""The judges of the image-to-image translation tasks, trained by cvbench on the run's train
split and cached (:func:`cvbench.tasks.judges.prepare_cached`):

- pix2pix: a segmenter of the target domain (:class:`~cvbench.models.segmenter_judge.
  SegmenterJudge`) trained on the train split's (target image, label map) pairs with
  cross-entropy: the "FCN-score" judge (Isola et al., 2017, section 4.2) and its pooled
  encoder features the features of ``fid@<name>``.
- CycleGAN: a classifier of the two domains (:class:`~cvbench.models.feature_cnn.FeatureCNN`
  with 2 classes: A is 0, B is 1) trained on the train split's images of both domains; its
  penultimate features give ``ab_fid@<name>`` and ``ba_fid@<name>``, its logits say which
  domain a translation looks like.

The process of rank 0 trains and caches a judge; the others wait, then read the cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from cvbench.data.batches import ImageBatch, TranslationBatch, UnpairedBatch
from cvbench.tasks.judges import (
    accuracy,
    fit_classifier,
    prepare_cached,
    seeded_one_cycle_adam,
    split_loader,
)


def fit_segmenter(net: nn.Module, loader: DataLoader, *, epochs: int, lr: float, seed: int) -> None:
    """Train ``net`` (``segment(images) -> (B, K, H, W)`` logits) with Adam (one-cycle) and
    cross-entropy on the targets and label maps of ``loader``'s
    :class:`~cvbench.data.batches.TranslationBatch` batches (label -1 ignored), seeded.

    Raises:
        ValueError: the split has no labelled pixel (data without label maps).
    """
    optimizer, schedule = seeded_one_cycle_adam(net, lr=lr, steps=epochs * len(loader), seed=seed)
    device = next(net.parameters()).device
    net.train()
    for _ in range(epochs):
        trained = 0
        batch: TranslationBatch
        for batch in loader:
            labels = batch.label_map.to(device)
            if not (labels >= 0).any():
                continue
            logits = net.segment(batch.target.to(device))
            loss = nn.functional.cross_entropy(logits, labels, ignore_index=-1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            trained += 1
        if not trained:
            raise ValueError(
                "the segmenter judge needs label maps, but the train split has none: give "
                "data with labels (a labels folder or data.palette) or another judge "
                "(judge@task.module.judge=...)"
            )
    net.eval()


class DomainBatches:
    """:class:`~cvbench.data.batches.UnpairedBatch` batches as
    :class:`~cvbench.data.batches.ImageBatch` batches of both domains' images, labelled 0 (A)
    and 1 (B): what :func:`~cvbench.tasks.judges.fit_classifier` trains on."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[ImageBatch]:
        batch: UnpairedBatch
        for batch in self.loader:
            a, b = batch.images_a, batch.images_b
            yield ImageBatch(
                images=torch.cat([a, b]),
                labels=torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long(),
                indices=torch.cat([batch.indices_a, batch.indices_b]),
            )


def prepare_segmenter(judge: nn.Module, trainer: pl.Trainer) -> nn.Module:
    """The pix2pix judge: a segmenter trained on the train split's (target, label map).

    Raises:
        ValueError: a judge to train that cannot segment (no ``segment``).
    """
    if getattr(judge, "cache_path", None) and not hasattr(judge, "segment"):
        raise ValueError(
            f"task.module.judge: pix2pix trains its judge as a segmenter of the targets, but "
            f"{type(judge).__name__} has no segment(); use judge@task.module.judge=seg_shapes64 "
            "(or a judge with weights of its own, e.g. inception_v3_tf)"
        )
    datamodule = trainer.datamodule
    seed = int(getattr(judge, "train_seed", 0))

    def fit(net: nn.Module) -> None:
        loader = split_loader(datamodule, "train", shuffle=True, seed=seed)
        fit_segmenter(net, loader, epochs=net.train_epochs, lr=net.train_lr, seed=seed)

    return prepare_cached(judge, trainer, fit)


def prepare_domain_classifier(judge: nn.Module, trainer: pl.Trainer) -> nn.Module:
    """The CycleGAN judge: a classifier of domain A (0) against B (1) trained on the train
    split; its test accuracy goes into its protocol."""
    datamodule = trainer.datamodule
    seed = int(getattr(judge, "train_seed", 0))

    def fit(net: nn.Module) -> None:
        loader = DomainBatches(split_loader(datamodule, "train", shuffle=True, seed=seed))
        fit_classifier(net, loader, epochs=net.train_epochs, lr=net.train_lr, seed=seed)

    prepare_cached(judge, trainer, fit)
    if getattr(judge, "cache_path", None) and "test accuracy" not in judge.protocol:
        test = DomainBatches(split_loader(datamodule, "test", shuffle=False, seed=seed))
        score = accuracy(judge, test)
        if score is not None:
            judge.protocol = f"{judge.protocol}, test accuracy A vs B {score:.1f}%"
    return judge

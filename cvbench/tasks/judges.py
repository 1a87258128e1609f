"""Judges that cvbench trains itself: the feature networks of ``fid@<net>`` / ``kid@<net>``
on data where the standard TF-Inception is not available (the embedded sets), and segmenters
for the FCN-score.

A judge's weights are a function of its recipe (its config and seed) and the data, so they
are trained once and cached (:func:`prepare_cached`) at
``${paths.data_dir}/judges/<name>-<data>.pt``, where ``<data>`` is the train split's
fingerprint (:func:`data_fingerprint`: its length and its first and last items): a run on a
cut-down or different train split trains and caches a judge of its own under another file
name, and never scores with, nor overwrites, the one of the full split. Every run on the same
data with the same judge name is scored by the very same network, and the file's sha256 goes
into the judge's protocol string. The name therefore has to name the recipe
(``cnn_digits32_s0``): a different recipe needs a different name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)


def sha256_prefix(path: str | Path, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _feed(digest: Any, item: Any) -> None:
    """Hash the arrays and numbers of a dataset item (tensors, arrays, images, mappings,
    sequences, dataclasses), in order."""
    if isinstance(item, Tensor):
        item = item.detach().cpu().numpy()
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        item = [getattr(item, field.name) for field in dataclasses.fields(item)]
    if isinstance(item, Mapping):
        for key in sorted(item, key=str):
            digest.update(str(key).encode())
            _feed(digest, item[key])
    elif isinstance(item, (list, tuple)):
        for part in item:
            _feed(digest, part)
    elif isinstance(item, (str, bytes, int, float, bool)) or item is None:
        digest.update(repr(item).encode())
    else:  # arrays and PIL images
        array = np.ascontiguousarray(np.asarray(item))
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())


def data_fingerprint(dataset: Dataset, length: int = 8) -> str:
    """``length`` hex digits of the sha256 of ``dataset``'s size and its first and last items.

    Cheap (two items are read) and enough to tell the embedded train split from a cut-down one
    (``data.*`` overrides of a tiny test run) or another dataset; it is not a content hash of
    every image.
    """
    digest = hashlib.sha256()
    size = len(dataset)  # type: ignore[arg-type]
    digest.update(str(size).encode())
    for index in sorted({0, size - 1}) if size else ():
        _feed(digest, dataset[index])
    return digest.hexdigest()[:length]


def _write_atomically(state: dict[str, Tensor], path: Path) -> None:
    """``torch.save`` of ``state`` through a temporary file and a rename. Serialised in memory
    first: ``torch.save`` to a path names the archive's folder after the file, and the
    temporary name would make equal weights hash differently."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_judge(net: nn.Module, path: str | Path, fit: Callable[[nn.Module], Any]) -> nn.Module:
    """``net`` with the weights cached at ``path``, trained by ``fit(net)`` (and cached) when
    the file does not exist yet.

    The file is a plain state dict read with ``weights_only=True`` (never code). ``fit`` runs
    with the global random state saved and restored (the caller's training is the same with or
    without a cache); it seeds itself. ``net.protocol`` (when the net has one) gets
    ``weights <path> sha256 <12 hex>`` appended.

    Args:
        net: the judge as built (its architecture).
        path: the cache file.
        fit: trains ``net`` in place.

    Returns:
        ``net``, frozen (``requires_grad`` False) and in eval mode.

    Raises:
        ValueError: the cached weights do not fit ``net``, naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        log.info("training the judge %s (cached at %s)", getattr(net, "name", ""), path)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            net.requires_grad_(True).train()
            fit(net)
        _write_atomically({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"{path}: the cached judge's weights do not fit the configured network ({error}); "
            "delete the file to retrain it, or give the judge another name"
        ) from None
    if hasattr(net, "protocol"):
        net.protocol = f"{net.protocol}, weights {path.name} sha256 {sha256_prefix(path)}"
    return net.requires_grad_(False).eval()


def seeded_one_cycle_adam(
    net: nn.Module, *, lr: float, steps: int, seed: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Seed torch's global generator with ``seed``, then Adam over ``net``'s parameters with a
    one-cycle schedule peaking at ``lr`` over ``steps`` steps (at least one): how cvbench
    trains its judges."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, steps))
    return optimizer, schedule


def fit_classifier(
    net: nn.Module, loader: DataLoader, *, epochs: int, lr: float, seed: int
) -> None:
    """Train ``net`` (``forward(images) -> (features, logits)``) as a classifier with Adam and
    cross-entropy on the labelled images of ``loader`` (batches with ``images`` (B, 3, H, W)
    in [0, 1] and ``labels`` (B,) int64; -1 ignored), seeded by ``seed``.

    Args:
        net: the classifier, trained in place on the CPU or where its parameters are.
        loader: the training batches (its order is drawn from the seeded global generator).
        epochs: passes over ``loader``.
        lr: Adam's learning rate.
        seed: seeds torch's global generator (initial weights are the caller's).
    """
    optimizer, schedule = seeded_one_cycle_adam(net, lr=lr, steps=epochs * len(loader), seed=seed)
    device = next(net.parameters()).device
    net.train()
    for _ in range(epochs):
        for batch in loader:
            images, labels = batch.images.to(device), batch.labels.to(device)
            _, logits = net(images)
            loss = nn.functional.cross_entropy(logits, labels, ignore_index=-1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, loader: DataLoader) -> float | None:
    """Top-1 accuracy in % of ``net``'s logits on the labelled images of ``loader`` (None
    when none is labelled)."""
    device = next(net.parameters()).device
    right = total = 0
    for batch in loader:
        labels = batch.labels.to(device)
        _, logits = net(batch.images.to(device))
        known = labels >= 0
        right += int((logits.argmax(1)[known] == labels[known]).sum())
        total += int(known.sum())
    return 100.0 * right / total if total else None


def split_loader(
    datamodule: Any, split: str, *, shuffle: bool, seed: int, batch_size: int | None = None
) -> DataLoader:
    """A plain dataloader over ``split`` of a cvbench datamodule (no distributed sampler: every
    process sees the whole split), in batches of ``batch_size`` (default: the datamodule's)."""
    return DataLoader(
        datamodule.split(split),
        batch_size=datamodule.batch_size if batch_size is None else batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=datamodule.collate_fn,
    )


def cache_file(cache_path: str | Path, train: Dataset) -> Path:
    """The judge's cache file for this train split: ``<stem>-<fingerprint><suffix>`` next to
    the configured ``cache_path``."""
    path = Path(cache_path)
    return path.with_name(f"{path.stem}-{data_fingerprint(train)}{path.suffix}")


def prepare_cached(
    judge: nn.Module, trainer: pl.Trainer, fit: Callable[[nn.Module], Any]
) -> nn.Module:
    """Train (by ``fit``) or load a judge that has a ``cache_path``, for the run's train split
    (:func:`cache_file`); a judge without one (TF-Inception, a placeholder) is only frozen.

    The process of rank 0 trains and caches it, the others wait and then read the cache.
    """
    if not getattr(judge, "cache_path", None):
        return judge.requires_grad_(False).eval()
    path = cache_file(judge.cache_path, trainer.datamodule.split("train"))
    if trainer.global_rank == 0:
        cached_judge(judge, path, fit)
    trainer.strategy.barrier("cvbench_judge")  # the others read what rank 0 wrote
    if trainer.global_rank != 0:
        cached_judge(judge, path, fit)
    return judge


def prepare_judge(judge: nn.Module, trainer: pl.Trainer) -> nn.Module:
    """Train or load a judge that has a ``cache_path`` (``FeatureCNN``) as a classifier of the
    run's train split, and record its test accuracy in its protocol; any other judge
    (TF-Inception) is left as it is.

    Raises:
        ValueError: the data has no class labels to train it on (an unlabelled image folder).
    """
    if not getattr(judge, "cache_path", None):
        return judge.requires_grad_(False).eval()
    datamodule = trainer.datamodule
    if getattr(datamodule, "num_classes", None) is None:
        raise ValueError(
            f"task.module.judge: {judge.name} is trained as a classifier of the train split's "
            f"class labels, but data {getattr(datamodule, 'name', '')!r} has none; give the "
            "images class subfolders and data.num_classes, or judge with the TF-Inception "
            "(judge@task.module.judge=inception_v3_tf and its weights file)"
        )
    seed, size = int(judge.train_seed), int(judge.train_batch_size)

    def fit(net: nn.Module) -> None:
        loader = split_loader(datamodule, "train", batch_size=size, shuffle=True, seed=seed)
        fit_classifier(net, loader, epochs=judge.train_epochs, lr=judge.train_lr, seed=seed)

    prepare_cached(judge, trainer, fit)
    if "test accuracy" not in judge.protocol:
        test = split_loader(datamodule, "test", batch_size=size, shuffle=False, seed=0)
        score = accuracy(judge, test)
        if score is not None:
            judge.protocol = f"{judge.protocol}, test accuracy {score:.1f}%"
    return judge

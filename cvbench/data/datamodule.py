"""Lightning datamodule for image classification: records + albumentations + batching.

Each sample is ``(image, target, index)``, batched as a
:class:`~cvbench.data.batches.ClassificationBatch`: the dataset index travels with the sample so
that metrics can drop the duplicates a distributed sampler pads each shard with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from cvbench.data.batches import ClassificationBatch
from cvbench.data.records import ClassificationRecords

log = logging.getLogger(__name__)

SPLIT_SEED_OFFSET = {"train": 0, "val": 1, "test": 2}
STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert an image to ``channels`` channels.

    Args:
        image: (H, W) or (H, W, C) uint8, C in {1, 3, 4}; alpha is dropped.
        channels: 1 (gray, ITU-R 601 luma as PIL's "L") or 3 (RGB).

    Returns:
        (H, W, channels) uint8.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    c = image.shape[2]
    if c == 4:
        image, c = image[:, :, :3], 3
    if c == channels:
        return image
    if channels == 3 and c == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 1 and c == 3:
        luma = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.round(luma).astype(np.uint8)[:, :, None]
    raise ValueError(f"cannot convert an image with {c} channels to {channels}")


def seed_transform(transform: Callable | None, seed: int) -> None:
    """Seed an albumentations pipeline's own RNG (it ignores the global seeds)."""
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed % 2**32)


def _random_nodes(transform: object) -> list[object]:
    """The pipeline and each of its transforms, depth first, that hold random streams: in
    albumentations 2 each holds its own ``random_generator`` (NumPy) and ``py_random``
    (Python)."""
    nodes = [transform] if hasattr(transform, "random_generator") else []
    for child in getattr(transform, "transforms", None) or ():
        nodes += _random_nodes(child)
    return nodes


def transform_state(transform: Callable | None) -> list[dict[str, Any]] | None:
    """Where an albumentations pipeline's own random streams stand, as plain Python values
    (one entry per pipeline node, depth first); None for a transform without them.

    albumentations has no call for this (``set_random_seed`` only restarts the streams), so
    it is read from the generators ``set_random_seed`` makes.
    """
    if not hasattr(transform, "set_random_seed"):
        return None
    return [
        {"numpy": node.random_generator.bit_generator.state, "python": node.py_random.getstate()}
        for node in _random_nodes(transform)
    ]


def set_transform_state(transform: Callable | None, state: list[dict[str, Any]] | None) -> bool:
    """Put an albumentations pipeline's random streams where :func:`transform_state` found
    them. False, and nothing changed, when the state has another number of streams than the
    pipeline (its config changed since)."""
    if state is None or not hasattr(transform, "set_random_seed"):
        return True
    nodes = _random_nodes(transform)
    if len(nodes) != len(state):
        return False
    for node, saved in zip(nodes, state, strict=True):
        node.random_generator.bit_generator.state = saved["numpy"]
        node.py_random.setstate(saved["python"])
    return True


def seed_worker_transform(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a different, reproducible augmentation stream per worker.

    ``get_worker_info().seed`` is drawn from the main process's torch RNG for each epoch's
    workers, so it follows ``seed_everything``.
    """
    info = torch.utils.data.get_worker_info()
    seed_transform(info.dataset.transform, info.seed)


class TransformedRecords(Dataset):
    """Records with channel conversion and an albumentations transform.

    ``__getitem__`` returns ``(image, target, index)``: image (C, H, W) as the transform
    makes it (float32 after Normalize + ToTensorV2), target and index ints.
    """

    def __init__(
        self, records: ClassificationRecords, transform: Callable | None, channels: int
    ) -> None:
        self.records = records
        self.transform = transform
        self.channels = channels

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image = to_channels(self.records.load(index), self.channels)
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        else:
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return image, int(self.records.targets[index]), index


def check_targets(records: ClassificationRecords, num_classes: int, where: str) -> None:
    """Raise if a label is outside ``[0, num_classes)``, naming the first such sample."""
    targets = np.asarray(records.targets)
    bad = np.flatnonzero((targets < 0) | (targets >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{where}: label {int(targets[i])} of {records.source(i)} (sample {i}) is outside "
            f"[0, {num_classes}); {len(bad)} sample(s) like it. Set data.num_classes to the "
            f"dataset's number of classes or fix the labels."
        )


class RecordsDataModule(pl.LightningDataModule):
    """What every cvbench datamodule shares: one records reader for all splits, an
    albumentations transform per split seeded from the run's seed, and the dataloaders.

    Subclasses say how a split's records become a dataset (:meth:`make_dataset`) and how
    samples are batched (:attr:`collate_fn`).

    Args:
        name: dataset name, used in messages and records.
        records: builds the records of one split, called as ``records(split=...)``.
        transforms: albumentations transform per split ("train", "val", "test").
        batch_size: batch size per process.
        num_workers: dataloader worker processes.
        pin_memory: pin host memory (for GPU training).
        split_names: the dataset's own name of a split where it differs from cvbench's
            "train" / "val" / "test" (e.g. ``{"test": "val2017"}`` for COCO, whose test-dev
            annotations are not public); ``records`` is called with that name.
    """

    collate_fn: Callable | None = None  # None: torch's default collation

    def __init__(
        self,
        *,
        name: str,
        records: Callable[..., object],
        transforms: Mapping[str, Callable] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        split_names: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.split_names = dict(split_names or {})
        self.records = records
        self.transforms = dict(transforms or {})
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.datasets: dict[str, Dataset] = {}
        self._loaded_transform_states: dict[str, Any] = {}

    def refuse_eval_transforms(self, why: str) -> None:
        """Raise unless the val and test transforms are null (a family whose evaluation input
        is fixed); ``why`` says what evaluation does instead.

        Raises:
            ValueError: naming ``data.transforms.<split>``.
        """
        for split in ("val", "test"):
            if self.transforms.get(split) is not None:
                raise ValueError(f"data.transforms.{split} must be null: {why}")

    def make_dataset(self, records: object, transform: Callable | None, split: str) -> Dataset:
        """The dataset of one split's records, checked against the data config."""
        raise NotImplementedError

    def split(self, split: str) -> Dataset:
        """The dataset of ``split`` with its transform, built and checked on first use."""
        if split not in self.datasets:
            records = self.records(split=self.split_names.get(split, split))
            if len(records) == 0:
                raise ValueError(f"data '{self.name}': split '{split}' has no images")
            transform = self.transforms.get(split)
            # Without workers the pipeline runs here: seed it from the run's seed.
            seed_transform(transform, torch.initial_seed() + SPLIT_SEED_OFFSET[split])
            self._restore_transform(split, self._loaded_transform_states.pop(split, None))
            self.datasets[split] = self.make_dataset(records, transform, split)
        return self.datasets[split]

    def state_dict(self) -> dict[str, Any]:
        """Where the augmentation pipelines of the splits built so far stand (their own
        random streams, which run in this process when ``num_workers`` is 0); Lightning writes
        it into every checkpoint, and a resumed run continues the streams from there."""
        states = {split: transform_state(self.transforms.get(split)) for split in self.datasets}
        return {"transform_states": {k: v for k, v in states.items() if v is not None}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s streams: now for the splits already built, when built
        for the others."""
        for split, state in state_dict.get("transform_states", {}).items():
            if split in self.datasets:
                self._restore_transform(split, state)
            else:
                self._loaded_transform_states[split] = state

    def _restore_transform(self, split: str, state: list[dict[str, Any]] | None) -> None:
        if not set_transform_state(self.transforms.get(split), state):
            log.warning(
                "data '%s': the checkpoint's state of the '%s' augmentations does not fit the "
                "configured pipeline (changed since?): it starts from its seed instead",
                self.name,
                split,
            )

    def setup(self, stage: str | None = None) -> None:
        for split in STAGE_SPLITS.get(stage or "fit", ("train", "val", "test")):
            self.split(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.split(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_worker_transform if self.num_workers > 0 else None,
            collate_fn=self.collate_fn,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def collate_classification(samples: Sequence[tuple[torch.Tensor, int, int]]) -> ClassificationBatch:
    """torch's default collation of ``(image, target, index)`` samples, as a
    :class:`~cvbench.data.batches.ClassificationBatch`: images (B, C, H, W), targets and
    indices (B,) int64."""
    images, targets, indices = default_collate(samples)
    return ClassificationBatch(images, targets, indices)


class ClassificationDataModule(RecordsDataModule):
    """Batches of :class:`~cvbench.data.batches.ClassificationBatch`: ``(images (B, C, H, W)
    float32, targets (B,) int64, indices (B,) int64)``.

    Args:
        num_classes: number of classes; every label is checked against it.
        num_channels: channels of the images the model receives (1 or 3).
        **kwargs: ``name``, ``records``, ``transforms``, ... of :class:`RecordsDataModule`.
    """

    collate_fn = staticmethod(collate_classification)

    def __init__(self, *, num_classes: int, num_channels: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_channels not in (1, 3):
            raise ValueError(f"data.num_channels must be 1 or 3, got {num_channels}")
        self.num_classes = num_classes
        self.num_channels = num_channels

    def make_dataset(
        self, records: ClassificationRecords, transform: Callable | None, split: str
    ) -> TransformedRecords:
        check_targets(records, self.num_classes, f"data '{self.name}' split '{split}'")
        return TransformedRecords(records, transform, self.num_channels)

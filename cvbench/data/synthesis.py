"""Lightning datamodule for image synthesis (DCGAN, DDPM): the real images a generator learns,
with their class where the data has one, as :class:`~cvbench.data.batches.ImageBatch`.

Records are classification records (scikit-learn's digits, an image folder with one subfolder
per class: labels are class ids) or plain image records (labels -1). Every image is made RGB
(gray repeated) and square: its short side resized to ``image_size`` with PIL's bilinear filter
(antialiased when it shrinks; rounded to uint8 as a saved file would hold it), then
centre-cropped. This resize is part of the FID protocol (the real images' statistics depend
on it), so it is fixed, the same in every split, and named by
:meth:`SynthesisDataModule.real_protocol`.
Training may flip images horizontally (``flip``), with one seed per sample drawn from torch's
generator (which ``seed_everything``, the workers and cvbench's exact resume govern);
evaluation is deterministic, in index order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import ImageBatch
from cvbench.data.datamodule import RecordsDataModule, check_targets, to_channels
from cvbench.data.degradations import to_tensor
from cvbench.data.jitter import resize_square

RESIZE = "short side resized with PIL bilinear (rounded to uint8), centre crop, gray->RGB"


def is_labelled(records: object) -> bool:
    """Whether ``records`` give class ids (``targets`` and ``classes``)."""
    return hasattr(records, "targets") and getattr(records, "classes", None) is not None


class SynthesisSamples(Dataset):
    """The images of one split as ``(image (3, S, S) float32 in [0, 1], label, index)``.

    Args:
        records: images (``load(i)`` (H, W[, C]) uint8), with ``targets`` when labelled.
        image_size: side S of every image.
        flip: random horizontal flips (training).
        cache: keep the resized uint8 images in memory (each process and worker its own copy).
    """

    def __init__(self, records: Any, *, image_size: int, flip: bool, cache: bool) -> None:
        self.records = records
        self.image_size = image_size
        self.flip = flip
        self.labels = (
            np.asarray(records.targets, dtype=np.int64)
            if is_labelled(records)
            else np.full(len(records), -1, dtype=np.int64)
        )
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as the protocol makes it: (S, S, 3) uint8."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image = resize_square(to_channels(self.records.load(index), 3), self.image_size)
        if self.cache is not None:
            self.cache[index] = image
        return image

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        image = self.image(index)
        if self.flip and int(torch.randint(2, ())):  # torch's generator: see the module doc
            image = np.ascontiguousarray(image[:, ::-1])
        return to_tensor(image), int(self.labels[index]), index


def collate_images(samples: Sequence[tuple[Tensor, int, int]]) -> ImageBatch:
    """An :class:`~cvbench.data.batches.ImageBatch`: images (B, 3, S, S), labels and indices
    (B,) int64."""
    return ImageBatch(
        images=torch.stack([s[0] for s in samples]),
        labels=torch.tensor([s[1] for s in samples], dtype=torch.int64),
        indices=torch.tensor([s[2] for s in samples], dtype=torch.int64),
    )


class SynthesisDataModule(RecordsDataModule):
    """Batches of real images for image synthesis (see the module docstring).

    Args:
        image_size: side of every image, pixels.
        flip: random horizontal flips in training (off for digits: a mirrored digit is not
            one).
        num_classes: the number of classes (what a class-conditional model reads as
            ``${data.num_classes}``), checked against labelled records; None for unlabelled
            data (or to take the records' count).
        cache: keep the resized images in memory (small data visited many times).
        **kwargs: ``name``, ``records``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule` (no ``transforms``).
    """

    collate_fn = staticmethod(collate_images)

    def __init__(
        self,
        *,
        image_size: int = 64,
        flip: bool = False,
        num_classes: int | None = None,
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if image_size < 1:
            raise ValueError(f"data.image_size must be >= 1, got {image_size}")
        if any(t is not None for t in self.transforms.values()):
            raise ValueError("data.transforms must be empty: the resize is fixed (data.flip)")
        self.image_size = image_size
        self.flip = flip
        self.num_classes = num_classes
        self.cache = cache

    def make_dataset(self, records: Any, transform: Any, split: str) -> SynthesisSamples:
        if is_labelled(records):
            where = f"data '{self.name}' split '{split}'"
            if self.num_classes is None:
                self.num_classes = len(records.classes)
            if len(records.classes) != self.num_classes:
                raise ValueError(
                    f"{where}: {len(records.classes)} classes {list(records.classes)[:5]}... "
                    f"but data.num_classes={self.num_classes}"
                )
            check_targets(records, self.num_classes, where)
        return SynthesisSamples(
            records,
            image_size=self.image_size,
            flip=self.flip and split == "train",
            cache=self.cache,
        )

    @property
    def class_names(self) -> list[str] | None:
        """The class names (index = class id) of labelled data, else None."""
        split = next(iter(self.datasets), "train")
        records = self.split(split).records
        return list(records.classes) if is_labelled(records) else None

    def real_protocol(self, split: str = "test") -> str:
        """One line naming the real images of ``split`` as the metrics see them, e.g.
        ``"digits test split (360 images, 8x8 px) -> 32x32 px: short side resized with PIL
        bilinear (rounded to uint8), centre crop, gray->RGB"``."""
        records = self.split(split).records
        size = ""
        images = getattr(records, "images", None)
        if isinstance(images, np.ndarray):  # in-memory records: one size for all
            size = f", {images.shape[2]}x{images.shape[1]} px"
        return (
            f"{self.name} {split} split ({len(records)} images{size}) -> "
            f"{self.image_size}x{self.image_size} px: {RESIZE}"
        )

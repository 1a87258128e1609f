"""Lightning datamodule for text recognition (CRNN + CTC, Shi et al., 2017): word crops and
their transcriptions as :class:`~cvbench.data.batches.TextBatch`.

Every crop is made gray (``channels: 1``, ITU-R 601 luma) or RGB, resized to ``height`` pixels
keeping its aspect ratio (``cv2.INTER_AREA`` when it shrinks, bilinear when it grows), a crop
wider than ``max_width`` squeezed to it, and scaled to [0, 1]. A batch pads each crop on the
right to the batch's widest by repeating its last column, as clovaai's deep-text-recognition-
benchmark ``NormalizePAD`` does: the padding continues the crop's own background (black would
add an edge to a light word on a dark ground), and ``widths`` gives each crop's own width.

The train transform (an albumentations pipeline on the (height, w, C) uint8 crop, after the
resize; a crop it leaves at another height or wider than ``max_width`` is resized again)
augments; evaluation has none and keeps index order. Labels are read once when a split is set
up, lowercased if ``lowercase`` (clovaai's default "case-insensitive" training), and every one
checked against the charset: a character outside it is an error naming the record, the
character and its position, or with ``unknown: skip`` the sample is dropped and the count
logged (clovaai drops them silently).

``extra_test_splits`` names further test sets (``test_unseen_font``): ``test_dataloader()`` then
returns ``[test, *extra]`` and :attr:`TextRecognitionDataModule.test_split_names` their names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from cvbench.data.batches import TextBatch
from cvbench.data.charset import Charset
from cvbench.data.datamodule import STAGE_SPLITS, RecordsDataModule, to_channels
from cvbench.data.records import TextRecords

log = logging.getLogger(__name__)

UNKNOWN = ("error", "skip")


def resize_to_height(image: np.ndarray, height: int, max_width: int) -> np.ndarray:
    """``image`` (H, W, C) uint8 resized to ``height`` rows, its aspect ratio kept and its width
    capped at ``max_width`` (a wider crop is squeezed).

    >>> resize_to_height(np.zeros((16, 40, 1), np.uint8), 32, 128).shape
    (32, 80, 1)
    >>> resize_to_height(np.zeros((16, 100, 1), np.uint8), 32, 128).shape
    (32, 128, 1)
    """
    h, w, c = image.shape
    width = min(max(1, round(w * height / h)), max_width)
    if (h, w) == (height, width):
        return image
    shrink = width < w or height < h
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation).reshape(height, width, c)


class TextSubset:
    """The records of ``records`` at ``kept`` indices, renumbered 0..len-1 (the samples that
    ``unknown: skip`` keeps)."""

    def __init__(self, records: TextRecords, kept: Sequence[int]) -> None:
        self.records = records
        self.kept = list(kept)

    def __len__(self) -> int:
        return len(self.kept)

    def load(self, index: int) -> np.ndarray:
        return self.records.load(self.kept[index])

    def text(self, index: int) -> str:
        return self.records.text(self.kept[index])

    def name(self, index: int) -> str:
        return self.records.name(self.kept[index])

    def source(self, index: int) -> str:
        return self.records.source(self.kept[index])


class TextSamples(Dataset):
    """One split as ``(image (C, height, w) float32 in [0, 1], text, codes, name, index)``.

    Args:
        records: the split's records.
        texts: the label of each record as the model learns it (lowercased if asked).
        charset: encodes the labels (each already checked).
        transform: albumentations pipeline on the resized uint8 crop, or None.
        channels: 1 or 3.
        height: rows of every crop.
        max_width: widest crop, pixels.
    """

    def __init__(
        self,
        records: TextRecords,
        texts: list[str],
        charset: Charset,
        transform: Callable | None,
        *,
        channels: int,
        height: int,
        max_width: int,
    ) -> None:
        self.records = records
        self.texts = texts
        self.codes = [charset.encode(text) for text in texts]
        self.transform = transform
        self.channels = channels
        self.height = height
        self.max_width = max_width

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> np.ndarray:
        """Crop ``index`` as the model sees it: (height, w, C) uint8."""
        image = to_channels(self.records.load(index), self.channels)
        image = resize_to_height(image, self.height, self.max_width)
        if self.transform is not None:
            image = self.transform(image=image)["image"]
            if image.ndim == 2:
                image = image[:, :, None]
            if image.shape[0] != self.height or image.shape[1] > self.max_width:
                image = resize_to_height(image, self.height, self.max_width)
        return image

    def __getitem__(self, index: int) -> tuple[Tensor, str, list[int], str, int]:
        image = torch.from_numpy(np.ascontiguousarray(self.image(index).transpose(2, 0, 1)))
        text = self.texts[index]
        return image.float() / 255.0, text, self.codes[index], self.records.name(index), index


def collate_text(samples: Sequence[tuple[Tensor, str, list[int], str, int]]) -> TextBatch:
    """A :class:`~cvbench.data.batches.TextBatch`: crops padded on the right to the widest by
    repeating their last column, codes padded with 0 (the CTC blank) to the longest text."""
    images, texts, codes, names, indices = zip(*samples, strict=True)
    widths = torch.tensor([image.shape[2] for image in images], dtype=torch.int64)
    widest = int(widths.max())
    padded = torch.stack(
        [
            torch.cat([im, im[:, :, -1:].expand(-1, -1, widest - im.shape[2])], dim=2)
            for im in images
        ]
    )
    lengths = torch.tensor([len(c) for c in codes], dtype=torch.int64)
    targets = torch.zeros(len(codes), max(1, int(lengths.max())), dtype=torch.int64)
    for row, c in enumerate(codes):
        targets[row, : len(c)] = torch.tensor(c, dtype=torch.int64)
    return TextBatch(
        images=padded,
        widths=widths,
        texts=list(texts),
        targets=targets,
        lengths=lengths,
        names=list(names),
        indices=torch.tensor(indices, dtype=torch.int64),
    )


class TextRecognitionDataModule(RecordsDataModule):
    """Batches of word crops for text recognition (see the module docstring).

    Args:
        charset: the characters the model reads (``conf/charset/``); exposed as ``.charset``.
        channels: 1 (gray) or 3 (RGB).
        height: rows of every crop (CRNN's 32).
        max_width: widest crop, pixels; a wider one is squeezed to it.
        lowercase: lowercase every label before it is checked and encoded.
        unknown: a label character outside the charset is an ``"error"``, or its sample is
            dropped (``"skip"``, with a logged count).
        extra_test_splits: further test splits (e.g. ``["test_unseen_font"]``), read as
            ``records(split=name)`` without augmentation.
        **kwargs: ``name``, ``records``, ``transforms``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`.
    """

    collate_fn = staticmethod(collate_text)

    def __init__(
        self,
        *,
        charset: Charset,
        channels: int = 1,
        height: int = 32,
        max_width: int = 128,
        lowercase: bool = False,
        unknown: Literal["error", "skip"] = "error",
        extra_test_splits: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}")
        if height < 1 or max_width < 1:
            raise ValueError(f"data.height and data.max_width must be >= 1: {height}, {max_width}")
        if unknown not in UNKNOWN:
            raise ValueError(f"data.unknown={unknown!r}: expected one of {UNKNOWN}")
        clash = set(extra_test_splits) & {"train", "val", "test"}
        if clash or len(set(extra_test_splits)) != len(extra_test_splits):
            raise ValueError(
                f"data.extra_test_splits={list(extra_test_splits)}: expected distinct names "
                "other than train, val and test"
            )
        self.charset = charset
        self.channels = channels
        self.height = height
        self.max_width = max_width
        self.lowercase = lowercase
        self.unknown = unknown
        self.extra_test_splits = list(extra_test_splits)

    @property
    def test_split_names(self) -> list[str]:
        """The splits :meth:`test_dataloader` returns, in its order."""
        return ["test", *self.extra_test_splits]

    def split(self, split: str) -> Dataset:
        if split in self.extra_test_splits and split not in self.datasets:
            records = self.records(split=self.split_names.get(split, split))
            if len(records) == 0:
                raise ValueError(f"data '{self.name}': split '{split}' has no images")
            self.datasets[split] = self.make_dataset(records, None, split)
        return super().split(split)

    def setup(self, stage: str | None = None) -> None:
        splits = STAGE_SPLITS.get(stage or "fit", ("train", "val", "test"))
        for split in splits:
            self.split(split)
        if "test" in splits:
            for split in self.extra_test_splits:
                self.split(split)

    def make_dataset(
        self, records: TextRecords, transform: Callable | None, split: str
    ) -> TextSamples:
        texts = [records.text(i) for i in range(len(records))]
        if self.lowercase:
            texts = [text.lower() for text in texts]
        bad = [i for i, text in enumerate(texts) if self.charset.unknown(text) is not None]
        where = f"data '{self.name}' split '{split}'"
        if bad and self.unknown == "error":
            i = bad[0]
            position, char = self.charset.unknown(texts[i])
            raise ValueError(
                f"{where}: {records.source(i)}: character {char!r} (U+{ord(char):04X}) at "
                f"position {position} of label {texts[i]!r} is not in the "
                f"{self.charset.describe()}; {len(bad)} label(s) like it. Choose a charset "
                "that holds it (charset@data.charset=...), data.lowercase=true, or "
                "data.unknown=skip to drop such samples"
            )
        if bad:
            log.warning(
                "%s: dropped %d of %d samples whose label has a character outside the %s "
                "(data.unknown=skip), e.g. %s",
                where,
                len(bad),
                len(texts),
                self.charset.describe(),
                records.source(bad[0]),
            )
            drop = set(bad)
            kept = [i for i in range(len(texts)) if i not in drop]
            if not kept:
                raise ValueError(f"{where}: every label has a character outside the charset")
            records, texts = TextSubset(records, kept), [texts[i] for i in kept]
        return TextSamples(
            records,
            texts,
            self.charset,
            transform,
            channels=self.channels,
            height=self.height,
            max_width=self.max_width,
        )

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test split's loader, or ``[test, *extra_test_splits]`` when there are extras."""
        if not self.extra_test_splits:
            return self._loader("test", shuffle=False)
        return [self._loader(split, shuffle=False) for split in self.test_split_names]

"""Lightning datamodule for image restoration: clean images degraded on the fly, or pre-paired
super-resolution folders.

A sample is ``{"input", "target", "image", "index"}``: the network's input, its training target
(the RGB image, or a*b* for colorization), the clean RGB image the result is scored against
(float32 (C, H, W) in [0, 1]) and the dataset index; batches are
:class:`~cvbench.data.batches.PairBatch`. Records are
:class:`~cvbench.data.records.ImageRecords`, or :class:`~cvbench.data.records.PairedRecords`
when the inputs are on disk. Training samples are random crops of
``patch_size`` (flipped and rotated by the train transform), each image visited ``repeat``
times an epoch; evaluation samples are whole images, each with its own fixed random state
(``eval_seed`` and the index), so every run scores the same inputs (the same inpainting masks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import PairBatch, stack_or_list
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.degradations import Sample, to_tensor
from cvbench.data.records import ImageRecords
from cvbench.data.resize import modcrop


class Degradation(Protocol):
    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> Sample: ...


def paired_crop(
    lr: np.ndarray, hr: np.ndarray, *, patch: int, scale: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``patch`` x ``patch`` crop of ``lr`` and the aligned ``patch * scale`` crop of
    ``hr``. Written here because albumentations crops its targets to one size only.

    >>> lr, hr = paired_crop(np.zeros((8, 9)), np.zeros((16, 18)), patch=4, scale=2,
    ...                      rng=np.random.default_rng(0))
    >>> lr.shape, hr.shape
    ((4, 4), (8, 8))
    """
    h, w = lr.shape[:2]
    if h < patch or w < patch:
        raise ValueError(f"input of {h}x{w} is smaller than the patch ({patch} = patch_size/scale)")
    top, left = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
    lr_crop = lr[top : top + patch, left : left + patch]
    s = scale
    return lr_crop, hr[top * s : (top + patch) * s, left * s : (left + patch) * s]


class RestorationSamples(Dataset):
    """Samples of one split (see the module docstring).

    Args:
        records: images (``load(i)`` (H, W, 3) uint8, ``source(i)``, ``name(i)``); paired
            records (:class:`~cvbench.data.records.PairedRecords`) also ``load_input(i)``.
        transform: albumentations transform of uint8 images (train: crop, flips, rotations;
            it gets a paired input as the additional target ``input``), or None.
        degradation: makes the sample of a clean image; None for paired records.
        scale: super-resolution factor (1 otherwise): images are modcropped to it.
        patch_size: side of the training crop of paired records (of the HR image).
        repeat: samples per image in one pass (training).
        train: random state drawn per sample (else fixed per index from ``eval_seed``).
        eval_seed: the seed of the evaluation samples' random state.
        cache: keep every decoded image in memory (each process and worker its own copy): for
            few images visited many times, whose decoding would cost more than training.
    """

    def __init__(
        self,
        records: ImageRecords,
        *,
        transform: Callable | None,
        degradation: Degradation | None,
        scale: int = 1,
        patch_size: int | None = None,
        repeat: int = 1,
        train: bool = False,
        eval_seed: int = 0,
        cache: bool = False,
    ) -> None:
        self.records = records
        self.transform = transform
        self.degradation = degradation
        self.scale = scale
        self.patch_size = patch_size
        self.repeat = repeat
        self.train = train
        self.eval_seed = eval_seed
        self.cache: dict[tuple[str, int], np.ndarray] | None = {} if cache else None

    def _load(self, kind: str, index: int) -> np.ndarray:
        """``records.load(index)`` (kind "load") or ``records.load_input(index)``, cached."""
        if self.cache is None:
            return getattr(self.records, kind)(index)
        if (kind, index) not in self.cache:
            self.cache[kind, index] = getattr(self.records, kind)(index)
        return self.cache[kind, index]

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    def _rng(self, index: int) -> np.random.Generator:
        if self.train:  # torch's RNG follows seed_everything and the dataloader workers
            return np.random.default_rng(int(torch.randint(2**62, ())))
        return np.random.default_rng([self.eval_seed, index])

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        index = item % len(self.records)
        rng = self._rng(index)
        if self.degradation is None:
            sample = self._paired(index, rng)
        else:
            image = modcrop(self._load("load", index), self.scale)
            if self.transform is not None:
                image = self.transform(image=image)["image"]
            sample = self.degradation(image, rng)
        return {**sample, "index": index}

    def _paired(self, index: int, rng: np.random.Generator) -> Sample:
        hr, lr = self._load("load", index), self._load("load_input", index)
        if self.train and self.patch_size is not None:
            lr, hr = paired_crop(
                lr, hr, patch=self.patch_size // self.scale, scale=self.scale, rng=rng
            )
        if self.transform is not None:
            out = self.transform(image=hr, input=lr)
            hr, lr = out["image"], out["input"]
        clean = to_tensor(hr)
        return {"input": to_tensor(lr), "target": clean, "image": clean}


def collate_restoration(samples: Sequence[dict[str, Tensor | int]]) -> PairBatch:
    """A :class:`~cvbench.data.batches.PairBatch`: each of ``input``, ``target``, ``image``
    stacked when its sizes agree, else a list; ``index`` (B,) int64."""
    stacked = {
        key: stack_or_list([s[key] for s in samples]) for key in ("input", "target", "image")
    }
    index = torch.tensor([s["index"] for s in samples], dtype=torch.int64)
    return PairBatch(**stacked, index=index)


class RestorationDataModule(RecordsDataModule):
    """Batches of restoration samples (see the module docstring).

    Args:
        degradation: makes samples of clean images (the task's, ``${task.degradation}``); None
            when the records are pre-paired (DIV2K's ``LR_bicubic``).
        scale: super-resolution factor (images are modcropped to it); 1 for other tasks.
        patch_size: side of the training crops (the train transform reads it as
            ``${data.patch_size}``; paired records are cropped here to it).
        repeat: training samples per image and epoch (few, large images).
        eval_seed: seed of the evaluation samples (inpainting's fixed test masks).
        cache: keep decoded images in memory (see :class:`RestorationSamples`).
        **kwargs: ``name``, ``records``, ``transforms``, ... of :class:`RecordsDataModule`.
    """

    collate_fn = staticmethod(collate_restoration)

    def __init__(
        self,
        *,
        degradation: Degradation | None,
        scale: int = 1,
        patch_size: int | None = None,
        repeat: int = 1,
        eval_seed: int = 0,
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if patch_size is not None and patch_size % scale:
            raise ValueError(
                f"data.patch_size={patch_size} is not a multiple of data.scale={scale}: the "
                "input crop would not align with the target"
            )
        if repeat < 1:
            raise ValueError(f"data.repeat must be >= 1, got {repeat}")
        self.degradation = degradation
        self.scale = scale
        self.patch_size = patch_size
        self.repeat = repeat
        self.eval_seed = eval_seed
        self.cache = cache

    def make_dataset(
        self, records: ImageRecords, transform: Callable | None, split: str
    ) -> RestorationSamples:
        if self.degradation is None and not hasattr(records, "load_input"):
            raise ValueError(
                f"data '{self.name}': data.degradation is null but the records are not paired "
                "(no low-resolution inputs); set data.degradation (e.g. ${task.degradation})"
            )
        train = split == "train"
        return RestorationSamples(
            records,
            transform=transform,
            degradation=self.degradation,
            scale=self.scale,
            patch_size=self.patch_size,
            repeat=self.repeat if train else 1,
            train=train,
            eval_seed=self.eval_seed,
            cache=self.cache,
        )

"""Lightning datamodules for image-to-image translation: aligned pairs (pix2pix, Isola et al.,
2017) and two unpaired domains (CycleGAN, Zhu et al., 2017).

- :class:`PairedDataModule` reads :class:`~cvbench.data.formats.paired_images.PairedImages`
  (``load_input`` the source, ``load`` the target, ``load_labels`` where the data has label
  maps) and yields :class:`~cvbench.data.batches.TranslationBatch`. ``label_map`` holds the
  class ids of the source: the records' label maps (the embedded shapes), else the index of the
  ``palette`` colour each source pixel has (a label map rendered in colours, e.g. facades),
  else -1 everywhere.
- :class:`UnpairedDataModule` reads :class:`~cvbench.data.formats.unpaired.UnpairedImages`
  (``a`` and ``b``) and yields :class:`~cvbench.data.batches.UnpairedBatch`. Training sample
  ``k`` is A image ``k % nA`` with a B image drawn at random (CycleGAN's unaligned dataset);
  evaluation sample ``k`` of ``max(nA, nB)`` is ``(k % nA, k % nB)``: every image of both
  domains appears at least once, in a fixed order.

Training applies pix2pix's jitter (:func:`~cvbench.data.jitter.jitter`: resize to
``load_size``, random ``crop_size`` crop, random horizontal flip; one crop and flip for the
source, the target and the label map of a pair); evaluation resizes to ``crop_size``. The
random draws come from one seed per sample taken from torch's generator, which follows
``seed_everything`` and the dataloader workers and which cvbench's exact resume restores (as
:mod:`cvbench.data.style` does); there is no albumentations pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import TranslationBatch, UnpairedBatch
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.degradations import to_tensor
from cvbench.data.jitter import INTERPOLATIONS, Interpolation, jitter


def sample_rng() -> np.random.Generator:
    """A sample's random stream, seeded from torch's generator (see the module docstring)."""
    return np.random.default_rng(int(torch.randint(2**62, ())))


def palette_labels(image: np.ndarray, palette: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Class ids of an image holding a label map rendered in colours.

    Args:
        image: (H, W, 3) uint8.
        palette: (K, 3) RGB colour of each class id.
        tolerance: largest per-channel difference still taken as the colour (0: exact; a JPEG
            label image needs some); the nearest colour within it wins.

    Returns:
        (H, W) int64 ids in [0, K), -1 where no colour is within ``tolerance``.

    >>> palette_labels(np.array([[[0, 0, 255], [9, 9, 9]]], np.uint8), np.array([[9, 9, 9],
    ...                [0, 0, 255]])).tolist()
    [[1, 0]]
    """
    diff = np.abs(image[:, :, None, :].astype(np.int64) - palette[None, None].astype(np.int64))
    distance = diff.max(axis=3)  # (H, W, K)
    ids = distance.argmin(axis=2)
    return np.where(distance.min(axis=2) <= tolerance, ids, -1).astype(np.int64)


def _check_sizes(load_size: int, crop_size: int) -> None:
    if crop_size < 1 or load_size < crop_size:
        raise ValueError(
            f"data.load_size={load_size}, data.crop_size={crop_size}: expected "
            f"load_size >= crop_size >= 1"
        )


class PairedSamples(Dataset):
    """The samples of one split of paired data, as dicts of ``source`` and ``target`` (3, S, S)
    float32 in [0, 1], ``label_map`` (S, S) int64 and ``index``.

    Args:
        records: the pairs.
        train: random jitter (else resized to ``crop_size``).
        load_size, crop_size, flip: pix2pix's jitter (see :func:`~cvbench.data.jitter.jitter`).
        source_interpolation: "bilinear" for photos, "nearest" for flat label colours.
        palette: (K, 3) colours of the classes in the source, or None.
        palette_tolerance: see :func:`palette_labels`.
    """

    def __init__(
        self,
        records: Any,
        *,
        train: bool,
        load_size: int,
        crop_size: int,
        flip: bool,
        source_interpolation: Interpolation,
        palette: np.ndarray | None,
        palette_tolerance: int,
    ) -> None:
        self.records = records
        self.train = train
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.interpolations = (source_interpolation, "bilinear", "nearest")
        self.palette = palette
        self.palette_tolerance = palette_tolerance

    def __len__(self) -> int:
        return len(self.records)

    def _labels(self, index: int, source: np.ndarray) -> np.ndarray:
        if getattr(self.records, "has_labels", False):
            return self.records.load_labels(index)
        if self.palette is not None:
            return palette_labels(source, self.palette, self.palette_tolerance)
        return np.full(source.shape[:2], -1, dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        if hasattr(self.records, "load_sides"):  # one decode for both sides
            source, target = self.records.load_sides(index)
        else:
            source, target = self.records.load_input(index), self.records.load(index)
        labels = self._labels(index, source)
        source, target, labels = jitter(
            (source, target, labels),
            self.interpolations,
            load_size=self.load_size,
            crop_size=self.crop_size,
            flip=self.flip,
            rng=sample_rng() if self.train else None,
        )
        return {
            "source": to_tensor(source),
            "target": to_tensor(target),
            "label_map": torch.from_numpy(labels),
            "index": index,
        }


def collate_translation(samples: Sequence[dict[str, Tensor | int]]) -> TranslationBatch:
    """A :class:`~cvbench.data.batches.TranslationBatch` of stacked samples."""
    return TranslationBatch(
        source=torch.stack([s["source"] for s in samples]),
        target=torch.stack([s["target"] for s in samples]),
        index=torch.tensor([s["index"] for s in samples], dtype=torch.int64),
        label_map=torch.stack([s["label_map"] for s in samples]),
    )


class PairedDataModule(RecordsDataModule):
    """Batches of aligned source/target pairs (see the module docstring).

    Args:
        load_size: side the training pairs are resized to before the random crop.
        crop_size: side of every sample (training crops; evaluation resizes to it).
        flip: random horizontal flips in training.
        source_interpolation: how the source is resized: "bilinear" (a photo) or "nearest"
            (a label map in flat colours: keeps the palette's colours exact).
        class_names: the classes of ``label_map`` (index = id), or None when it has none.
        num_classes: their number (what model and task configs read as
            ``${data.num_classes}``); must equal ``len(class_names)`` and the palette's size.
        palette: RGB colour of each class in the source (K lists of 3 ints), or None.
        palette_tolerance: see :func:`palette_labels`.
        **kwargs: ``name``, ``records``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule` (no ``transforms``).
    """

    collate_fn = staticmethod(collate_translation)

    def __init__(
        self,
        *,
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        source_interpolation: Interpolation = "bilinear",
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        palette_tolerance: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_sizes(load_size, crop_size)
        if source_interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"data.source_interpolation must be one of {INTERPOLATIONS}, got "
                f"{source_interpolation!r}"
            )
        self.palette = None if palette is None else np.asarray(palette, dtype=np.int64)
        if self.palette is not None and (self.palette.ndim != 2 or self.palette.shape[1] != 3):
            raise ValueError(f"data.palette must be a list of [R, G, B] colours, got {palette}")
        sizes = {
            key: n
            for key, n in (
                ("data.num_classes", num_classes),
                ("len(data.class_names)", None if class_names is None else len(class_names)),
                ("len(data.palette)", None if palette is None else len(self.palette)),
            )
            if n is not None
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the class counts disagree: {sizes}")
        self.num_classes = next(iter(sizes.values()), None)
        names = list(class_names) if class_names is not None else None
        if names is None and self.num_classes is not None:
            names = [f"class_{c}" for c in range(self.num_classes)]
        self.class_names = names
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.source_interpolation = source_interpolation
        self.palette_tolerance = palette_tolerance

    def make_dataset(self, records: Any, transform: Any, split: str) -> PairedSamples:
        return PairedSamples(
            records,
            train=split == "train",
            load_size=self.load_size,
            crop_size=self.crop_size,
            flip=self.flip,
            source_interpolation=self.source_interpolation,
            palette=self.palette,
            palette_tolerance=self.palette_tolerance,
        )


class UnpairedSamples(Dataset):
    """The samples of one split of unpaired data, as dicts of ``image_a``, ``image_b`` (3, S, S)
    float32 in [0, 1] and ``index_a``, ``index_b`` (see the module docstring).

    Args:
        records: the two domains (``a``, ``b``).
        train: B drawn at random and random jitter (else the cycled pairing, resized).
        load_size, crop_size, flip: pix2pix's jitter, drawn for each domain's image apart.
    """

    def __init__(
        self, records: Any, *, train: bool, load_size: int, crop_size: int, flip: bool
    ) -> None:
        self.records = records
        self.train = train
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip

    def __len__(self) -> int:
        return max(len(self.records.a), len(self.records.b))

    def pair(self, item: int, rng: np.random.Generator | None) -> tuple[int, int]:
        """``(A index, B index)`` of sample ``item``: B random in training, else cycled."""
        n_a, n_b = len(self.records.a), len(self.records.b)
        return item % n_a, (int(rng.integers(n_b)) if rng is not None else item % n_b)

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        rng = sample_rng() if self.train else None
        i, j = self.pair(item, rng)
        images = [
            jitter(
                (domain.load(k),),
                ("bilinear",),
                load_size=self.load_size,
                crop_size=self.crop_size,
                flip=self.flip,
                rng=rng,
            )[0]
            for domain, k in ((self.records.a, i), (self.records.b, j))
        ]
        return {"image_a": to_tensor(images[0]), "image_b": to_tensor(images[1]),
                "index_a": i, "index_b": j}  # fmt: skip


def collate_unpaired(samples: Sequence[dict[str, Tensor | int]]) -> UnpairedBatch:
    """An :class:`~cvbench.data.batches.UnpairedBatch` of stacked samples."""
    return UnpairedBatch(
        images_a=torch.stack([s["image_a"] for s in samples]),
        images_b=torch.stack([s["image_b"] for s in samples]),
        indices_a=torch.tensor([s["index_a"] for s in samples], dtype=torch.int64),
        indices_b=torch.tensor([s["index_b"] for s in samples], dtype=torch.int64),
    )


class UnpairedDataModule(RecordsDataModule):
    """Batches of images of two unpaired domains (see the module docstring).

    Args:
        load_size: side the training images are resized to before the random crop.
        crop_size: side of every image (training crops; evaluation resizes to it).
        flip: random horizontal flips in training.
        **kwargs: ``name``, ``records``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule` (no ``transforms``).
    """

    collate_fn = staticmethod(collate_unpaired)

    def __init__(
        self, *, load_size: int = 286, crop_size: int = 256, flip: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_sizes(load_size, crop_size)
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip

    def make_dataset(self, records: Any, transform: Any, split: str) -> UnpairedSamples:
        return UnpairedSamples(
            records,
            train=split == "train",
            load_size=self.load_size,
            crop_size=self.crop_size,
            flip=self.flip,
        )

"""Lightning datamodule for style transfer: content images paired with style images.

Two readers give a split's records, both :class:`~cvbench.data.records.ImageRecords`: the
content images (``records``, e.g. any image folder) and the style images (``styles``, e.g.
:func:`~cvbench.data.formats.style_images.style_images`, which refuses gray, missing and
unreadable files). Batches are :class:`~cvbench.data.batches.StyleBatch`.

- Training: sample ``i`` is content image ``i % N`` (each visited ``repeat`` times an epoch),
  as the train transform crops it (``crop_size`` x ``crop_size``, e.g. a random resized crop),
  with a style drawn per sample from the split's M styles, its short side resized to
  ``style_size`` and a random square cropped from it. The draw and the crop come from torch's
  generator (one seed drawn per sample, as restoration's), which follows ``seed_everything``
  and the dataloader workers and which cvbench's exact resume restores; the transform keeps
  its own streams (:class:`~cvbench.data.datamodule.RecordsDataModule`). ``train_crop:
  center`` (Gatys et al., whose "model" is one image) makes every sample fixed instead: the
  whole content image with its short side resized to ``crop_size`` and centre-cropped, the
  style centre-cropped, no train transform.
- Evaluation (val, test): the fixed grid of N content x M style images, sample ``c * M + s``;
  the content's short side resized to ``eval_size`` and centre-cropped square, the style's to
  ``style_size``, likewise: the same tensors in every run, for every model compared.

Every sample's ``index`` is its grid cell ``c * M + s``. Images are resized with PIL's bicubic
filter, which antialiases when it shrinks (torch's default interpolation does not).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import StyleBatch
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.degradations import to_tensor
from cvbench.data.records import ImageRecords

TRAIN_CROPS = ("random", "center")


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H, W, 3) uint8 resized (bicubic, antialiased) so its short side is ``size``,
    keeping its aspect ratio.

    >>> resize_short_side(np.zeros((30, 60, 3), np.uint8), 10).shape
    (10, 20, 3)
    """
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) == (h, w):
        return image
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def square_crop(image: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``image`` (H, W, C), both sides >= ``size``: centred when
    ``rng`` is None, else at a random position.

    >>> square_crop(np.arange(12).reshape(3, 4, 1), 2)[:, :, 0].tolist()
    [[1, 2], [5, 6]]
    """
    h, w = image.shape[:2]
    if rng is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[top : top + size, left : left + size]


class StyleSamples(Dataset):
    """The samples of one split (see the module docstring), as dicts of ``content`` and
    ``style`` (3, S, S) float32 in [0, 1] and ``index``, ``content_index``, ``style_index``.

    Args:
        content_records: the N content images.
        style_records: the M style images.
        transform: albumentations transform of the uint8 content image in random training
            (it must give ``content_size`` squares); None: short side resized to
            ``content_size``, random square crop. Unused otherwise.
        content_size: side of the content images (``crop_size`` in training, ``eval_size``
            in evaluation).
        style_size: side of the style images.
        train: training samples (``len(content) * repeat`` of them, styles drawn), else the
            grid (``N * M``).
        random_crop: training crops are random (else fixed centre crops).
        repeat: training samples per content image.
        cache: keep decoded (and, where fixed, resized) images in memory (each process and
            worker its own copy): for few images visited many times.
        where: names the data in messages, e.g. ``data 'photos' split 'train'``.
    """

    def __init__(
        self,
        content_records: ImageRecords,
        style_records: ImageRecords,
        *,
        transform: Callable | None,
        content_size: int,
        style_size: int,
        train: bool,
        random_crop: bool = True,
        repeat: int = 1,
        cache: bool = False,
        where: str = "data",
    ) -> None:
        self.content_records = content_records
        self.records = content_records  # what every cvbench dataset calls its records
        self.style_records = style_records
        self.transform = transform
        self.content_size = content_size
        self.style_size = style_size
        self.train = train
        self.random_crop = train and random_crop
        self.repeat = repeat if train else 1
        self.where = where
        self.cache: dict[tuple[str, int], np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        if self.train:
            return len(self.content_records) * self.repeat
        return len(self.content_records) * len(self.style_records)

    def cell(self, item: int) -> tuple[int, int]:
        """``(content index, style index)`` of grid sample ``item`` (evaluation)."""
        return divmod(item, len(self.style_records))

    def _cached(self, key: tuple[str, int], make: Callable[[], np.ndarray]) -> np.ndarray:
        if self.cache is None:
            return make()
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def _content(self, c: int, rng: np.random.Generator | None) -> np.ndarray:
        size = self.content_size
        if rng is None or not self.random_crop:  # fixed: resized, centre crop, every time
            return self._cached(
                ("content", c),
                lambda: square_crop(resize_short_side(self.content_records.load(c), size), size),
            )
        image = self._cached(("raw", c), lambda: self.content_records.load(c))
        if self.transform is None:
            return square_crop(resize_short_side(image, size), size, rng)
        crop = self.transform(image=image)["image"]
        if not isinstance(crop, np.ndarray) or crop.shape != (size, size, 3):
            got = tuple(crop.shape) if hasattr(crop, "shape") else type(crop).__name__
            raise ValueError(
                f"{self.where}: the train transform (data.transforms.train) gave content of "
                f"shape {got} for {self.content_records.source(c)}; expected a "
                f"({size}, {size}, 3) uint8 array: end it with a crop of ${{data.crop_size}}"
            )
        return crop

    def _style(self, s: int, rng: np.random.Generator | None) -> np.ndarray:
        size = self.style_size
        image = self._cached(
            ("style", s), lambda: resize_short_side(self.style_records.load(s), size)
        )
        return square_crop(image, size, rng if self.random_crop else None)

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        rng = None
        if self.train:  # torch's generator follows seed_everything, the workers and resume
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
            c, s = item % len(self.content_records), int(rng.integers(len(self.style_records)))
        else:
            c, s = self.cell(item)
        return {
            "content": to_tensor(self._content(c, rng)),
            "style": to_tensor(self._style(s, rng)),
            "index": c * len(self.style_records) + s,
            "content_index": c,
            "style_index": s,
        }


def collate_style(samples: Sequence[dict[str, Tensor | int]]) -> StyleBatch:
    """A :class:`~cvbench.data.batches.StyleBatch`: ``content`` (B, 3, H, W) and ``style``
    (B, 3, H', W') stacked (every sample of a split has one size), the indices (B,) int64."""
    return StyleBatch(
        content=torch.stack([s["content"] for s in samples]),
        style=torch.stack([s["style"] for s in samples]),
        **{
            key: torch.tensor([s[key] for s in samples], dtype=torch.int64)
            for key in ("index", "content_index", "style_index")
        },
    )


class StyleDataModule(RecordsDataModule):
    """Batches of content and style images (see the module docstring).

    Args:
        styles: builds the style images of one split, called as ``styles(split=...)``
            (``records`` builds the content images).
        crop_size: side of the training content crops (the train transform reads it as
            ``${data.crop_size}``).
        style_size: side of the style images (short side resized to it, square cropped).
        eval_size: side of the evaluation content images (short side resized, centre crop).
        train_crop: "random" (the train transform's crops, random style crops) or "center"
            (fixed centre crops, no transform: one image optimized, as Gatys et al.).
        repeat: training samples per content image and epoch.
        cache: keep decoded images in memory (see :class:`StyleSamples`).
        **kwargs: ``name``, ``records``, ``transforms``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`; ``transforms`` has only a
            "train" pipeline (the evaluation grid is fixed).
    """

    collate_fn = staticmethod(collate_style)

    def __init__(
        self,
        *,
        styles: Callable[..., object],
        crop_size: int = 256,
        style_size: int = 256,
        eval_size: int = 256,
        train_crop: Literal["random", "center"] = "random",
        repeat: int = 1,
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for key, value in (
            ("crop_size", crop_size), ("style_size", style_size), ("eval_size", eval_size),
            ("repeat", repeat),
        ):  # fmt: skip
            if value < 1:
                raise ValueError(f"data.{key} must be >= 1, got {value}")
        if train_crop not in TRAIN_CROPS:
            raise ValueError(f"data.train_crop must be one of {TRAIN_CROPS}, got {train_crop!r}")
        self.refuse_eval_transforms(
            "the evaluation grid is fixed (short side resized to data.eval_size, centre crop)"
        )
        self.styles = styles
        self.crop_size = crop_size
        self.style_size = style_size
        self.eval_size = eval_size
        self.train_crop = train_crop
        self.repeat = repeat
        self.cache = cache

    def make_dataset(
        self, records: ImageRecords, transform: Callable | None, split: str
    ) -> StyleSamples:
        style_records = self.styles(split=self.split_names.get(split, split))
        if len(style_records) == 0:
            raise ValueError(f"data '{self.name}': split '{split}' has no style images")
        train = split == "train"
        return StyleSamples(
            records,
            style_records,
            transform=transform if train and self.train_crop == "random" else None,
            content_size=self.crop_size if train else self.eval_size,
            style_size=self.style_size,
            train=train,
            random_crop=self.train_crop == "random",
            repeat=self.repeat,
            cache=self.cache,
            where=f"data '{self.name}' split '{split}'",
        )

    def grid_names(self, split: str) -> list[tuple[str, str]]:
        """``(content name, style name)`` of each grid cell ``c * M + s`` of ``split``, in
        index order (what every sample's ``index`` refers to)."""
        samples = self.split(split)
        contents, styles = samples.content_records, samples.style_records
        return [
            (contents.name(c), styles.name(s))
            for c in range(len(contents))
            for s in range(len(styles))
        ]

    def style_records(self, split: str) -> ImageRecords:
        """The style images of ``split`` (its dataset's when built; else read, without the
        content images, so an evaluation needs no training content)."""
        if split in self.datasets:
            return self.datasets[split].style_records
        return self.styles(split=self.split_names.get(split, split))

    @property
    def held_out_styles(self) -> list[str]:
        """Names of the test styles that are not among the training styles (by name), in
        the test grid's order: the styles an arbitrary-style method never saw."""
        train, test = self.style_records("train"), self.style_records("test")
        seen = {train.name(i) for i in range(len(train))}
        return [test.name(i) for i in range(len(test)) if test.name(i) not in seen]

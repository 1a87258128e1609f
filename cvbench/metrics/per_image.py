"""Per-image metrics: each image's payload kept with its dataset index, gathered from every
process once, and each dataset index counted once.

Why: a ``DistributedSampler`` pads its shards by repeating images, and a second pass may score
an image again; statistics summed per process would count those copies. Keeping a payload per
image (detectron2's ``DatasetEvaluator.process``, mmengine's ``BaseMetric.results``) with its
dataset index lets ``compute`` keep one copy of each image after the gather.

:class:`PerImageMetric` owns what every such metric needs:

- the ``index`` state, (N,) int64 dataset indices, exact (never sent as a float);
- the payload states a subclass declares with :meth:`~PerImageMetric.add_field`: a fixed row
  per image (a rank, a PSNR, a (2048,) feature vector), or ragged rows in a named group, any
  number per image (an image's detections, its nonzero confusion-matrix entries, its RLE bytes);
- one dtype-safe gather: before torchmetrics syncs the states, a process that saw no image puts
  an empty tensor of each state's declared dtype and row shape where torchmetrics would put its
  ``torch.tensor([], dtype=float32)`` placeholder (which gloo cannot gather with the other
  processes' int64 or (N, 4) states), then torchmetrics' ``gather_all_tensors`` concatenates
  every process's states in rank order;
- one deduplication, :meth:`~PerImageMetric.kept_images`: for each dataset index the first copy
  in that order (process rank, then update order; in one process, the update order) is kept,
  and the kept payload is handed back in ascending dataset-index order (a ragged group's rows
  grouped by image, each image's rows in the order they were added).

A metric then keeps only its payload and a pure scoring function. To plug one in (FID/KID
feature rows, OCR words, face-verification pair scores):

1. subclass ``PerImageMetric``; in ``__init__`` call ``super().__init__()`` and declare each
   payload field: ``self.add_field("feature", torch.float64, (2048,))`` for one row per image,
   ``self.add_field("right", torch.int64, rows="word")`` for rows of group ``word``;
2. in ``update``, compute the batch's payload and call ``self.add_images(index, values,
   rows)``: ``values`` maps every field to (B, *shape) for per-image fields and (R, *shape)
   for a group's rows, ``rows`` maps each group to (B,) rows per image (R in all);
3. in ``compute``, score ``self.kept_images()`` with a module-level pure function (with a
   doctest), as mmseg's ``total_area_to_metrics``.

The "index" is whatever the split counts once: an image's dataset index, or a pair's for
face verification. For example, word accuracy of an OCR model, where image 4 is seen twice:

>>> def word_accuracy(right: Tensor) -> float:
...     '''100 x share of words read right; right: (W,) int64, 1 where right.'''
...     return 100.0 * right.double().mean().item()
>>> class WordAccuracy(PerImageMetric):
...     def __init__(self) -> None:
...         super().__init__()
...         self.add_field("right", torch.int64, rows="word")
...     def update(self, right: list[Tensor], index: Tensor) -> None:
...         words = torch.tensor([len(r) for r in right])
...         self.add_images(index, {"right": torch.cat(right)}, rows={"word": words})
...     def compute(self) -> float:
...         return word_accuracy(self.kept_images()["right"])
>>> metric = WordAccuracy()
>>> metric.update([torch.tensor([1, 0]), torch.tensor([1])], torch.tensor([4, 2]))
>>> metric.update([torch.tensor([0, 0])], torch.tensor([4]))  # a padded repeat of image 4
>>> images = metric.kept_images()
>>> images.index.tolist(), images["right"].tolist(), images.rows["word"].tolist()
([2, 4], [1, 1, 0], [1, 2])
>>> round(metric.compute(), 4)
66.6667

``forward`` only updates (a per-batch value of a dataset-level metric would be meaningless):
call ``update``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

INDEX = "index"


def first_occurrence(index: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct value of ``index``.

    Args:
        index: (N,) integer values.

    Returns:
        (U,) int64 positions into ``index``, ordered by ascending value.

    >>> first_occurrence(torch.tensor([4, 2, 4, 7, 2])).tolist()
    [1, 0, 3]
    """
    unique, inverse = torch.unique(index, return_inverse=True)
    first = torch.full((len(unique),), len(index), dtype=torch.int64, device=index.device)
    positions = torch.arange(len(index), device=index.device)
    return first.scatter_reduce(0, inverse, positions, reduce="amin")


def _row_positions(starts: Tensor, counts: Tensor) -> Tensor:
    """(sum(counts),) int64: ``starts[i], ..., starts[i] + counts[i] - 1`` for each i in turn.

    >>> _row_positions(torch.tensor([5, 0, 9]), torch.tensor([2, 0, 3])).tolist()
    [5, 6, 9, 10, 11]
    """
    offsets = torch.cumsum(counts, 0) - counts  # where each run starts in the output
    shift = torch.repeat_interleave(starts - offsets, counts)
    return shift + torch.arange(len(shift), device=starts.device)


@dataclass(frozen=True)
class Field:
    """A declared payload state.

    Attributes:
        dtype: every process sends and keeps this dtype.
        shape: the shape of one row (``()`` for a scalar).
        rows: the ragged row group, or None for one row per image.
    """

    dtype: torch.dtype
    shape: tuple[int, ...] = ()
    rows: str | None = None


@dataclass(frozen=True)
class KeptImages:
    """The payload of each dataset index once (its first copy), in ascending index order.

    Attributes:
        index: (N,) int64 dataset indices, ascending, distinct.
        values: per-image fields (N, *shape); a group's fields (R, *shape), the rows of image
            ``index[0]`` first, each image's rows in the order they were added.
        rows: each group's (N,) int64 number of rows per image (R = their sum).
    """

    index: Tensor
    values: dict[str, Tensor]
    rows: dict[str, Tensor]

    def __getitem__(self, name: str) -> Tensor:
        return self.values[name]

    def image_of_row(self, group: str) -> Tensor:
        """(R,) int64: for each row of ``group``, its image's position in ``index``.

        >>> KeptImages(torch.tensor([3, 8]), {}, {"det": torch.tensor([2, 1])}).image_of_row(
        ...     "det").tolist()
        [0, 0, 1]
        """
        counts = self.rows[group]
        return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


class PerImageMetric(Metric):
    """Base of the metrics that keep a payload per image (see the module).

    Subclasses declare their payload with ``add_field``, append it with ``add_images`` in
    ``update`` and score ``kept_images()`` in ``compute``.

    Args:
        kwargs: torchmetrics ``Metric`` options.
    """

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fields: dict[str, Field] = {}
        self._groups: dict[str, list[str]] = {}
        self.add_state(INDEX, default=[], dist_reduce_fx="cat")

    def add_field(
        self, name: str, dtype: torch.dtype, shape: Sequence[int] = (), *, rows: str | None = None
    ) -> None:
        """Declare a payload field (a ``cat`` state of ``dtype``).

        Args:
            name: the state's attribute name and its key in ``kept_images()``.
            dtype: the dtype it is kept and gathered in.
            shape: the shape of one row.
            rows: None for one row per image; else the name of its ragged group (the fields of
                a group have the same number of rows per image).
        """
        new_group = rows is not None and rows not in self._groups
        for state in (name, _rows_state(rows)) if new_group else (name,):
            if hasattr(self, state):
                raise ValueError(f"{type(self).__name__}: the name {state!r} is already taken")
        self._fields[name] = Field(dtype, tuple(shape), rows)
        self.add_state(name, default=[], dist_reduce_fx="cat")
        if rows is not None:
            if new_group:
                self._groups[rows] = []
                self.add_state(_rows_state(rows), default=[], dist_reduce_fx="cat")
            self._groups[rows].append(name)

    def add_images(
        self,
        index: Tensor | Sequence[int],
        values: Mapping[str, Tensor],
        rows: Mapping[str, Tensor | Sequence[int]] | None = None,
    ) -> None:
        """Append a batch's payload; everything is checked before any state grows.

        Args:
            index: (B,) integer dataset indices.
            values: every declared field: (B, *shape) for a per-image field, (R, *shape) for
                the rows of a group (any dtype, converted to the declared one).
            rows: each group's (B,) non-negative rows per image, summing to R.

        Raises:
            ValueError: a field missing or unknown, a float index, counts or shapes that
                disagree; naming the field.
        """
        name = type(self).__name__
        device = self.device
        index = torch.as_tensor(index, device=device).detach().reshape(-1)
        if index.dtype.is_floating_point or index.dtype == torch.bool:
            raise ValueError(f"{name}: dataset indices of dtype {index.dtype}; expected integers")
        if set(values) != set(self._fields):
            raise ValueError(
                f"{name}: values for {sorted(values)}; expected exactly {sorted(self._fields)}"
            )
        rows = dict(rows or {})
        if set(rows) != set(self._groups):
            raise ValueError(f"{name}: rows for {sorted(rows)}; expected {sorted(self._groups)}")
        counts = {
            group: torch.as_tensor(count, device=device).detach().to(torch.int64).reshape(-1)
            for group, count in rows.items()
        }
        for group, count in counts.items():
            if len(count) != len(index) or (count < 0).any():
                raise ValueError(
                    f"{name}: rows[{group!r}] {count.tolist()}; expected {len(index)} counts >= 0"
                )
        states = {INDEX: index.to(torch.int64)}
        for field_name, field in self._fields.items():
            length = len(index) if field.rows is None else int(counts[field.rows].sum())
            value = values[field_name].detach()
            if tuple(value.shape) != (length, *field.shape):
                raise ValueError(
                    f"{name}: {field_name} has shape {tuple(value.shape)}; expected "
                    f"{(length, *field.shape)}"
                )
            states[field_name] = value.to(device, field.dtype)
        states |= {_rows_state(group): count for group, count in counts.items()}
        for state, value in states.items():
            getattr(self, state).append(value)

    def kept_images(self, device: torch.device | str | None = None) -> KeptImages:
        """The first copy of each dataset index, in ascending index order (see the module).

        Gathered from every process inside ``compute``; this process's alone elsewhere.

        Args:
            device: where the result lies; None: where the states are.
        """
        index = self._concatenated(INDEX, Field(torch.int64), device)
        keep = first_occurrence(index)
        values = {
            name: self._concatenated(name, field, device)[keep]
            for name, field in self._fields.items()
            if field.rows is None
        }
        kept_rows = {}
        for group, names in self._groups.items():
            counts = self._concatenated(_rows_state(group), Field(torch.int64), device)
            starts = torch.cumsum(counts, 0) - counts
            kept_rows[group] = counts[keep]
            positions = _row_positions(starts[keep], counts[keep])
            for name in names:
                values[name] = self._concatenated(name, self._fields[name], device)[positions]
        return KeptImages(index=index[keep], values=values, rows=kept_rows)

    def _concatenated(self, state: str, field: Field, device: torch.device | str | None) -> Tensor:
        """One state as one tensor: the list of this process's appends concatenated (an empty
        list gives (0, *shape) of the declared dtype), or the gathered tensor as is."""
        value = getattr(self, state)
        if isinstance(value, list):
            value = torch.cat(value) if value else _empty(field, self.device)
        return value if device is None else value.to(device)

    def sync(
        self,
        dist_sync_fn: Any = None,
        process_group: Any = None,
        should_sync: bool = True,
        distributed_available: Any = None,
    ) -> None:
        """torchmetrics' ``sync``; when it gathers, every state this process never appended to
        first gets an empty tensor of its declared dtype and row shape (no placeholder to guess).
        """
        available = distributed_available or self.distributed_available_fn
        if should_sync and callable(available) and available():
            declared = {INDEX: Field(torch.int64)} | self._fields
            declared |= {_rows_state(group): Field(torch.int64) for group in self._groups}
            for state, field in declared.items():
                value = getattr(self, state)
                if isinstance(value, list) and not value:
                    value.append(_empty(field, self.device))
        super().sync(dist_sync_fn, process_group, should_sync, distributed_available)

    def forward(self, *args: Any, **kwargs: Any) -> None:
        """Same as ``update`` (a dataset-level metric has no per-batch value)."""
        self.update(*args, **kwargs)


def _rows_state(group: str) -> str:
    """The state holding the rows per image of ``group``."""
    return f"{group}_rows"


def _empty(field: Field, device: torch.device) -> Tensor:
    return torch.empty((0, *field.shape), dtype=field.dtype, device=device)

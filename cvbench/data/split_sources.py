"""Records of some splits from another dataset: e.g. super-resolution trained on DIV2K and
tested on Set5, as EDSR (Lim et al., 2017) and later papers report it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

Records = TypeVar("Records")


def split_sources(
    split: str, *, default: Callable[..., Records], sources: Mapping[str, Callable[..., Records]]
) -> Records:
    """The records of ``split``: ``sources[split](split=split)`` when ``sources`` names the
    split, else ``default(split=split)``.

    Args:
        split: the dataset's name of the split (after the datamodule's ``split_names``).
        default: builds the records of the other splits (a ``_partial_`` reader).
        sources: split name -> the reader of that split.

    >>> split_sources("test", default=lambda split: f"DIV2K {split}",
    ...               sources={"test": lambda split: "Set5"})
    'Set5'
    """
    return sources.get(split, default)(split=split)

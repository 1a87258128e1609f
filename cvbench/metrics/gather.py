"""Cross-process gather of list states that also works when a process saw no data.

torchmetrics gathers a ``dist_reduce_fx="cat"`` state that a process never appended to as its
placeholder ``torch.tensor([], dtype=metric.dtype)``: 1-D float32, whatever the dtype and shape
of the other processes' states. gloo cannot gather it with their int64 or (N, 4) tensors (the
process aborts). An empty tensor holds no values, so :func:`gather_states` first gives each empty
one the dtype and trailing shape of the other processes' states, then gathers as torchmetrics
does (``gather_all_tensors``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics.utilities.distributed import gather_all_tensors


def _template(infos: list[tuple[int, torch.dtype, tuple[int, ...]]]) -> tuple[torch.dtype, tuple]:
    """dtype and shape an empty state takes: the first nonempty process's; when every process
    is empty, the one with the most dimensions, an integer dtype before a float one (the
    placeholder is 1-D float)."""
    full = [(dtype, shape) for numel, dtype, shape in infos if numel]
    if full:
        return full[0]
    ranked = sorted(
        ((dtype, shape) for _, dtype, shape in infos),
        key=lambda info: (-len(info[1]), info[0].is_floating_point),
    )  # sorted() is stable: the lowest rank wins a tie, the same choice on every process
    return ranked[0]


def gather_states(tensor: Tensor, group: Any = None) -> list[Tensor]:
    """Every process's ``tensor``, for ``Metric(dist_sync_fn=gather_states)``.

    Args:
        tensor: this process's state, concatenated (torchmetrics' placeholder if it saw no
            data).
        group: the process group; all processes when None.

    Returns:
        one tensor per process of the group; empty ones with the others' dtype and trailing
        shape.
    """
    group = group if group is not None else dist.group.WORLD
    infos: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(infos, (tensor.numel(), tensor.dtype, tuple(tensor.shape)), group=group)
    dtype, shape = _template(infos)
    if tensor.numel() == 0:
        tensor = torch.empty((0, *shape[1:]), dtype=dtype, device=tensor.device)
    if not any(numel for numel, _, _ in infos):  # nothing to send
        return [tensor.clone() for _ in infos]
    return gather_all_tensors(tensor, group=group)

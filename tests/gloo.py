"""Run a metric's worker in two real gloo processes and read back what each rank wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch.multiprocessing as mp


def run_two_processes(worker: Callable, tmp_path: Path, shards: list | None = None) -> list[dict]:
    """Start ``worker(rank, world_size, init_file, out_dir, shards)`` on ranks 0 and 1 (forked)
    and return the JSON each rank wrote to ``tmp_path/<rank>.json``."""
    mp.start_processes(
        worker,
        args=(2, str(tmp_path / "init"), str(tmp_path), shards),
        nprocs=2,
        start_method="fork",
    )
    return [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(2)]

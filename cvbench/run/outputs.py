"""A run's directory: claimed once, never written over; metrics as plain JSON values."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RunDirectoryInUse(FileExistsError):
    """The run directory already holds a recorded run."""


def claim_run_dir(run_dir: Path) -> None:
    """Refuse a directory that already holds a run's results or checkpoints.

    Raises:
        RunDirectoryInUse: naming the directory and what is in it.
    """
    found = [p for p in (run_dir / "metrics.json", run_dir / "config.yaml") if p.exists()]
    found += sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if found:
        raise RunDirectoryInUse(
            f"run directory {run_dir} already holds a run ({found[0].name}); cvbench never "
            f"writes over a recorded run. Choose another hydra.run.dir, or leave it unset."
        )


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float | str | None]:
    """Metrics as plain JSON values, sorted by key: numbers (tensors and numpy scalars too) as
    floats; None (a metric with no ground truth to score, e.g. COCO's -1) and protocol strings
    (``test/iou_type``) as they are."""
    out: dict[str, float | str | None] = {}
    for key, value in metrics.items():
        if value is None or isinstance(value, str):
            out[key] = value
            continue
        item = getattr(value, "item", None)
        out[key] = float(item() if item else value)
    return dict(sorted(out.items()))

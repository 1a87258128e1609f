"""What a run writes in its directory; written atomically and never over an earlier run."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # mkstemp makes 0600 files; results are meant to be shared


class RunDirectoryInUse(FileExistsError):
    """The run directory already holds a recorded run."""


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, sorted keys, through a temporary file and a rename."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file and a rename: never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

"""A run's directory: claimed atomically once, never written over; metrics as plain JSON values.

The claim is the first thing Hydra writes in a folder, created with exclusive-create semantics
(``mkdir``; ``open(O_CREAT | O_EXCL)``), so that of two processes claiming one folder at the same
moment exactly one succeeds, and nothing is ever checked first and written later:

- a run's folder is claimed by making its ``.hydra/`` folder;
- a sweep's (multirun's) folder by creating its ``multirun.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

RUN_CLAIM = ".hydra"  # Hydra saves the run's config.yaml, hydra.yaml, overrides.yaml in it
SWEEP_CLAIM = "multirun.yaml"  # Hydra's basic sweeper saves the sweep's config in it
RESULTS = ("metrics.json", "config.yaml")  # what record_run writes in a run's folder
MAX_NUMBER = 1000  # folder_2 ... folder_1000: past that, something else is wrong
RUN_NAME_KEY = "run_name"


class RunDirectoryInUse(FileExistsError):
    """The run directory already holds a recorded run."""


def recorded_results(run_dir: Path) -> str | None:
    """The first of ``metrics.json``, ``config.yaml`` and ``checkpoints/*.ckpt`` in ``run_dir``
    (relative to it), or None when it holds none of them."""
    found = [name for name in RESULTS if (run_dir / name).exists()]
    found += [f"checkpoints/{p.name}" for p in sorted((run_dir / "checkpoints").glob("*.ckpt"))]
    return found[0] if found else None


def held_by(folder: Path) -> str | None:
    """What in ``folder`` shows that a run or a sweep has been there (relative to it): its
    ``.hydra/``, ``multirun.yaml``, a result or checkpoint, or a job's ``<n>/.hydra/``; None
    when nothing does (a folder that does not exist, an empty one, unrelated files)."""
    for name in (RUN_CLAIM, SWEEP_CLAIM):
        if (folder / name).exists():
            return name
    found = recorded_results(folder)
    if found is None:
        jobs = sorted(folder.glob(f"*/{RUN_CLAIM}"))
        found = jobs[0].relative_to(folder).as_posix() if jobs else None
    return found


def claim(folder: Path, *, sweep: bool = False) -> str | None:
    """Make ``folder`` (and its parents) and claim it for this process, atomically.

    Args:
        folder: the run's (or sweep's) directory.
        sweep: claim it for a sweep (``multirun.yaml``) rather than a run (``.hydra/``).

    Returns:
        None when this process now holds ``folder``; otherwise what already holds it
        (as :func:`held_by` names it), and nothing was written in it.
    """
    held = held_by(folder)  # a run that predates claims (no .hydra/): left as it is
    if held is not None:
        return held
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if sweep:
            os.close(os.open(folder / SWEEP_CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        else:
            (folder / RUN_CLAIM).mkdir()
    except FileExistsError:  # another process claimed it since held_by looked
        return SWEEP_CLAIM if sweep else RUN_CLAIM
    return None


def numbered(folder: Path, number: int) -> Path:
    """``folder`` itself for number 1, else ``folder_<number>`` beside it."""
    return folder if number == 1 else folder.with_name(f"{folder.name}_{number}")


def claim_run_folder(folder: Path, *, key: str, by_time: bool, sweep: bool = False) -> Path:
    """Claim ``folder`` for a new run or sweep: the folder this process now holds.

    Args:
        folder: the directory the config names (resolved).
        key: the config key naming it, for the message (``hydra.run.dir``).
        by_time: the name was made from the start time (``${now:...}``): when two runs start
            in the same second, the later takes the first free ``folder_2``, ``folder_3``, ...
            A name given without the time is the folder the user asked for: never another.
        sweep: claim it for a sweep (see :func:`claim`).

    Raises:
        RunDirectoryInUse: ``folder`` (``by_time=False``), or every numbered folder, is taken.
    """
    for number in range(1, MAX_NUMBER + 1 if by_time else 2):
        held = claim(numbered(folder, number), sweep=sweep)
        if held is None:
            return numbered(folder, number)
    where = f"{key}={folder}" + (f" (and _2 ... _{MAX_NUMBER})" if by_time else "")
    raise RunDirectoryInUse(
        f"{where} already holds a run ({held}); cvbench never writes over a recorded run. "
        f"Choose another {key}, or leave it unset."
    )


def claim_run_dir(run_dir: Path) -> None:
    """Refuse a directory that already holds a run's results or checkpoints.

    A second check for callers that run in-process without the CLI: the CLI claims the
    directory atomically before Hydra writes into it (``cvbench.cli.claim``), and the ``.hydra/``
    folder it claims with is not a result.

    Raises:
        RunDirectoryInUse: naming the directory and what is in it.
    """
    found = recorded_results(run_dir)
    if found is not None:
        raise RunDirectoryInUse(
            f"run directory {run_dir} already holds a run ({Path(found).name}); cvbench never "
            f"writes over a recorded run. Choose another hydra.run.dir, or leave it unset."
        )


def check_run_name(name: object) -> None:
    """Refuse a ``run_name`` that is not one folder name: it names the run's folder inside
    ``paths.log_dir``, so a separator or ``..`` would put the run elsewhere.

    Raises:
        ValueError: naming ``run_name``, its value and what it may be.
    """
    text = str(name)
    if "/" in text or "\\" in text or text in (".", "..") or "\0" in text:
        raise ValueError(
            f"{RUN_NAME_KEY}={text} is not a folder name: it names the run's folder in "
            f"paths.log_dir, so it may not contain / or \\ nor be . or .. "
            f"(e.g. {RUN_NAME_KEY}=my_run)"
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

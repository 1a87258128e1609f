"""Benchmark suites: experiments x seeds (x override grids) run one by one, resumably.

A suite is a YAML file in ``conf/bench/`` (or any path)::

    seeds: [0, 1, 2]                 # every run's seeds, unless the run gives its own
    overrides: [trainer.max_epochs=5]  # added to every run
    runs:
      - experiment: classification/digits_small_cnn
      - experiment: segmentation/shapes_unet
        seeds: [0]
        overrides: [data.batch_size=8]
        grid: {optim.lr: [0.001, 0.003]}  # one run per combination

Each planned run is identified by the hash of the config it composes to
(:func:`cvbench.store.record.config_hash`), so a run that already completed in the results
store is skipped, whether a suite or a plain ``cvbench train`` recorded it; failed runs are
run again. Each run is its own ``cvbench train`` process: one run's crash does not stop the
suite, and a DDP trainer works as on the command line.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from cvbench.store.record import config_hash

SUITE_KEYS = ("seeds", "overrides", "runs")
RUN_KEYS = ("experiment", "seeds", "overrides", "grid")


@dataclass
class PlannedRun:
    """One ``cvbench train`` of a suite."""

    experiment: str
    seed: int
    overrides: list[str] = field(default_factory=list)
    config_hash: str = ""
    own_overrides: list[str] = field(default_factory=list)  # the run's, not the suite-wide ones

    @property
    def train_overrides(self) -> list[str]:
        """What ``cvbench train`` gets, before the run's own directory and id."""
        return [f"experiment={self.experiment}", f"seed={self.seed}", *self.overrides]

    @property
    def label(self) -> str:
        extra = " ".join(self.own_overrides)
        return f"{self.experiment} seed={self.seed}" + (f" {extra}" if extra else "")


def suite_path(name: str, conf_dir: Path) -> Path:
    """The suite file: ``conf/bench/<name>.yaml``, or ``name`` itself when it is a file.

    Raises:
        FileNotFoundError: neither exists; the message lists the suites in conf/bench/.
    """
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    path = conf_dir / "bench" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (conf_dir / "bench").glob("*.yaml")))
        raise FileNotFoundError(
            f"suite={name}: no file {path} (suites in conf/bench/: {known}; or give a path "
            f"to a suite YAML)"
        )
    return path


def _as_list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, (list, ListConfig)):
        raise ValueError(f"{where} must be a list, got {value!r}")
    return list(value)


def _check_keys(node: DictConfig, allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(node) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; a suite knows {list(allowed)}")


def plan_suite(
    path: Path, *, seeds: Sequence[int] | None = None, overrides: Sequence[str] = ()
) -> list[PlannedRun]:
    """The runs a suite file lists, in order.

    Args:
        path: the suite YAML.
        seeds: replace every run's seeds (e.g. one seed for a quick check).
        overrides: added after each run's own overrides (e.g. ``trainer=gpu``).

    Raises:
        ValueError: an unknown key, a run without ``experiment``, a value of the wrong kind;
            the message names the file and the run.
    """
    suite = OmegaConf.load(path)
    _check_keys(suite, SUITE_KEYS, str(path))
    planned = []
    for i, entry in enumerate(_as_list(suite.get("runs"), f"{path}: runs")):
        where = f"{path}: runs[{i}]"
        if not isinstance(entry, DictConfig) or not entry.get("experiment"):
            raise ValueError(
                f"{where} needs an `experiment:` (e.g. classification/digits_small_cnn)"
            )
        _check_keys(entry, RUN_KEYS, where)
        run_seeds = seeds if seeds is not None else entry.get("seeds", suite.get("seeds", [0]))
        grid = entry.get("grid") or {}
        keys = list(grid)
        combos = itertools.product(*(_as_list(grid[k], f"{where}: grid.{k}") for k in keys))
        shared = [str(o) for o in _as_list(suite.get("overrides"), f"{path}: overrides")]
        for combo in combos:
            own = [
                *map(str, _as_list(entry.get("overrides"), f"{where}: overrides")),
                *(f"{k}={v}" for k, v in zip(keys, combo, strict=True)),
            ]
            for seed in _as_list(run_seeds, f"{where}: seeds"):
                planned.append(
                    PlannedRun(
                        experiment=str(entry.experiment),
                        seed=int(seed),
                        overrides=[*shared, *own, *overrides],
                        own_overrides=own,
                    )
                )
    return planned


def hash_runs(runs: Sequence[PlannedRun], conf_dir: Path) -> None:
    """Compose each run's ``cvbench train`` config and set its :attr:`config_hash`; a wrong
    experiment or override fails here, before anything runs."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        for run in runs:
            try:
                cfg = compose("train", overrides=run.train_overrides)
            except Exception as err:
                raise ValueError(f"suite run `{run.label}` does not compose: {err}") from err
            run.config_hash = config_hash(cfg)
    GlobalHydra.instance().clear()


def slug(run: PlannedRun, index: int) -> str:
    """A folder name for a run: ``03_classification-digits_small_cnn_seed1``."""
    return f"{index:02d}_{run.experiment.replace('/', '-')}_seed{run.seed}"


def train_command(run: PlannedRun, *, run_id: str, run_dir: Path, db: Path) -> list[str]:
    """The ``cvbench train`` command line of a planned run."""
    return [
        sys.executable,
        "-m",
        "cvbench",
        "train",
        *run.train_overrides,
        f"run_id={run_id}",
        f"paths.results_db={db}",
        f"hydra.run.dir={run_dir}",
    ]


def execute(command: list[str], *, grace_s: float = 60.0) -> int:
    """Run ``command`` with the console; its exit status.

    On Ctrl-C the terminal interrupts both processes: the run records itself as failed and
    exits, and this waits ``grace_s`` for that before killing it, then raises
    KeyboardInterrupt so the suite stops.
    """
    proc = subprocess.Popen(command)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise

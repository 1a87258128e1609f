"""What a run's record holds: its fields (one column each in the store), the hash that tells
repeats of one configuration, and the config keys that differ between two runs of it.

A run's record is built from its config before anything is built (:func:`new_record`), so a
run that fails while building its data or model is recorded too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

STATUSES = ("running", "completed", "failed")
# What a finished run writes into its run directory (main process), before it records its end.
RESULTS_FILE = "metrics.json"
# Config keys (dotted paths) that differ between two runs of one configuration, or that
# describe a component rather than what a run computes: where they write, where the data
# lies, the launcher, the store's id, and the `contract:` nodes that tell the tests what a
# model or dataset provides. Left out of the config hash, of a leaderboard row's variant and
# of `cvbench compare`'s config differences.
RUN_SPECIFIC_KEYS = ("paths", "hydra", "run_id", "model.contract", "data.contract")

# name -> SQLite type; the JSON columns hold dicts and lists.
COLUMNS: dict[str, str] = {
    "run_id": "TEXT PRIMARY KEY",
    "run_name": "TEXT NOT NULL",
    "kind": "TEXT NOT NULL",  # "train" or "eval"
    "experiment": "TEXT",
    "task": "TEXT",
    "dataset": "TEXT",
    "model": "TEXT",
    "seed": "INTEGER",
    "status": "TEXT NOT NULL",
    "error": "TEXT",
    "metrics": "TEXT",  # JSON
    "primary_metric": "TEXT",
    "direction": "TEXT",  # "min" or "max"
    "primary_value": "REAL",
    "config": "TEXT",  # JSON, resolved
    "config_hash": "TEXT",
    "overrides": "TEXT",  # JSON list
    "run_dir": "TEXT",
    "git_commit": "TEXT",
    "git_dirty": "INTEGER",
    "packages": "TEXT",  # JSON
    "device": "TEXT",  # JSON
    "hostname": "TEXT",
    "pid": "INTEGER",
    "started_at": "TEXT",  # ISO 8601, UTC
    "ended_at": "TEXT",
    "wall_time_s": "REAL",
    "train_images_per_s": "REAL",
    "params": "INTEGER",
    "flops_per_image": "REAL",
    "peak_memory_mb": "REAL",
}
JSON_COLUMNS = ("metrics", "config", "overrides", "packages", "device")
# What a run may still set when it ends (the rest is fixed when it starts).
END_FIELDS = (
    "metrics",
    "primary_value",
    "error",
    "wall_time_s",
    "train_images_per_s",
    "params",
    "flops_per_image",
    "peak_memory_mb",
)


@dataclass
class RunRecord:
    """One run as the store holds it. Units: seconds, images per second, MiB, FLOPs
    (multiply-adds count 2) per image."""

    run_id: str
    run_name: str
    kind: str = "train"
    experiment: str | None = None
    task: str | None = None
    dataset: str | None = None
    model: str | None = None
    seed: int | None = None
    status: str = "running"
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_metric: str | None = None
    direction: str | None = None
    primary_value: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str | None = None
    overrides: list[str] = field(default_factory=list)
    run_dir: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    packages: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    hostname: str | None = None
    pid: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    wall_time_s: float | None = None
    train_images_per_s: float | None = None
    params: int | None = None
    flops_per_image: float | None = None
    peak_memory_mb: float | None = None

    @property
    def group(self) -> str:
        """What a leaderboard row stands for: the experiment, else the run name."""
        return self.experiment or self.run_name


def new_run_id() -> str:
    """A fresh run id: 12 hex digits (48 random bits)."""
    return uuid.uuid4().hex[:12]


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_run_specific_key(key: str) -> bool:
    """Whether the config key ``key`` (dotted, or a group override such as
    ``hydra/launcher``) is, or lies under, one of :data:`RUN_SPECIFIC_KEYS`.

    >>> [is_run_specific_key(k) for k in ("paths.output_dir", "model.contract.input_shape")]
    [True, True]
    >>> [is_run_specific_key(k) for k in ("hydra/launcher", "model.width", "pathsx")]
    [True, False, False]
    """
    return any(key == p or key.startswith((f"{p}.", f"{p}/")) for p in RUN_SPECIFIC_KEYS)


def _without(node: Any, path: list[str]) -> Any:
    """``node`` less the key at ``path`` (a copy; ``node`` itself is left as it is)."""
    if not isinstance(node, Mapping) or path[0] not in node:
        return node
    if len(path) == 1:
        return {k: v for k, v in node.items() if k != path[0]}
    return {**node, path[0]: _without(node[path[0]], path[1:])}


def config_hash(cfg: DictConfig | dict) -> str:
    """A hash of what a run computes: the config with its interpolations unresolved, less
    the :data:`RUN_SPECIFIC_KEYS` (output and data paths, run id, contract nodes), as 16 hex
    digits. Two runs with the same hash are repeats of one configuration (same experiment,
    seed and overrides).

    >>> config_hash({"seed": 3, "optim": {"lr": 0.001}, "paths": {"output_dir": "/x"}})
    'd25c371cefa98c7c'
    """
    raw = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=False)
    for key in RUN_SPECIFIC_KEYS:
        raw = _without(raw, key.split("."))
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hydra_identity() -> dict[str, Any]:
    """The experiment and model options this run was composed from, and its overrides
    (empty outside a Hydra app)."""
    if not HydraConfig.initialized():
        return {}
    hydra = HydraConfig.get()
    choices = hydra.runtime.choices
    return {
        "experiment": choices.get("experiment"),
        "model": choices.get("model"),
        "overrides": list(hydra.overrides.task),
    }


def primary_metric(cfg: DictConfig) -> tuple[str, str]:
    """The task's headline test metric and its direction: ``task.monitor`` with the stage
    replaced by ``test`` (``val/top1_error`` -> ``test/top1_error``), and ``min``/``max``."""
    name = str(cfg.task.monitor).split("/", 1)[-1]
    return f"test/{name}", str(cfg.task.monitor_mode)


def new_record(
    cfg: DictConfig, *, kind: str, identity: dict[str, Any], env: dict[str, Any]
) -> RunRecord:
    """The ``running`` record of a run about to start.

    Args:
        cfg: the run's config.
        kind: "train" or "eval".
        identity: experiment, model and overrides, from :func:`hydra_identity` or from the
            checkpoint being evaluated.
        env: the run's ``environment.json`` (git, packages, device; empty: not the main
            process).
    """
    git = env.get("git", {})
    metric, direction = primary_metric(cfg)
    model = identity.get("model") or str(cfg.model.get("_target_", "")) or None
    return RunRecord(
        run_id=str(cfg.get("run_id") or new_run_id()),
        run_name=str(cfg.run_name),
        kind=kind,
        experiment=identity.get("experiment"),
        task=str(cfg.task.name),
        dataset=str(cfg.data.get("name")),
        model=model,
        seed=cfg.get("seed"),
        primary_metric=metric,
        direction=direction,
        config=OmegaConf.to_container(cfg, resolve=True),
        config_hash=config_hash(cfg),
        overrides=list(identity.get("overrides", [])),
        run_dir=str(cfg.paths.output_dir),
        git_commit=git.get("commit"),
        git_dirty=git.get("dirty"),
        packages=env.get("packages", {}),
        device=env.get("device", {}),
    )


def final_status(metrics: Mapping[str, Any], primary: str | None) -> tuple[str, Any, str | None]:
    """How a finished run with ``metrics`` ends: its status, primary value and error. A run
    whose primary metric is NaN ends failed.

    >>> final_status({"test/err": 2.5}, "test/err")
    ('completed', 2.5, None)
    >>> final_status({"test/err": float("nan")}, "test/err")
    ('failed', nan, 'the primary metric test/err is NaN')
    """
    value = metrics.get(primary) if primary else None
    value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if value is not None and math.isnan(value):
        return "failed", value, f"the primary metric {primary} is NaN"
    return "completed", value, None


def finished_run(run_dir: str | None) -> tuple[dict[str, Any], str] | None:
    """The metrics a finished run wrote into ``run_dir`` (:data:`RESULTS_FILE`) and when (ISO
    8601, UTC); None when it holds none, or none that reads as a run's metrics."""
    if not run_dir:
        return None
    path = Path(run_dir) / RESULTS_FILE
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        written = os.stat(path).st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    ended = datetime.fromtimestamp(written, timezone.utc).isoformat(timespec="seconds")
    return metrics, ended

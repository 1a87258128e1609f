"""A run's record in the results store: what identifies it, and its start and end.

The record is inserted as ``running`` before anything is built, so a run that fails while
building its data or model is recorded too, and updated once at the end: ``completed`` with
its metrics and costs, or ``failed`` with the error (Ctrl-C and SIGTERM included). Only the
main process (global rank 0) writes, so a DDP run is one record.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cvbench.bench.store import RUN_SPECIFIC_KEYS, ResultsStore, RunRecord, new_run_id

MAX_ERROR_CHARS = 4000


def config_hash(cfg: DictConfig | dict) -> str:
    """A hash of what a run computes: the config with its interpolations unresolved, less
    the run-specific keys (output and data paths, run id), as 16 hex digits. Two runs with
    the same hash are repeats of one configuration (same experiment, seed and overrides)."""
    raw = cfg if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=False)
    kept = {k: v for k, v in raw.items() if k not in RUN_SPECIFIC_KEYS}
    text = json.dumps(kept, sort_keys=True, default=str)
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


def describe_error(err: BaseException) -> str:
    """What the record says of a failure: the exception's type and message, shortened."""
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(err).__name__}{'' if not str(err) else ': ' + str(err)})"
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def new_record(
    cfg: DictConfig, *, kind: str, identity: dict[str, Any], env: dict[str, Any]
) -> RunRecord:
    """The ``running`` record of a run about to start.

    Args:
        cfg: the run's config.
        kind: "train" or "eval".
        identity: experiment, model and overrides, from :func:`hydra_identity` or from the
            checkpoint being evaluated.
        env: :func:`cvbench.run.env.environment_record` (empty: not the main process).
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


class RecordedRun:
    """Start a run's record in ``store`` and end it once (``store`` None: record nothing)."""

    def __init__(self, store: ResultsStore | None, record: RunRecord) -> None:
        self.store = store
        self.record = record
        self.started = time.perf_counter()
        if store is not None:
            store.start(record)

    def wall_time_s(self) -> float:
        return time.perf_counter() - self.started

    def completed(self, metrics: dict[str, Any], **costs: Any) -> None:
        """Record the final metrics; a run whose primary metric is NaN is recorded failed."""
        value = metrics.get(self.record.primary_metric)
        value = value if isinstance(value, (int, float)) else None
        status, error = "completed", None
        if value is not None and math.isnan(value):
            status, error = "failed", f"the primary metric {self.record.primary_metric} is NaN"
        if self.store is not None:
            self.store.end(
                self.record.run_id,
                status,
                metrics=metrics,
                primary_value=value,
                error=error,
                wall_time_s=self.wall_time_s(),
                **costs,
            )

    def failed(self, err: BaseException, **costs: Any) -> None:
        if self.store is not None:
            self.store.end(
                self.record.run_id,
                "failed",
                error=describe_error(err),
                wall_time_s=self.wall_time_s(),
                **costs,
            )

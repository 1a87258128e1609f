"""Leaderboard tables from the results store: one table per (task, dataset, judge), one row per
(experiment, model, variant), each metric as the mean and sample standard deviation over the
row's completed runs (its seeds). The judge is the network a task's metrics are computed with
where the task names one (``task.judge`` in the run's resolved config: image synthesis's feature
network), so that, e.g., FIDs under different feature networks never share a table.

A row's *variant* is its command-line overrides other than the seed, the experiment, the model
and the run-specific ones (paths, hydra, run name): two runs of one experiment with different
``optim.lr`` are two rows, never averaged together as if they were seeds.

A table's columns are the task's ``leaderboard`` metric keys (``task.leaderboard`` in
``conf/task/<task>.yaml``, read from each run's resolved config), the primary metric first;
a column no completed run records is left out. Rows are sorted by the primary metric in its
direction (``min`` or ``max``); rows without it come last. Runs that failed or are still
running are not in the table, nor the earlier of two completed runs with the same config hash
(a repeat, not another seed): the table counts them in :attr:`Table.left_out`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cvbench.store.record import RunRecord, is_run_specific_key

# Overrides that do not change what a row stands for (key before "=", without + / ++ / ~).
IDENTITY_KEYS = ("seed", "experiment", "model", "run_name")
COSTS = ("params", "flops_per_image", "train_images_per_s", "wall_time_s")
RowKey = tuple[str, str | None, tuple[str, ...]]  # (experiment or run name, model, variant)


@dataclass(frozen=True)
class Stat:
    """A metric over a row's runs: the mean, the sample standard deviation (``ddof=1``;
    None with fewer than 2 values) and how many runs recorded a number."""

    mean: float | None = None
    std: float | None = None
    count: int = 0


def summarize(values: Sequence[float]) -> Stat:
    """The :class:`Stat` of ``values``; a NaN or infinite value makes the mean and std NaN.

    >>> summarize([10.0, 12.0, 14.0])
    Stat(mean=12.0, std=2.0, count=3)
    >>> summarize([5.0])
    Stat(mean=5.0, std=None, count=1)
    """
    if not values:
        return Stat()
    if not all(math.isfinite(v) for v in values):
        nan = float("nan")
        return Stat(mean=nan, std=nan if len(values) >= 2 else None, count=len(values))
    mean = math.fsum(values) / len(values)
    std = statistics.stdev(values) if len(values) >= 2 else None
    return Stat(mean=mean, std=std, count=len(values))


@dataclass
class Row:
    """One (experiment, model, variant) of a table and its completed runs."""

    experiment: str
    model: str | None
    variant: tuple[str, ...]
    run_ids: list[str] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    metrics: dict[str, Stat] = field(default_factory=dict)
    costs: dict[str, Stat] = field(default_factory=dict)
    # The variant's overrides that tell this row from the other rows of its experiment and
    # model (a suite's shared overrides, common to all of them, are not shown).
    distinct: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """The number of completed runs (seeds) averaged in this row."""
        return len(self.run_ids)

    @property
    def label(self) -> str:
        """The experiment, followed by the overrides that tell the row from its siblings."""
        return " ".join([self.experiment, *self.distinct])


@dataclass
class Table:
    """The leaderboard of one (task, dataset, judge): ``columns`` are metric keys, ``rows`` best
    first, ``left_out`` counts the runs not in it by reason (``failed``, ``running``,
    ``repeated``), ``judge`` names the network the metrics are computed with (None: the task
    names none)."""

    task: str
    dataset: str | None
    primary: str
    direction: str
    columns: list[str]
    rows: list[Row]
    left_out: dict[str, int] = field(default_factory=dict)
    judge: str | None = None

    @property
    def title(self) -> str:
        title = f"{self.task} · {self.dataset or '-'}"
        return f"{title} · judged by {self.judge}" if self.judge else title

    @property
    def slug(self) -> str:
        """An id made of letters, digits, ``-`` and ``_``: ``classification-digits``,
        ``synthesis-digits-cnn_digits32_s0``."""
        parts = [self.task, self.dataset or "none", *([self.judge] if self.judge else [])]
        return re.sub(r"[^A-Za-z0-9_]+", "-", "-".join(parts)).strip("-")


def number(value: Any) -> float | None:
    """``value`` as a float when it is a number (not a bool, not a string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def variant(overrides: Iterable[str]) -> tuple[str, ...]:
    """The overrides that make a run a different configuration, sorted.

    >>> variant(["experiment=a/b", "seed=3", "optim.lr=0.1", "paths.output_dir=/x", "+x=1"])
    ('+x=1', 'optim.lr=0.1')
    >>> variant(["data.contract.fake=tests.fakes.x", "data.batch_size=8"])
    ('data.batch_size=8',)
    """
    kept = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in IDENTITY_KEYS:
            continue
        if is_run_specific_key(key):
            continue
        kept.append(override)
    return tuple(sorted(kept))


def leaderboard_keys(record: RunRecord) -> list[str]:
    """The metric keys of ``record``'s task leaderboard (``config["task"]["leaderboard"]``).

    Raises:
        ValueError: the key is not a list of strings, naming the run and the config file.
    """
    keys = (record.config.get("task") or {}).get("leaderboard")
    if keys is None:
        return []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(
            f"run {record.run_id}: task.leaderboard is {keys!r}; it must be a list of metric "
            f"keys such as [test/top1_error, test/top5_error] (conf/task/{record.task}.yaml)"
        )
    return keys


def primary_of(records: Sequence[RunRecord]) -> tuple[str, str]:
    """The primary metric and direction of a table: the latest record that names them; else
    the first leaderboard key, in the task's ``monitor_mode``, else ``min`` for an error or
    loss and ``max`` otherwise.

    Raises:
        ValueError: no record names a primary metric or a leaderboard.
    """
    for record in reversed(records):
        if record.primary_metric:
            return record.primary_metric, record.direction or guess_direction(
                record.primary_metric, record
            )
    for record in reversed(records):
        keys = leaderboard_keys(record)
        if keys:
            return keys[0], guess_direction(keys[0], record)
    raise ValueError(
        f"runs {', '.join(r.run_id for r in records)} (task {records[0].task}) record no primary "
        f"metric and their config no task.leaderboard: add it to conf/task/{records[0].task}.yaml"
    )


def guess_direction(metric: str, record: RunRecord) -> str:
    mode = (record.config.get("task") or {}).get("monitor_mode")
    if mode in ("min", "max"):
        return mode
    return "min" if re.search(r"error|loss", metric) else "max"


def table_columns(primary: str, completed: Sequence[RunRecord]) -> list[str]:
    """The primary metric, then the leaderboard keys (first seen first) some run records."""
    keys = [primary]
    for record in completed:
        keys += [k for k in leaderboard_keys(record) if k not in keys]
    return [
        k
        for k in keys
        if k == primary or any(number(r.metrics.get(k)) is not None for r in completed)
    ]


def latest_per_config(completed: Sequence[RunRecord]) -> list[RunRecord]:
    """The latest of the runs with the same config hash (the same seed and overrides run
    again): a repeat is not another seed. Runs without a hash are all kept."""
    latest: dict[str, RunRecord] = {}
    for record in completed:  # in start order
        if record.config_hash:
            latest[record.config_hash] = record
    kept = {id(r) for r in latest.values()}
    return [r for r in completed if not r.config_hash or id(r) in kept]


def build_row(key: RowKey, runs: Sequence[RunRecord], columns: Sequence[str]) -> Row:
    """The row of ``runs`` (completed, one configuration over seeds)."""
    row = Row(experiment=key[0], model=key[1], variant=key[2])
    row.run_ids = [r.run_id for r in runs]
    row.seeds = [r.seed for r in runs]
    for column in columns:
        values = [number(r.metrics.get(column)) for r in runs]
        row.metrics[column] = summarize([v for v in values if v is not None])
    for cost in COSTS:
        values = [number(getattr(r, cost)) for r in runs]
        row.costs[cost] = summarize([v for v in values if v is not None])
    return row


def mark_distinct(rows: Sequence[Row]) -> None:
    """Set each row's :attr:`Row.distinct`: its variant less the overrides that every row of
    the same experiment and model has."""
    siblings: dict[tuple[str, str | None], list[Row]] = {}
    for row in rows:
        siblings.setdefault((row.experiment, row.model), []).append(row)
    for group in siblings.values():
        common = set.intersection(*(set(r.variant) for r in group))
        for row in group:
            row.distinct = tuple(o for o in row.variant if o not in common)


def sort_key(row: Row, primary: str, direction: str) -> tuple[int, float, str, str]:
    """Best first; a row without the primary metric (or NaN) last; ties by label, model."""
    mean = row.metrics[primary].mean
    if mean is None or math.isnan(mean):
        return (1, 0.0, row.label, row.model or "")
    return (0, mean if direction == "min" else -mean, row.label, row.model or "")


def judge_of(record: RunRecord) -> str | None:
    """The network ``record``'s metrics are computed with, where its task names one
    (``task.judge``), else None."""
    judge = (record.config.get("task") or {}).get("judge")
    return None if judge is None else str(judge)


def build_table(
    task: str, dataset: str | None, records: Sequence[RunRecord], judge: str | None = None
) -> Table:
    """The table of one (task, dataset, judge) from all its ``records`` (any status)."""
    completed = latest_per_config([r for r in records if r.status == "completed"])
    left_out = Counter(r.status for r in records if r.status != "completed")
    repeated = sum(r.status == "completed" for r in records) - len(completed)
    if repeated:
        left_out["repeated"] = repeated
    primary, direction = primary_of(completed or records)
    columns = table_columns(primary, completed)
    groups: dict[RowKey, list[RunRecord]] = {}
    for record in completed:
        groups.setdefault((record.group, record.model, variant(record.overrides)), []).append(
            record
        )
    rows = [build_row(key, runs, columns) for key, runs in groups.items()]
    mark_distinct(rows)
    rows.sort(key=lambda row: sort_key(row, primary, direction))
    left = dict(sorted(left_out.items()))
    return Table(task, dataset, primary, direction, columns, rows, left, judge)


def build_tables(records: Iterable[RunRecord]) -> list[Table]:
    """One :class:`Table` per (task, dataset, judge) of ``records``, sorted by task, dataset,
    judge."""
    by_group: dict[tuple[str, str | None, str | None], list[RunRecord]] = {}
    for record in records:
        key = (record.task or "-", record.dataset, judge_of(record))
        by_group.setdefault(key, []).append(record)
    ordered = sorted(by_group, key=lambda k: (k[0], k[1] or "", k[2] or ""))
    return [
        build_table(task, data, by_group[(task, data, judge)], judge)
        for task, data, judge in ordered
    ]

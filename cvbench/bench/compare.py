"""Compare two runs or two experiments from the results store: config differences, metric
differences and whether the difference in one metric exceeds noise (see :mod:`cvbench.bench.stats`).

A side is a run (its id or a unique prefix) or an experiment (all its completed train runs, one
per seed). Per-image scores, for the paired bootstrap, are read from the run directories:

- restoration: ``test_per_image.csv`` (``name``, ``psnr``, ``ssim``, ``baseline_psnr``,
  ``baseline_ssim``) gives ``test/psnr``, ``test/ssim``, ``test/baseline_psnr``, ...;
- classification: ``test_predictions.txt`` + ``test_labels.txt`` (one line per test image in
  dataset order) give ``test/top{k}_error``: 0 or 100 per image.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvbench.bench.stats import BootstrapResult, WelchResult, paired_bootstrap, welch_test
from cvbench.store.database import ResultsStore, StoreError
from cvbench.store.record import RunRecord, is_run_specific_key

# Config keys that differ between any two runs and say nothing about the method.
NAME_KEYS = frozenset({"run_name", "ckpt_path"})
RUN_SPECIFIC_LEAVES = frozenset({"output_dir", "default_root_dir", "dirpath", "save_dir"})
ABSENT = "<absent>"  # a config key one side does not have
# Per-image scores: restoration's test_per_image.csv columns, classification's top-k errors.
# The columns of test_per_image.csv whose mean is the recorded test metric of that name:
# restoration's PSNR / SSIM, text recognition's per-word accuracy (0 or 100) and 1 - N.E.D.
PER_IMAGE_COLUMNS = (
    "psnr",
    "ssim",
    "baseline_psnr",
    "baseline_ssim",
    "word_acc",
    "one_minus_ned",
)
TOPK_ERROR = re.compile(r"test/top(\d+)_error")


class NotApplicable(Exception):
    """A test cannot be run; the message says why."""


@dataclass
class Side:
    """One side of a comparison: ``name`` as given, ``kind`` "run" or "experiment"."""

    name: str
    kind: str
    records: list[RunRecord]


@dataclass
class Outcome:
    """A test's result, or why it does not apply (``result`` None, ``reason`` set)."""

    result: WelchResult | BootstrapResult | None = None
    reason: str | None = None


@dataclass
class Comparison:
    """Everything ``cvbench compare`` reports; differences are always ``B - A``."""

    a: Side
    b: Side
    metric: str
    direction: str | None  # "min", "max" or None (unknown)
    config_differences: list[tuple[str, list[Any], list[Any]]]
    metrics: list[tuple[str, list[float], list[float]]]
    welch: Outcome
    bootstrap: Outcome


def resolve_side(store: ResultsStore, name: str) -> Side:
    """The runs ``name`` stands for: an experiment's completed train runs (the latest run per
    config hash), else the completed run whose id is or starts with ``name``.

    Raises:
        StoreError: nothing matches, several runs match, or the run did not complete.
    """
    runs = store.runs(experiment=name, kind="train")
    if runs:
        done = [r for r in runs if r.status == "completed"]
        if not done:
            raise StoreError(
                f"experiment {name!r} has {len(runs)} train runs but none completed "
                f"(statuses: {', '.join(sorted({r.status for r in runs}))}); "
                f"run it again or compare completed runs"
            )
        latest = {r.config_hash or r.run_id: r for r in done}  # start order: later wins
        return Side(name, "experiment", list(latest.values()))
    try:
        record = store.get(name)
    except StoreError as err:
        raise StoreError(
            f"{err}, and no experiment named {name!r}; give a run id (or a unique prefix) "
            f"or an experiment name (`cvbench leaderboard` lists them)"
        ) from None
    if record.status != "completed":
        detail = f": {record.error}" if record.error else ""
        raise StoreError(f"run {record.run_id} is {record.status}{detail}; compare completed runs")
    return Side(name, "run", [record])


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as one level of dotted keys.

    >>> flatten({"a": {"b": 1, "c": [2, {"d": 3}]}, "e": []})
    {'a.b': 1, 'a.c.0': 2, 'a.c.1.d': 3, 'e': []}
    """
    if isinstance(config, dict) and config:
        items = config.items()
    elif isinstance(config, list) and config:
        items = enumerate(config)
    else:
        return {prefix: config} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def is_run_specific(key: str) -> bool:
    """Whether a config key differs from run to run by nature (paths, output folders, name).

    >>> is_run_specific("paths.output_dir"), is_run_specific("trainer.default_root_dir")
    (True, True)
    >>> is_run_specific("model.contract.input_shape"), is_run_specific("optim.lr")
    (True, False)
    """
    leaf = key.rsplit(".", 1)[-1]
    return is_run_specific_key(key) or key in NAME_KEYS or leaf in RUN_SPECIFIC_LEAVES


def _distinct(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return sorted(seen, key=repr)


def config_differences(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]
) -> list[tuple[str, list[Any], list[Any]]]:
    """The flattened config keys whose values differ between the sides, leaving out
    run-specific keys: ``(key, values on A, values on B)``, each side's distinct values (one
    for a run; a key that varies across seeds, like ``seed``, differs only when the sets do).

    >>> config_differences([{"lr": 1, "seed": 0}, {"lr": 1, "seed": 1}],
    ...                    [{"lr": 2, "seed": 1}, {"lr": 2, "seed": 0}])
    [('lr', [1], [2])]
    """
    flat_a = [flatten(c) for c in a]
    flat_b = [flatten(c) for c in b]
    keys = sorted({k for f in (*flat_a, *flat_b) for k in f if not is_run_specific(k)})
    rows = []
    for key in keys:
        values_a = _distinct([f.get(key, ABSENT) for f in flat_a])
        values_b = _distinct([f.get(key, ABSENT) for f in flat_b])
        if values_a != values_b:
            rows.append((key, values_a, values_b))
    return rows


def metric_value(record: RunRecord, key: str) -> float | None:
    """The record's finite numeric value of metric ``key``, else None."""
    value = record.metrics.get(key)
    if value is None and key == record.primary_metric:
        value = record.primary_value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def metric_rows(
    a: Sequence[RunRecord], b: Sequence[RunRecord], first: str
) -> list[tuple[str, list[float], list[float]]]:
    """Per numeric metric (``first``, then the rest sorted): its values on A and on B."""
    keys = {k for r in (*a, *b) for k in r.metrics if metric_value(r, k) is not None}
    ordered = ([first] if first in keys else []) + sorted(keys - {first})
    return [
        (
            key,
            [v for r in a if (v := metric_value(r, key)) is not None],
            [v for r in b if (v := metric_value(r, key)) is not None],
        )
        for key in ordered
    ]


def _read_per_image_csv(run_dir: Path, column: str) -> dict[str, float]:
    path = run_dir / "test_per_image.csv"
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise NotApplicable(f"{path} lists no images")
    if column not in rows[0]:
        raise NotApplicable(f"{path} has no {column!r} column")
    names = [row["name"] for row in rows]
    unique = len(set(names)) == len(names)
    scores = {}
    for row in rows:
        if not row[column]:
            raise NotApplicable(f"{path}: no {column} for image {row['name']}")
        scores[row["name"] if unique else f"{row['index']}:{row['name']}"] = float(row[column])
    return scores


def _read_classification(run_dir: Path, k: int) -> dict[str, float]:
    predictions = (run_dir / "test_predictions.txt").read_text().splitlines()
    labels = (run_dir / "test_labels.txt").read_text().splitlines()
    if not labels or len(predictions) != len(labels):
        raise NotApplicable(
            f"{run_dir}: {len(predictions)} lines in test_predictions.txt but {len(labels)} "
            f"in test_labels.txt"
        )
    return {
        f"{i}:{label.strip()}": 0.0 if label.strip() in guesses.split()[:k] else 100.0
        for i, (guesses, label) in enumerate(zip(predictions, labels, strict=True))
    }


def per_image_scores(record: RunRecord, metric: str) -> dict[str, float]:
    """The run's per-test-image scores of ``metric``, keyed by image (restoration, text
    recognition: its name; classification: its position and label, so runs on other images
    never pair).

    Raises:
        NotApplicable: the metric has no per-image form, or the run's files are missing.
    """
    name = metric.removeprefix("test/")
    topk = TOPK_ERROR.fullmatch(metric)
    if topk:
        files = ("test_predictions.txt", "test_labels.txt")
    elif metric.startswith("test/") and name in PER_IMAGE_COLUMNS:
        files = ("test_per_image.csv",)
    else:
        raise NotApplicable(
            f"no per-image scores of {metric} are recorded (runs record them for test/"
            f"{', test/'.join(PER_IMAGE_COLUMNS)} and test/top<k>_error)"
        )
    run_dir = Path(record.run_dir) if record.run_dir else None
    missing = [f for f in files if run_dir is None or not (run_dir / f).is_file()]
    if run_dir is None or missing:
        where = run_dir or "(no run directory recorded)"
        raise NotApplicable(f"run {record.run_id} has no {' / '.join(missing)} in {where}")
    if topk:
        scores = _read_classification(run_dir, int(topk.group(1)))
    else:
        scores = _read_per_image_csv(run_dir, name)
    if not all(math.isfinite(v) for v in scores.values()):
        raise NotApplicable(f"run {record.run_id}: some per-image {metric} values are not finite")
    return scores


def side_scores(side: Side, metric: str) -> dict[str, float]:
    """Per-image scores of a side: a run's, or the mean over an experiment's runs (which must
    have scored the same images, and whose files must agree with the recorded metric)."""
    runs = [per_image_scores(r, metric) for r in side.records]
    for record, scores in zip(side.records, runs, strict=True):
        recorded, mean = metric_value(record, metric), sum(scores.values()) / len(scores)
        if recorded is not None and abs(mean - recorded) > 1e-3 * max(1.0, abs(recorded)):
            raise NotApplicable(
                f"run {record.run_id}: the mean of its per-image {metric} ({mean:.6g}) is not "
                f"its recorded {metric} ({recorded:.6g}); the files in {record.run_dir} are "
                f"from another test"
            )
    for record, scores in zip(side.records[1:], runs[1:], strict=True):
        if scores.keys() != runs[0].keys():
            raise NotApplicable(
                f"runs {side.records[0].run_id} and {record.run_id} of {side.name} "
                f"scored different test images"
            )
    return {key: sum(s[key] for s in runs) / len(runs) for key in runs[0]}


def run_welch(values_a: list[float], values_b: list[float]) -> Outcome:
    """Welch's t-test across seeds, or why it does not apply."""
    if len(values_a) < 2 or len(values_b) < 2:
        return Outcome(
            reason=f"needs >= 2 seeds on each side; A has {len(values_a)}, B {len(values_b)}"
        )
    result = welch_test(values_a, values_b)
    if math.isnan(result.p_value):
        return Outcome(reason="the metric does not vary across seeds on either side")
    return Outcome(result=result)


def run_bootstrap(a: Side, b: Side, metric: str, *, resamples: int, seed: int) -> Outcome:
    """The paired bootstrap over per-image scores, or why it does not apply."""
    try:
        scores_a, scores_b = side_scores(a, metric), side_scores(b, metric)
    except NotApplicable as err:
        return Outcome(reason=str(err))
    if scores_a.keys() != scores_b.keys():
        return Outcome(
            reason=f"A and B scored different test images ({len(scores_a)} and {len(scores_b)}"
            f", {len(scores_a.keys() & scores_b.keys())} in common)"
        )
    keys = list(scores_a)
    result = paired_bootstrap(
        [scores_a[k] for k in keys], [scores_b[k] for k in keys], resamples=resamples, seed=seed
    )
    return Outcome(result=result)


def compare(
    store: ResultsStore,
    name_a: str,
    name_b: str,
    *,
    metric: str | None = None,
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare ``name_a`` and ``name_b`` (runs or experiments) on every metric, and test
    ``metric`` (default: A's primary metric) against noise.

    Raises:
        StoreError: a side names nothing usable.
        ValueError: no metric to test, or it is recorded on neither side.
    """
    a, b = resolve_side(store, name_a), resolve_side(store, name_b)
    primaries = [r.primary_metric for r in (*a.records, *b.records) if r.primary_metric]
    metric = metric or (primaries[0] if primaries else None)
    if metric is None:
        raise ValueError("no primary metric is recorded for these runs; pass metric=KEY")
    rows = metric_rows(a.records, b.records, metric)
    values = {key: (va, vb) for key, va, vb in rows}
    if metric not in values:
        known = ", ".join(values) or "none"
        raise ValueError(f"metric={metric} is not recorded for these runs; recorded: {known}")
    directions = [r.direction for r in (*a.records, *b.records) if r.primary_metric == metric]
    return Comparison(
        a=a,
        b=b,
        metric=metric,
        direction=next((d for d in directions if d), None),
        config_differences=config_differences(
            [r.config for r in a.records], [r.config for r in b.records]
        ),
        metrics=rows,
        welch=run_welch(*values[metric]),
        bootstrap=run_bootstrap(a, b, metric, resamples=resamples, seed=seed),
    )

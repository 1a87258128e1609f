"""``cvbench compare a=A b=B [metric=KEY] [db=PATH] [resamples=10000] [seed=0]
[format=text|json]``: two runs or experiments from the results store, their config and metric
differences, and whether the difference in ``metric`` (default: the primary metric) is more
than noise."""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cvbench.bench.compare import Comparison, Outcome, Side, compare
from cvbench.bench.stats import WelchResult
from cvbench.cli.errors import reported_errors
from cvbench.cli.options import REQUIRED, Command, Setting, parse_or_exit
from cvbench.store.database import open_store

SIDE = "a run id (or a unique prefix of one), or an experiment name (all its completed seeds)"
COMMAND = Command(
    "compare",
    "Two runs or experiments from the results store: their config and metric differences, "
    "and whether the difference in one metric is more than noise (Welch's t-test across "
    "seeds, paired bootstrap over test images). Every difference is B - A.",
    (
        Setting("a", f"side A: {SIDE}", str, REQUIRED, metavar="RUN|EXPERIMENT"),
        Setting("b", f"side B: {SIDE}", str, REQUIRED, metavar="RUN|EXPERIMENT"),
        Setting(
            "metric",
            "the metric tested against noise, e.g. test/psnr (default: the "
            "primary metric of A's runs)",
            str,
            metavar="KEY",
        ),  # fmt: skip
        Setting("db", "the results store (default: $CVBENCH_DB, else outputs/cvbench.db)", Path),
        Setting("resamples", "bootstrap samples", int, 10000, minimum=1),
        Setting("seed", "seed of the bootstrap's resampling", int, 0, minimum=0),
        Setting("format", "text for reading, json for scripts", str, "text", ("text", "json")),
    ),
    examples=(
        "compare a=classification/digits_small_cnn b=RUN_ID",
        "compare a=sr/a b=sr/b metric=test/ssim format=json",
    ),
    positional=("a", "b"),
)
ALPHA = 0.05  # a difference with p below this is called more than noise
NOISE = {"welch": "seed noise", "bootstrap": "test-image sampling noise"}
MAX_VALUE_WIDTH = 48


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.5g}"


def _values(values: list[Any]) -> str:
    text = " | ".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    return text if len(text) <= MAX_VALUE_WIDTH else text[: MAX_VALUE_WIDTH - 3] + "..."


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in (header, *rows)
    ]


def _describe(label: str, side: Side) -> str:
    seeds = ", ".join(str(r.seed) for r in side.records)
    if side.kind == "experiment":
        return (
            f"{label}  experiment {side.name}: {len(side.records)} completed runs (seeds {seeds})"
        )
    record = side.records[0]
    where = f", experiment {record.experiment}" if record.experiment else ""
    return f"{label}  run {record.run_id}: {record.run_name}{where}, seed {seeds}"


def _summary(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{_num(values[0])} (1)"
    return f"{_num(statistics.mean(values))} ± {_num(statistics.stdev(values))} ({len(values)})"


def _diff(values_a: list[float], values_b: list[float]) -> float | None:
    if not values_a or not values_b:
        return None
    return statistics.mean(values_b) - statistics.mean(values_a)


def _test_line(name: str, outcome: Outcome) -> str:
    if name == "welch":
        title = "Welch's t-test across seeds"
    else:
        title = "Paired bootstrap over test images"
    result = outcome.result
    if result is None:
        return f"  {title}: does not apply: {outcome.reason}"
    interval = f"{_num(result.mean_diff)} [{_num(result.ci_low)}, {_num(result.ci_high)}]"
    if isinstance(result, WelchResult):
        detail = f"t = {result.t:.3f}, df = {result.df:.1f}, p = {result.p_value:.3g}"
    else:
        title = (
            f"Paired bootstrap over {result.n} test images "
            f"({result.resamples} resamples, seed {result.seed})"
        )
        shown = f"= {result.p_value:.3g}" if result.p_value else f"< {1 / result.resamples:.2g}"
        detail = f"p {shown}"
    noise = NOISE[name]
    verdict = f"more than {noise}" if result.p_value < ALPHA else f"within {noise}"
    return f"  {title}: {interval}, {detail}: {verdict}"


def _verdict(cmp: Comparison) -> str:
    applied = [
        (n, o.result)
        for n, o in (("welch", cmp.welch), ("bootstrap", cmp.bootstrap))
        if o.result is not None
    ]
    if not applied:
        return (
            f"Neither test applies, so it cannot be said whether the {cmp.metric} difference is "
            f"noise: give both sides >= 2 completed seeds (an experiment in a suite with several "
            f"seeds), or compare runs whose run directories hold per-image test scores."
        )
    name, result = applied[0]
    diff = result.mean_diff
    if cmp.direction in ("min", "max"):
        better = (diff < 0) == (cmp.direction == "min")
        how = "better" if better else "worse"
    else:
        how = "higher" if diff > 0 else "lower"
    if diff == 0:
        return f"A and B have the same mean {cmp.metric}."
    noise = NOISE[name]
    if result.p_value < ALPHA:
        verdict = f"more than {noise} (p < {ALPHA})"
    else:
        verdict = f"within {noise} (p >= {ALPHA})"
    return f"B is {how} than A on {cmp.metric} by {_num(abs(diff))}, {verdict}."


def render_text(cmp: Comparison) -> str:
    """The comparison as plain-text sections, for the terminal."""
    lines = [_describe("A", cmp.a), _describe("B", cmp.b), ""]
    lines.append(
        "Config differences (run-specific keys left out: paths.*, run_name, output folders)"
    )
    rows = [[k, _values(a), _values(b)] for k, a, b in cmp.config_differences]
    lines += _table(["key", "A", "B"], rows) if rows else ["  none"]
    lines += ["", "Metrics (mean ± std (number of runs); B - A of the means)"]
    rows = [[k, _summary(a), _summary(b), _num(_diff(a, b))] for k, a, b in cmp.metrics]
    lines += _table(["metric", "A", "B", "B - A"], rows)
    better = {"min": "; lower is better", "max": "; higher is better"}.get(cmp.direction, "")
    lines += [
        "",
        f"Is the {cmp.metric} difference more than noise? (B - A [95% interval]{better})",
        _test_line("welch", cmp.welch),
        _test_line("bootstrap", cmp.bootstrap),
        "",
        _verdict(cmp),
    ]
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    if outcome.result is None:
        return {"applies": False, "reason": outcome.reason}
    values = {k: _finite(v) for k, v in asdict(outcome.result).items()}
    return {"applies": True, **values, "more_than_noise": outcome.result.p_value < ALPHA}


def _side_dict(side: Side) -> dict[str, Any]:
    return {
        "name": side.name,
        "kind": side.kind,
        "run_ids": [r.run_id for r in side.records],
        "seeds": [r.seed for r in side.records],
    }


def comparison_dict(cmp: Comparison) -> dict[str, Any]:
    """The comparison as JSON-ready data (non-finite numbers as null)."""
    metrics = [
        {
            "key": key,
            "a": {"values": a, "mean": _finite(statistics.mean(a)) if a else None},
            "b": {"values": b, "mean": _finite(statistics.mean(b)) if b else None},
            "diff": _finite(_diff(a, b)),
        }
        for key, a, b in cmp.metrics
    ]
    return {
        "a": _side_dict(cmp.a),
        "b": _side_dict(cmp.b),
        "metric": cmp.metric,
        "direction": cmp.direction,
        "alpha": ALPHA,
        "config_differences": [{"key": k, "a": a, "b": b} for k, a, b in cmp.config_differences],
        "metrics": metrics,
        "welch": _outcome_dict(cmp.welch),
        "bootstrap": _outcome_dict(cmp.bootstrap),
    }


def main(argv: list[str]) -> None:
    """Print the comparison of the two runs or experiments named by ``a=`` and ``b=``."""
    settings = parse_or_exit(COMMAND, argv).values
    with reported_errors(), open_store(settings["db"]) as store:
        cmp = compare(
            store,
            settings["a"],
            settings["b"],
            metric=settings["metric"],
            resamples=settings["resamples"],
            seed=settings["seed"],
        )
    if settings["format"] == "json":
        sys.stdout.write(json.dumps(comparison_dict(cmp), indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(render_text(cmp) + "\n")

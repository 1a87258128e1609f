"""Reproduction recipes: published results, the configs meant to reproduce them, and verdicts.

A recipe is an experiment ``conf/experiment/repro/<name>.yaml`` with an ``expected`` block::

    expected:
      source: "torchvision ResNet50_Weights.IMAGENET1K_V1 (acc@1 76.130, ...)"
      metrics:
        test/top1_error: {value: 23.87, tolerance: 0.5}

A metric passes when ``|measured - value| <= tolerance``: the check is two-sided, since a result
far better than the reference also says the protocol differs from the paper's. A recipe passes
when every metric it lists passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cvbench.conf import CONF_DIR
from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

RECIPE_GROUP = "repro"  # recipes are the experiments conf/experiment/repro/*.yaml


@dataclass(frozen=True)
class Expectation:
    """One published number: ``metric`` (a metrics key, e.g. ``test/map``) within
    ``tolerance`` of ``value``, in the metric's unit."""

    metric: str
    value: float
    tolerance: float


@dataclass(frozen=True)
class Verdict:
    """A measured value against its :class:`Expectation`; ``measured`` None: not reported."""

    expected: Expectation
    measured: float | None

    @property
    def diff(self) -> float | None:
        return None if self.measured is None else self.measured - self.expected.value

    @property
    def passed(self) -> bool:
        return self.diff is not None and abs(self.diff) <= self.expected.tolerance + 1e-12


@dataclass(frozen=True)
class Recipe:
    """A reproduction recipe: experiment ``repro/<name>`` and what it should reach."""

    name: str
    path: Path
    source: str
    expectations: tuple[Expectation, ...]

    @property
    def experiment(self) -> str:
        return f"{RECIPE_GROUP}/{self.name}"

    @property
    def expected(self) -> dict[str, Any]:
        """The ``expected`` block as a dict (what :func:`verdict_lines` takes)."""
        metrics = {
            e.metric: {"value": e.value, "tolerance": e.tolerance} for e in self.expectations
        }
        return {"source": self.source, "metrics": metrics}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_expected(expected: Any, where: str = "expected") -> tuple[str, list[Expectation]]:
    """The source and the expectations of an ``expected`` block (a dict or DictConfig).

    Raises:
        ValueError: the block lacks ``source`` or ``metrics``, or a metric lacks a finite
            ``value`` or a ``tolerance`` >= 0; the message names ``where`` and the key.
    """
    if isinstance(expected, DictConfig):
        expected = OmegaConf.to_container(expected, resolve=True)
    shape = "expected: {source: '...', metrics: {<key>: {value: <number>, tolerance: <number>}}}"
    if not isinstance(expected, Mapping):
        raise ValueError(f"{where}: expected is {expected!r}; write it as {shape}")
    source, metrics = expected.get("source"), expected.get("metrics")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}: expected.source must name the published result; {shape}")
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueError(f"{where}: expected.metrics must list at least one metric; {shape}")
    out = []
    for key, spec in metrics.items():
        spec = spec if isinstance(spec, Mapping) else {}
        value, tolerance = spec.get("value"), spec.get("tolerance")
        if not (_number(value) and _number(tolerance) and tolerance >= 0):
            raise ValueError(
                f"{where}: expected.metrics.{key} is {metrics[key]!r}; it needs a number "
                f"`value` and a `tolerance` >= 0, e.g. {{value: 37.0, tolerance: 0.5}}"
            )
        out.append(Expectation(str(key), float(value), float(tolerance)))
    return source, out


def load_recipes(conf_dir: Path = CONF_DIR) -> list[Recipe]:
    """Every recipe ``conf_dir/experiment/repro/*.yaml``, sorted by name.

    Raises:
        ValueError: a recipe without a valid ``expected`` block (file named).
    """
    recipes = []
    for path in sorted((conf_dir / "experiment" / RECIPE_GROUP).glob("*.yaml")):
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        if "expected" not in raw:
            raise ValueError(f"{path}: a reproduction recipe needs an `expected:` block")
        source, expectations = parse_expected(raw["expected"], where=str(path))
        recipes.append(Recipe(path.stem, path, source, tuple(expectations)))
    return recipes


def find_recipe(name: str, conf_dir: Path = CONF_DIR) -> Recipe:
    """The recipe called ``name`` (``edsr_x2_set5`` or ``repro/edsr_x2_set5``).

    Raises:
        ValueError: no such recipe, naming the ones there are.
    """
    recipes = load_recipes(conf_dir)
    wanted = name.removeprefix(f"{RECIPE_GROUP}/").removesuffix(".yaml")
    for recipe in recipes:
        if recipe.name == wanted:
            return recipe
    valid = ", ".join(r.name for r in recipes) or "none"
    raise ValueError(
        f"no reproduction recipe {name!r} in {conf_dir}/experiment/repro; valid: {valid}"
    )


def verdicts(expected: Any, metrics: Mapping[str, Any]) -> list[Verdict]:
    """Each expected metric against ``metrics`` (a run's final metrics; a missing, null or
    non-numeric value is ``measured`` None, which fails)."""
    _, expectations = parse_expected(expected)
    return [
        Verdict(e, float(metrics[e.metric]) if _number(metrics.get(e.metric)) else None)
        for e in expectations
    ]


def _decimals(value: float) -> int:
    """Decimals to print: those of the published value, at least 2 (``7.138`` -> 3)."""
    text = f"{value:.6f}".rstrip("0")
    return max(2, len(text.split(".")[1]))


def verdict_line(verdict: Verdict) -> str:
    """``PASS test/top1_error 23.95 (expected 23.87 ± 0.50, diff +0.08)``."""
    e = verdict.expected
    d = _decimals(e.value)
    target = f"expected {e.value:.{d}f} ± {e.tolerance:.{d}f}"
    if verdict.measured is None:
        return f"FAIL {e.metric}: not in the run's metrics ({target})"
    status = "PASS" if verdict.passed else "FAIL"
    return f"{status} {e.metric} {verdict.measured:.{d}f} ({target}, diff {verdict.diff:+.{d}f})"


def verdict_lines(expected: Any, metrics: Mapping[str, Any]) -> list[str]:
    """One PASS / FAIL line per expected metric (see :func:`verdict_line`).

    Args:
        expected: a config's ``expected`` block (dict or DictConfig).
        metrics: the run's final metrics, ``{"test/top1_error": 23.95, ...}``.

    >>> exp = {"source": "x", "metrics": {"test/map": {"value": 37.0, "tolerance": 0.5}}}
    >>> verdict_lines(exp, {"test/map": 36.6})
    ['PASS test/map 36.60 (expected 37.00 ± 0.50, diff -0.40)']
    """
    return [verdict_line(v) for v in verdicts(expected, metrics)]


def latest_runs(store: ResultsStore, recipe: Recipe) -> dict[str, RunRecord]:
    """The newest train run of the recipe's experiment in each status."""
    latest: dict[str, RunRecord] = {}
    for record in store.runs(experiment=recipe.experiment, kind="train"):
        latest[record.status] = record  # start order: later ones replace earlier ones
    return latest


def recipe_status(recipe: Recipe, store: ResultsStore | None) -> tuple[str, list[str]]:
    """The recipe's status and its detail lines, from its latest completed train run.

    Returns:
        status: "PASS" or "FAIL" (latest completed run), "failed", "running" or "not run";
        lines: the verdict of each metric (or the expected values), the run and its error.
    """
    latest = latest_runs(store, recipe) if store is not None else {}
    done = latest.get("completed")
    if done is not None:
        found = verdicts(recipe.expected, done.metrics)
        status = "PASS" if all(v.passed for v in found) else "FAIL"
        lines = [verdict_line(v) for v in found]
        lines.append(f"run {done.run_id} ({done.ended_at}, {done.run_dir}){_extra(done)}")
        return status, lines
    lines = [
        f"expected {e.metric} {e.value:.{_decimals(e.value)}f} ± "
        f"{e.tolerance:.{_decimals(e.value)}f}"
        for e in recipe.expectations
    ]
    for status in ("failed", "running"):
        if status in latest:
            record = latest[status]
            error = (record.error or "").strip().splitlines()
            lines.append(f"run {record.run_id}: {error[-1] if error else status}")
            return status, lines
    return "not run", lines


def _extra(record: RunRecord) -> str:
    """``; overrides: a=1 b=2``: the overrides that change the recipe (not the experiment
    itself, nor where the run reads and writes: run id, paths, Hydra's settings)."""
    extra = [
        o
        for o in record.overrides
        if not o.lstrip("+~").startswith(("experiment=", "run_id=", "paths.", "hydra."))
    ]
    return f"; overrides: {' '.join(extra)}" if extra else ""


def status_report(recipes: list[Recipe], store: ResultsStore | None) -> list[str]:
    """What ``cvbench reproduce`` prints: per recipe its status, source and detail lines."""
    lines: list[str] = []
    for recipe in recipes:
        status, details = recipe_status(recipe, store)
        lines.append(f"{recipe.experiment}: {status}")
        lines.append(f"  source: {recipe.source}")
        lines.extend(f"  {line}" for line in details)
    return lines

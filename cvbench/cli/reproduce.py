"""``cvbench reproduce``: the reproduction recipes and whether the results store shows them
reproduced; ``cvbench reproduce recipe=NAME [overrides]`` trains one and prints PASS / FAIL.

    cvbench reproduce [db=PATH]                          # every recipe with its status
    cvbench reproduce recipe=NAME [overrides] [db=PATH]  # cvbench train experiment=repro/NAME ...
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cvbench.bench.repro import (
    find_recipe,
    load_recipes,
    status_report,
    verdict_line,
    verdicts,
)
from cvbench.cli.errors import reported_errors
from cvbench.cli.options import Command, Setting, UsageError, parse_or_exit, usage_exit
from cvbench.store.database import ResultsStore, StoreError, default_db_path
from cvbench.store.record import new_run_id

DB_OVERRIDE = "paths.results_db="
COMMAND = Command(
    "reproduce",
    "The reproduction recipes (conf/experiment/repro/) with their expected values, source and "
    "whether the results store shows them reproduced; with recipe=NAME, train that recipe "
    "(cvbench train experiment=repro/NAME in a child process) and print PASS / FAIL per "
    "metric (exit status 0 only when every metric passes).",
    (
        Setting(
            "recipe", "the recipe to train (a YAML of conf/experiment/repro/)", str, metavar="NAME"
        ),  # fmt: skip
        Setting("db", "the results store (default: $CVBENCH_DB, else outputs/cvbench.db)", Path),
    ),
    overrides="overrides: with recipe=NAME, every other key=value is an override of cvbench "
    "train (trainer.devices=4, data.batch_size=64, ...).",
    examples=(
        "reproduce",
        "reproduce recipe=edsr_x2_set5",
        "reproduce recipe=resnet50_imagenet trainer.devices=4 data.batch_size=64",
        "reproduce db=/path/to/cvbench.db",
    ),
    positional=("recipe",),
)


def list_recipes(db: Path | None) -> None:
    """Print every recipe with its expected values, source and status."""
    path = db or default_db_path()
    store = ResultsStore(path) if path.is_file() else None
    try:
        print("\n".join(status_report(load_recipes(), store)))
    finally:
        if store is not None:
            store.close()
    if store is None:
        print(f"(no results store at {path}: every recipe is not run)")


def split_db(db: Path | None, overrides: Sequence[str]) -> tuple[Path, list[str]]:
    """The store the run writes to (``db``, else a ``paths.results_db=`` override, else the
    default) and the training overrides, with ``paths.results_db`` set to it."""
    given = [a for a in overrides if a.lstrip("+").startswith(DB_OVERRIDE)]
    if db is None and given:
        return Path(given[-1].split("=", 1)[1]), list(overrides)
    db = db or default_db_path()
    rest = [a for a in overrides if a not in given]
    return db, [*rest, f"++{DB_OVERRIDE}{db}"]


def run_recipe(name: str, overrides: Sequence[str], db: Path | None = None) -> int:
    """Train recipe ``name`` as ``python -m cvbench train experiment=repro/NAME ...`` (its
    output shown as it runs), then print its verdicts; the exit status (0: every metric PASS)."""
    recipe = find_recipe(name)
    db, train_overrides = split_db(db, overrides)
    run_id = new_run_id()
    command = [
        sys.executable,
        "-m",
        "cvbench",
        "train",
        f"experiment={recipe.experiment}",
        f"++run_id={run_id}",
        *train_overrides,
    ]
    env = {**os.environ, "CVBENCH_DB": str(db)}
    print(f"cvbench reproduce: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, env=env, check=False)
    try:
        with ResultsStore(db) as store:
            record = store.get(run_id)
    except StoreError:
        print(f"cvbench reproduce {recipe.name}: the run (exit status {done.returncode}) left no "
              f"record in {db}; see its output above")  # fmt: skip
        return done.returncode or 1
    print(f"\ncvbench reproduce {recipe.name} (run {run_id}) against {recipe.source}:")
    if record.status != "completed":
        print(f"FAIL: the run {record.status}: {record.error or 'no error recorded'}")
        return done.returncode or 1
    found = verdicts(recipe.expected, record.metrics)
    print("\n".join(verdict_line(v) for v in found))
    passed = all(v.passed for v in found)
    print(f"{'PASS' if passed else 'FAIL'}: {recipe.experiment} (run directory {record.run_dir})")
    return 0 if passed else 1


def main(argv: list[str]) -> None:
    """``cvbench reproduce [recipe=NAME [overrides]] [db=PATH]``."""
    parsed = parse_or_exit(COMMAND, argv)
    name, db = parsed.values["recipe"], parsed.values["db"]
    if name is None and parsed.overrides:
        usage_exit(
            UsageError(
                f"cvbench reproduce: {parsed.overrides[0]!r} is not a setting of the listing "
                "(db=); train overrides go with a recipe: cvbench reproduce recipe=NAME "
                f"{' '.join(parsed.overrides)}"
            )
        )
    with reported_errors():
        if name is None:
            list_recipes(db)
            return
        code = run_recipe(name, parsed.overrides, db)
    if code:
        sys.exit(code)

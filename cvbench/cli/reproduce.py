"""``cvbench reproduce``: the reproduction recipes and whether the results store shows them
reproduced; ``cvbench reproduce NAME [overrides]`` trains one and prints PASS / FAIL.

    cvbench reproduce [db=PATH]                      # every recipe with its status
    cvbench reproduce NAME [overrides] [db=PATH]     # cvbench train experiment=repro/NAME ...
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
from cvbench.bench.store import ResultsStore, StoreError, default_db_path, new_run_id
from cvbench.cli.errors import reported_errors
from cvbench.cli.keyvalue import parse_key_values

DB_OVERRIDE = "paths.results_db="


def list_recipes(argv: Sequence[str]) -> None:
    """Print every recipe with its expected values, source and status."""
    settings, extra = parse_key_values(argv, {"db": None}, command="reproduce")
    if extra:
        raise ValueError(f"cvbench reproduce: one recipe name first, got {list(extra)}")
    path = Path(settings["db"]) if settings["db"] else default_db_path()
    store = ResultsStore(path) if path.is_file() else None
    try:
        print("\n".join(status_report(load_recipes(), store)))
    finally:
        if store is not None:
            store.close()
    if store is None:
        print(f"(no results store at {path}: every recipe is not run)")


def split_db(overrides: Sequence[str]) -> tuple[Path, list[str]]:
    """The store the run writes to (``db=PATH``, else a ``paths.results_db=`` override, else
    the default) and the training overrides, with ``paths.results_db`` set to it."""
    db, rest = None, []
    for arg in overrides:
        if arg.startswith("db="):
            db = Path(arg.removeprefix("db="))
        else:
            rest.append(arg)
    given = [a for a in rest if a.lstrip("+").startswith(DB_OVERRIDE)]
    if db is None and given:
        return Path(given[-1].split("=", 1)[1]), rest
    db = db or default_db_path()
    rest = [a for a in rest if a not in given]
    return db, [*rest, f"++{DB_OVERRIDE}{db}"]


def run_recipe(name: str, overrides: Sequence[str]) -> int:
    """Train recipe ``name`` as ``python -m cvbench train experiment=repro/NAME ...`` (its
    output shown as it runs), then print its verdicts; the exit status (0: every metric PASS)."""
    recipe = find_recipe(name)
    db, train_overrides = split_db(overrides)
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
    """``cvbench reproduce [NAME [overrides]] [db=PATH]``."""
    with reported_errors():
        if argv and "=" not in argv[0] and not argv[0].startswith("-"):
            code = run_recipe(argv[0], argv[1:])
            if code:
                sys.exit(code)
        elif argv and argv[0] in ("-h", "--help"):
            print(__doc__.strip())
        else:
            list_recipes(argv)

"""``cvbench leaderboard``: the results store's runs as tables, one per (task, dataset).

    cvbench leaderboard [task=NAME[,NAME]] [dataset=NAME[,NAME]] [format=md|csv|html]
                        [out=FILE] [db=PATH] [kind=train|eval|all] [suite=NAME]

Prints the tables (or writes them to ``out``). ``format=md`` is what the README embeds;
``format=html`` is a self-contained page with sortable tables and plots. ``suite=NAME`` keeps
the runs of that suite's configurations (``conf/bench/NAME.yaml``, as ``cvbench bench`` plans it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cvbench.bench.leaderboard import leaderboard_text
from cvbench.bench.render import FORMATS
from cvbench.bench.store import open_store
from cvbench.cli.errors import reported_errors
from cvbench.cli.keyvalue import parse_key_values

DEFAULTS = {
    "task": None,
    "dataset": None,
    "format": "md",
    "out": None,
    "db": None,
    "kind": "train",
    "suite": None,
}
KINDS = ("train", "eval", "all")


def _names(value: str | None) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]``; None stays None (no filter)."""
    return None if value is None else [v for v in value.split(",") if v]


def check_settings(settings: dict[str, str | None], positional: list[str]) -> None:
    """Raises ValueError for positional arguments, an unknown format or kind."""
    if positional:
        raise ValueError(
            f"cvbench leaderboard takes key=value settings only, not {' '.join(positional)!r}; "
            f"valid: {', '.join(f'{k}=' for k in DEFAULTS)}"
        )
    if settings["format"] not in FORMATS:
        raise ValueError(
            f"cvbench leaderboard: format={settings['format']} is not one of {', '.join(FORMATS)}"
        )
    if settings["kind"] not in KINDS:
        raise ValueError(
            f"cvbench leaderboard: kind={settings['kind']} is not one of {', '.join(KINDS)}"
        )


def leaderboard(settings: dict[str, str | None]) -> str:
    """The leaderboard text of the runs in the store that ``settings`` select.

    Raises:
        StoreError: no store at ``db``.
        ValueError: no run matches, naming the tasks and datasets the store has.
    """
    kind = None if settings["kind"] == "all" else settings["kind"]
    tasks, datasets = _names(settings["task"]), _names(settings["dataset"])
    hashes = suite_hashes(settings["suite"]) if settings["suite"] else None
    with open_store(settings["db"]) as store:
        records = store.runs(kind=kind, task=tasks, dataset=datasets, config_hash=hashes)
        if not records:
            everything = store.runs(kind=kind, reap=False)
            have_tasks = sorted({str(r.task) for r in everything})
            have_datasets = sorted({str(r.dataset) for r in everything})
            raise ValueError(
                f"no {settings['kind']} runs in {store.path} match task={settings['task']} "
                f"dataset={settings['dataset']} suite={settings['suite']}; the store has tasks: "
                f"{', '.join(have_tasks) or 'none'}; datasets: {', '.join(have_datasets) or 'none'}"
            )
    return leaderboard_text(records, fmt=str(settings["format"]))


def suite_hashes(name: str) -> list[str]:
    """The config hashes of the runs suite ``name`` plans."""
    from cvbench.bench.suite import hash_runs, plan_suite, suite_path
    from cvbench.cli.train import CONF_DIR

    runs = plan_suite(suite_path(name, Path(CONF_DIR)))
    hash_runs(runs, Path(CONF_DIR))
    return [r.config_hash for r in runs]


def main(argv: list[str]) -> None:
    """Run ``cvbench leaderboard`` with the arguments after the command name."""
    with reported_errors():
        settings, positional = parse_key_values(argv, DEFAULTS, command="leaderboard")
        check_settings(settings, positional)
        text = leaderboard(settings)
        if settings["out"] is None:
            sys.stdout.write(text)
            return
        out = Path(settings["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])

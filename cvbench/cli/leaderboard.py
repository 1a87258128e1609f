"""``cvbench leaderboard``: the results store's runs as tables, one per (task, dataset).

    cvbench leaderboard [task=NAME[,NAME]] [dataset=NAME[,NAME]] [format=md|csv|html]
                        [out=PATH] [db=PATH] [kind=train|eval|all] [suite=NAME]

Prints the tables (or writes them to ``out``). ``format=md`` is what the README embeds;
``format=html`` is a self-contained page with sortable tables and plots. ``suite=NAME`` keeps
the runs of that suite's configurations (``conf/bench/NAME.yaml``, as ``cvbench bench`` plans it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cvbench.bench.leaderboard import leaderboard_text
from cvbench.bench.render import FORMATS
from cvbench.cli.errors import reported_errors
from cvbench.cli.options import Command, Setting, parse_or_exit
from cvbench.store.database import open_store

KINDS = ("train", "eval", "all")
COMMAND = Command(
    "leaderboard",
    "Tables from the results store's runs, one per (task, dataset), ranked by the task's "
    "primary metric (mean ± std over seeds).",
    (
        Setting("task", "only these tasks", list, metavar="NAME[,NAME]"),
        Setting("dataset", "only these datasets (data name)", list, metavar="NAME[,NAME]"),
        Setting(
            "format",
            "md (what the README embeds), csv, or html (a self-contained page "
            "with sortable tables and plots)",
            str,
            "md",
            FORMATS,
        ),  # fmt: skip
        Setting("out", "write the tables to this file instead of printing them", Path),
        Setting("db", "the results store (default: $CVBENCH_DB, else outputs/cvbench.db)", Path),
        Setting("kind", "which runs: train, eval or all", str, "train", KINDS),
        Setting(
            "suite",
            "only the runs of this suite's configurations (conf/bench/NAME.yaml "
            "or a path), as cvbench bench plans it",
            str,
            metavar="NAME",
        ),  # fmt: skip
    ),
    examples=(
        "leaderboard",
        "leaderboard task=super_resolution dataset=set5",
        "leaderboard suite=readme format=md",
        "leaderboard format=html out=outputs/leaderboard.html",
    ),
    positional=("task",),
)


def _shown(names: list[str] | None) -> str:
    """How a filter reads in messages: ``a,b``; None (no filter) as None."""
    return "None" if names is None else ",".join(names)


def leaderboard(settings: dict[str, Any]) -> str:
    """The leaderboard text of the runs in the store that ``settings`` select.

    Raises:
        StoreError: no store at ``db``, or one that cannot be read (corrupt, no SQLite file,
            unreadable; a read-only store is read, not refused).
        ValueError: no run matches, naming the tasks and datasets the store has.
    """
    kind = None if settings["kind"] == "all" else settings["kind"]
    tasks, datasets = settings["task"], settings["dataset"]
    hashes = suite_hashes(settings["suite"]) if settings["suite"] else None
    with open_store(settings["db"]) as store:
        records = store.runs(kind=kind, task=tasks, dataset=datasets, config_hash=hashes)
        if not records:
            everything = store.runs(kind=kind, reap=False)
            have_tasks = sorted({str(r.task) for r in everything})
            have_datasets = sorted({str(r.dataset) for r in everything})
            raise ValueError(
                f"no {settings['kind']} runs in {store.path} match task={_shown(tasks)} "
                f"dataset={_shown(datasets)} suite={settings['suite']}; the store has tasks: "
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
    settings = parse_or_exit(COMMAND, argv).values
    with reported_errors():
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

"""``cvbench score task=NAME gt=... pred=... [settings] [out=FILE]``: score a predictions file
or folder against ground truth, as the task's devkit does, and print the result as JSON.

The tasks and their settings are the YAMLs of ``conf/score/`` (see ``cvbench.cli.scorers``):
``cvbench score --help`` lists them, ``cvbench score task=NAME --help`` explains one. This
module only parses the command line, calls the scorer, prints and writes its result.

Exit status: 0 on success; 1 for a wrong command line or a missing or malformed input file
(one line ``error: ...`` on stderr, no traceback; ``CVBENCH_TRACEBACK=1`` re-raises), as for
``cvbench train`` and ``cvbench eval``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cvbench.cli.errors import EXIT_BAD_INPUT, reported_errors
from cvbench.cli.options import (
    REQUIRED,
    Command,
    Setting,
    UsageError,
    help_text,
    parse,
    parse_or_exit,
    usage_exit,
    wants_help,
)
from cvbench.cli.scorers import Scorer, load_scorer, tasks
from cvbench.files import write_json

__all__ = ["EXIT_BAD_INPUT", "main"]

SUMMARY = "Score a predictions file or folder against ground truth, as the task's devkit does."
OUT = Setting("out", "also write the JSON result to this file", Path, None)
OVERRIDES = "The other settings depend on the task: cvbench score task=NAME --help."


def task_setting(names: list[str]) -> Setting:
    return Setting("task", "the task, one YAML of conf/score/", str, REQUIRED, tuple(names))


def any_task() -> Command:
    """The command before its task is known: ``task=`` and ``out=``, the rest passed on."""
    return Command("score", SUMMARY, (task_setting(tasks()), OUT), overrides=OVERRIDES)


def task_command(scorer: Scorer) -> Command:
    """``cvbench score task=NAME``: the scorer's settings and ``out`` (``task=`` is read
    before, by :func:`any_task`)."""
    return Command(
        f"score task={scorer.task}",
        scorer.summary,
        (*scorer.settings, OUT),
        details="Prints the result as JSON (sorted keys); out=FILE writes the same text.",
    )


def overview() -> str:
    """``cvbench score --help``: the common settings, then each task's usage and summary."""
    lines = [help_text(any_task()), "", "tasks:"]
    for name in tasks():
        command = task_command(load_scorer(name))
        lines += [f"  {command.usage().removeprefix('usage: ')}", f"      {command.summary}"]
    return "\n".join(lines)


def _score(scorer: Scorer, values: dict) -> dict:
    """The scorer's result; a folder where it reads a file is a ValueError naming it (the
    OSError, EISDIR, is no user error the CLI reports in one line)."""
    try:
        return scorer.function(**values)
    except IsADirectoryError as err:
        raise ValueError(
            f"{err.filename}: a folder; task={scorer.task} reads a file there "
            f"(cvbench score task={scorer.task} --help)"
        ) from None


def main(argv: list[str]) -> None:
    """Score, write the JSON result to ``out`` when given, and print it."""
    try:
        task = parse(any_task(), [a for a in argv if a not in ("-h", "--help")]).values["task"]
    except UsageError as err:
        if not wants_help(argv):
            usage_exit(err)
        print(overview())
        return
    scorer = load_scorer(task)
    rest = [a for a in argv if not a.startswith("task=")]
    values = parse_or_exit(task_command(scorer), rest).values
    out = values.pop("out")
    with reported_errors():
        result = _score(scorer, values)
        if out is not None:
            write_json(out, result)
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")

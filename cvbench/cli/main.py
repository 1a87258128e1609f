"""``cvbench`` command: dispatch to the subcommands.

Every subcommand reads Hydra's ``key=value`` override syntax and has ``--help`` / ``-h``:
``train``, ``eval`` and ``bench`` are Hydra apps; ``score``, ``leaderboard``, ``compare``,
``reproduce``, ``stylize`` and ``sample`` declare their settings in ``cvbench.cli.options``.
"""

from __future__ import annotations

import importlib
import sys

from cvbench.cli.errors import EXIT_BAD_INPUT
from cvbench.cli.quiet import quiet_third_party

COMMANDS = {
    "train": ("cvbench.cli.train", "train a model: cvbench train [group=option] [key=value] ..."),
    "eval": ("cvbench.cli.evaluate", "test a checkpoint: cvbench eval ckpt_path=PATH [overrides]"),
    "bench": (
        "cvbench.cli.bench",
        "run a suite, skipping what is done: cvbench bench suite=NAME",
    ),
    "score": (
        "cvbench.cli.score",
        "score a predictions file: cvbench score task=NAME gt=PATH pred=PATH [...]",
    ),
    "leaderboard": (
        "cvbench.cli.leaderboard",
        "tables from the results store: cvbench leaderboard [task=] [dataset=] [format=]",
    ),
    "compare": (
        "cvbench.cli.compare",
        "two runs or experiments, against seed noise: cvbench compare a=A b=B",
    ),
    "reproduce": (
        "cvbench.cli.reproduce",
        "published results, reproduced or not: cvbench reproduce [recipe=NAME [overrides]]",
    ),
    "stylize": (
        "cvbench.cli.stylize",
        "apply a style network to images: cvbench stylize ckpt_path=P input=I output=DIR",
    ),
    "sample": (
        "cvbench.cli.sample",
        "generate or translate images: cvbench sample ckpt_path=P num=N output=DIR [input=DIR]",
    ),
}
HYDRA_COMMANDS = ("train", "eval", "bench")

USAGE = (
    "usage: cvbench {"
    + ",".join(COMMANDS)
    + "} [key=value ...]\n\n"
    + "\n".join(f"  {name:11} {help_}" for name, (_, help_) in COMMANDS.items())
    + "\n\nEvery command takes Hydra's key=value syntax and explains itself with --help, e.g. "
    + "`cvbench score --help`.\ntrain, eval and bench also take Hydra's flags: "
    + "--config-dir DIR (your own configs), -m (multirun), --cfg job, ..."
)


def check_group_options(argv: list[str]) -> None:
    """Exit with one ``error:`` line per ``group=option`` that no config folder has: cvbench's
    tree, ``--config-dir`` and ``hydra.searchpath`` folders."""
    from cvbench.cli.groups import hydra_arguments, invalid_choices
    from cvbench.conf import CONF_DIR

    found = hydra_arguments(argv)
    if found is None:
        return  # Hydra's parser refuses the line and says why
    overrides, user_dirs = found
    problems = invalid_choices(overrides, [CONF_DIR, *user_dirs])
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def main(argv: list[str] | None = None) -> None:
    """Run the subcommand named by the first argument."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"cvbench: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    quiet_third_party()
    module = importlib.import_module(COMMANDS[name][0])
    if name in HYDRA_COMMANDS:
        check_group_options(rest)
        # Hydra reads sys.argv itself. Lightning's DDP launcher restarts the program for each
        # extra process as `python -m <__main__.__spec__.name> <sys.argv[1:]>`: pointing both
        # at the subcommand's module makes those processes run the same subcommand.
        sys.argv = [module.__file__, *rest]
        sys.modules["__main__"].__spec__ = module.__spec__
        module.main()
    else:
        module.main(rest)


if __name__ == "__main__":
    main()

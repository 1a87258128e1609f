"""``cvbench`` command: dispatch to the train / eval / score subcommands."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from cvbench.cli.quiet import quiet_third_party

COMMANDS = {
    "train": ("cvbench.cli.train", "train a model: cvbench train [group=option] [key=value] ..."),
    "eval": ("cvbench.cli.evaluate", "test a checkpoint: cvbench eval ckpt_path=PATH [overrides]"),
    "score": (
        "cvbench.cli.score",
        "score a predictions file: cvbench score --task ... --gt ... --pred ...",
    ),
    "bench": (
        "cvbench.cli.bench",
        "run a suite, skipping what is done: cvbench bench suite=NAME",
    ),
    "leaderboard": (
        "cvbench.cli.leaderboard",
        "tables from the results store: cvbench leaderboard [task=] [dataset=] [format=]",
    ),
    "compare": (
        "cvbench.cli.compare",
        "two runs or experiments, against seed noise: cvbench compare A B",
    ),
    "reproduce": (
        "cvbench.cli.reproduce",
        "published results and whether cvbench reproduces them: cvbench reproduce [NAME]",
    ),
}
HYDRA_COMMANDS = ("train", "eval", "bench")

USAGE = (
    "usage: cvbench {"
    + ",".join(COMMANDS)
    + "} ...\n\n"
    + "\n".join(f"  {name:11} {help_}" for name, (_, help_) in COMMANDS.items())
    + "\n\nHydra's own options work after train and eval, e.g. `cvbench train --help`."
)


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
        from cvbench.cli.groups import invalid_choices
        from cvbench.cli.train import CONF_DIR

        problems = invalid_choices(rest, Path(CONF_DIR))
        if problems:
            print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
            sys.exit(2)
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

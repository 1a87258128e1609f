"""``cvbench bench suite=NAME [seeds=[0]] [overrides=[...]] [dry_run=true]``: a thin Hydra
shell around :func:`cvbench.bench.run_suite.run_bench`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cvbench.cli.errors import reported_errors
from cvbench.cli.train import CONF_DIR


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> None:
    from cvbench.bench.run_suite import run_bench
    from cvbench.cli.quiet import use_hydra_logging

    use_hydra_logging()
    try:
        with reported_errors():
            complete = run_bench(cfg, Path(CONF_DIR))
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the completed runs are recorded; the same command runs the rest",
            file=sys.stderr,
        )
        sys.exit(130)
    if not complete:
        sys.exit(1)


if __name__ == "__main__":
    main()

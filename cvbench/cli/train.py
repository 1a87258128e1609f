"""``cvbench train [overrides]``: a thin Hydra shell around :func:`cvbench.run.train.run_train`."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from cvbench.cli.errors import reported_errors

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from cvbench.cli.quiet import use_hydra_logging
    from cvbench.cli.report import print_results
    from cvbench.run.train import run_train

    use_hydra_logging()
    with reported_errors():
        metrics = run_train(cfg)
    if rank_zero_only.rank == 0:
        print_results(metrics, Path(cfg.paths.output_dir), title=f"cvbench train: {cfg.run_name}")


if __name__ == "__main__":
    main()

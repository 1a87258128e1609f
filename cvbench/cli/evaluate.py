"""``cvbench eval ckpt_path=PATH [overrides]``: a thin Hydra shell around ``run_eval``."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from cvbench.cli.errors import reported_errors
from cvbench.cli.train import CONF_DIR


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    from cvbench.cli.quiet import use_hydra_logging
    from cvbench.cli.report import print_results
    from cvbench.run.evaluate import run_eval

    use_hydra_logging()
    with reported_errors():
        metrics = run_eval(cfg, list(HydraConfig.get().overrides.task))
    if rank_zero_only.rank == 0:
        print_results(metrics, Path(cfg.paths.output_dir), title=f"cvbench eval: {cfg.ckpt_path}")


if __name__ == "__main__":
    main()

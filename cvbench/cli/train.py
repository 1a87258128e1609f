"""``cvbench train [overrides]``: a thin Hydra shell around :func:`cvbench.run.train.run_train`.

In a multirun (``-m``, a grid or ``hparams_search=...``) a failing run is recorded and
reported, and the sweep goes on to the next; the value returned to Hydra's sweeper is
``cfg.optimized_metric`` read from the run's metrics (NaN for a failed run).
"""

from __future__ import annotations

import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from cvbench.cli.errors import reported_errors
from cvbench.conf import CONF_DIR as PACKAGE_CONF_DIR

CONF_DIR = str(PACKAGE_CONF_DIR)


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """``metrics[cfg.optimized_metric]``, or None when no metric is optimized.

    Raises:
        ValueError: the run has no such metric; the message lists the ones it has.
    """
    key = cfg.get("optimized_metric")
    if key is None:
        return None
    if key not in metrics:
        names = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
        raise ValueError(f"optimized_metric={key} is not a metric of this run; it has: {names}")
    return float(metrics[key])


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    from cvbench.cli.quiet import use_hydra_logging
    from cvbench.cli.report import print_results
    from cvbench.run.train import run_train

    use_hydra_logging()
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    with reported_errors(in_sweep=in_sweep):
        metrics = run_train(cfg)
        value = objective(cfg, metrics)
    if rank_zero_only.rank == 0:
        print_results(metrics, Path(cfg.paths.output_dir), title=f"cvbench train: {cfg.run_name}")
        if cfg.get("expected"):
            from cvbench.bench.repro import verdict_lines

            print("\n".join(verdict_lines(cfg.expected, metrics)))
    if value is not None and math.isnan(value):
        print(f"warning: the optimized metric {cfg.optimized_metric} is NaN")
    return value


if __name__ == "__main__":
    main()

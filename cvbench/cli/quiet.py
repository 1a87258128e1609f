"""Console and log-file hygiene: Lightning's messages in the run's log, third-party chatter out."""

from __future__ import annotations

import logging
import warnings


def quiet_third_party() -> None:
    """Filter Lightning's litlogger tip, its pytree deprecation, eval's callback notice and
    albumentations' note on box pipelines without a spatial transform."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # Detection's val/test pipelines keep BboxParams without a spatial transform, on purpose.
    warnings.filterwarnings("ignore", message=r"Got processor for bboxes, but no transform")
    # `cvbench eval` restores weights only; the checkpoint's callbacks are not needed.
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks")


def use_hydra_logging() -> None:
    """Send Lightning's messages through the root logger Hydra configured (console + the run's
    ``<job>.log``); at import Lightning gives its loggers a handler of their own instead."""
    for name in ("pytorch_lightning", "lightning_fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True

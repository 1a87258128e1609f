"""Drop third-party chatter that says nothing about the run (tips, internal deprecations)."""

from __future__ import annotations

import logging
import warnings


def quiet_third_party() -> None:
    """Filter Lightning's litlogger tip, its pytree deprecation and eval's callback notice."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # `cvbench eval` restores weights only; the checkpoint's callbacks are not needed.
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks")

"""Drop third-party chatter that says nothing about the run (tips, internal deprecations)."""

from __future__ import annotations

import logging
import warnings


def quiet_third_party() -> None:
    """Filter Lightning's litlogger tip and its internal pytree deprecation warning."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

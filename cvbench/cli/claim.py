"""Claim the run's directory before Hydra writes anything in it: a Hydra callback.

Hydra composes the config, calls ``on_run_start`` (``on_multirun_start`` for ``-m``), and only
then makes the run directory and saves ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml`` in it (``hydra/_internal/hydra.py`` ``Hydra.run``, ``hydra/core/utils.py``
``run_job``). So the claim is made here, on the very config object ``run_job`` reads next: a
refused run has written nothing, and the directory Hydra, the run and the results store use is
the claimed one (:func:`cvbench.run.outputs.claim_run_folder`).

``conf/hydra/default.yaml`` names :class:`ClaimRunDirectory` in ``hydra.callbacks``, so
``cvbench train``, ``eval`` and ``bench`` all claim.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Quote, QuotedString
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write
from pytorch_lightning.utilities import rank_zero_only

from cvbench.cli.errors import reported_errors
from cvbench.run.outputs import RUN_NAME_KEY, SWEEP_CLAIM, check_run_name, claim_run_folder

NOW = "${now:"  # Hydra's time resolver: a folder named with it is named by the start time
EXIT_CRASH = 1  # as Python exits on an uncaught exception


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Errors end the process here: Hydra turns an exception raised in a callback into a warning
    and runs on (``hydra/_internal/callbacks.py`` ``_notify``), which would run the job in a
    directory that was never claimed. A user error is one ``error:`` line and exit 1."""
    try:
        with reported_errors():
            yield
    except Exception:
        traceback.print_exc()
        sys.exit(EXIT_CRASH)


def joins_started_run() -> bool:
    """This process is a rank > 0 of a distributed run (Lightning's DDP launcher restarts the
    command for each extra process with ``hydra.run.dir=<rank 0's directory>``; torchrun and
    SLURM set the rank too): it works in the directory rank 0 claimed, and, as ``record_run``,
    claims nothing. The rank is Lightning's, read from the environment as ``record_run`` reads
    it."""
    return rank_zero_only.rank > 0


def override_value(text: str) -> str:
    """``text`` quoted for a Hydra command-line override: commas, spaces, quotes and ``${``
    kept as they are."""
    return QuotedString(text=text.replace("${", "\\${"), quote=Quote.single).with_quotes()


def claim_folder(config: DictConfig, mode: str) -> tuple[Path, Path] | None:
    """Check ``run_name`` and claim ``hydra.<mode>.dir``.

    Args:
        config: the composed config, ``hydra`` node included.
        mode: ``run`` or ``sweep``.

    Returns:
        (the folder the config names, the folder claimed), or None in a process that joins
        a run (:func:`joins_started_run`).
    """
    if RUN_NAME_KEY in config:
        check_run_name(config[RUN_NAME_KEY])
    if joins_started_run():
        return None
    HydraConfig.instance().set_config(config)  # for ${hydra:...} in the folder, as run_job does
    key = f"hydra.{mode}.dir"
    pattern = str(OmegaConf.to_container(config.hydra[mode], resolve=False)["dir"])
    named = Path(str(OmegaConf.select(config, key)))
    claimed = claim_run_folder(named, key=key, by_time=NOW in pattern, sweep=mode == "sweep")
    with read_write(config.hydra):
        config.hydra[mode].dir = str(claimed)
    HydraConfig.instance().set_config(config)
    return named, claimed


class ClaimRunDirectory(Callback):
    """Claims ``hydra.run.dir`` (a run) or ``hydra.sweep.dir`` (a multirun) before Hydra writes
    in it; see the module docstring and :func:`cvbench.run.outputs.claim_run_folder`."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim the run's directory, or exit 1 with one ``error:`` line."""
        with exit_on_error():
            claim_folder(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim the sweep's directory, or exit 1 with one ``error:`` line. The launchers
        compose each job's config again from ``hydra.overrides.hydra`` (``load_sweep_config``),
        so a sweep that had to take another folder adds it there for its jobs."""
        with exit_on_error():
            folders = claim_folder(config, "sweep")
            if folders is None:
                return
            named, claimed = folders
            if claimed != named:
                with read_write(config.hydra):
                    config.hydra.overrides.hydra.append(
                        f"hydra.sweep.dir={override_value(str(claimed))}"
                    )
                HydraConfig.instance().set_config(config)
            OmegaConf.save(config, claimed / SWEEP_CLAIM)  # as Hydra's basic sweeper saves it

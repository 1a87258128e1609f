"""A run's record started once and ended once.

The record is inserted as ``running`` before anything is built, so a run that fails while
building its data or model is recorded too, and updated once at the end: ``completed`` with
its metrics and costs, or ``failed`` with the error (Ctrl-C and SIGTERM included). The caller
decides which process writes (in a DDP run, only the main one: one record per run).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from cvbench.store.database import ResultsStore
from cvbench.store.faults import StoreError
from cvbench.store.record import RESULTS_FILE, RunRecord, final_status, finished_run

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000


def describe_error(err: BaseException) -> str:
    """What the record says of a failure: the exception's type and message, shortened.

    >>> describe_error(KeyboardInterrupt())
    'interrupted (KeyboardInterrupt)'
    >>> describe_error(ValueError("lr must be positive"))
    'ValueError: lr must be positive'
    """
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        return f"interrupted ({type(err).__name__}{'' if not str(err) else ': ' + str(err)})"
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class RecordedRun:
    """Start a run's record in ``store`` and end it once (``store`` None: record nothing).

    Args:
        store: the results store, or None (not the main process, or no store configured).
        record: the run's ``running`` record, from :func:`cvbench.store.record.new_record`.
    """

    def __init__(self, store: ResultsStore | None, record: RunRecord) -> None:
        self.store = store
        self.record = record
        self.started = time.perf_counter()
        if store is not None:
            store.start(record)

    def wall_time_s(self) -> float:
        """Seconds since the record started."""
        return time.perf_counter() - self.started

    def completed(self, metrics: dict[str, Any], **costs: Any) -> None:
        """Record the final metrics; a run whose primary metric is NaN is recorded failed.

        Raises:
            StoreError: the store could not be written (a full disk, an I/O error, a lock held
                too long): one line naming the store and where the run's results are safe
                (its ``metrics.json``, from which :meth:`ResultsStore.reap` records the run
                once the store can be written again).
        """
        status, value, error = final_status(metrics, self.record.primary_metric)
        if self.store is None:
            return
        try:
            self.store.end(
                self.record.run_id,
                status,
                metrics=metrics,
                primary_value=value,
                error=error,
                wall_time_s=self.wall_time_s(),
                **costs,
            )
        except StoreError as err:
            raise StoreError(f"{err}; {self._where_results_are(metrics)}") from err

    def _where_results_are(self, metrics: dict[str, Any]) -> str:
        """Where a run that could not record its end left its results, in a few words."""
        run_dir = self.record.run_dir
        if run_dir and finished_run(run_dir) is not None:
            return (
                f"the run finished and its results are safe in {Path(run_dir) / RESULTS_FILE}, "
                f"from which the store records them when it is next read on this host and can "
                f"be written (`cvbench leaderboard`)"
            )
        primary = self.record.primary_metric
        value = metrics.get(primary)
        return f"the run finished, but its results are nowhere else: {primary} = {value}"

    def failed(self, err: BaseException, **costs: Any) -> None:
        """Record the run as failed with ``err`` and the costs as far as it got. A store that
        cannot be written is logged, not raised: ``err`` is what the user must see (the record
        stays ``running`` until :meth:`ResultsStore.reap` ends it)."""
        if self.store is None:
            return
        try:
            self.store.end(
                self.record.run_id,
                "failed",
                error=describe_error(err),
                wall_time_s=self.wall_time_s(),
                **costs,
            )
        except StoreError as store_err:
            log.warning(f"the run failed, and the store could not record it: {store_err}")

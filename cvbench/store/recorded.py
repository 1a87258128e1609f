"""A run's record started once and ended once.

The record is inserted as ``running`` before anything is built, so a run that fails while
building its data or model is recorded too, and updated once at the end: ``completed`` with
its metrics and costs, or ``failed`` with the error (Ctrl-C and SIGTERM included). The caller
decides which process writes (in a DDP run, only the main one: one record per run).
"""

from __future__ import annotations

import math
import time
from typing import Any

from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

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
        """Record the final metrics; a run whose primary metric is NaN is recorded failed."""
        value = metrics.get(self.record.primary_metric)
        value = value if isinstance(value, (int, float)) else None
        status, error = "completed", None
        if value is not None and math.isnan(value):
            status, error = "failed", f"the primary metric {self.record.primary_metric} is NaN"
        if self.store is not None:
            self.store.end(
                self.record.run_id,
                status,
                metrics=metrics,
                primary_value=value,
                error=error,
                wall_time_s=self.wall_time_s(),
                **costs,
            )

    def failed(self, err: BaseException, **costs: Any) -> None:
        """Record the run as failed with ``err`` and the costs as far as it got."""
        if self.store is not None:
            self.store.end(
                self.record.run_id,
                "failed",
                error=describe_error(err),
                wall_time_s=self.wall_time_s(),
                **costs,
            )

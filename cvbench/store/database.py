"""The results store: one row per run in a SQLite file, safe with several writers at once.

SQLite in WAL mode lets readers work while one process writes; every write is one short
``BEGIN IMMEDIATE`` transaction, so a record is either fully updated or not at all, and a
writer that finds the file locked waits (``busy_timeout``) instead of failing. A run is
inserted as ``running`` when it starts and updated once to ``completed`` or ``failed``.

A process killed with SIGKILL cannot record its own end: :meth:`ResultsStore.reap` marks the
``running`` records of dead processes on this host as failed, and every reader calls it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from cvbench.store.record import COLUMNS, END_FIELDS, JSON_COLUMNS, RunRecord, utc_now

BUSY_TIMEOUT_MS = 60_000


def _encode(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS:
        return json.dumps(value, sort_keys=True, allow_nan=True)
    if name == "git_dirty" and value is not None:
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        return None  # SQLite stores NaN as NULL anyway; say so explicitly
    return value


def _decode(row: sqlite3.Row) -> RunRecord:
    values = {}
    for f in fields(RunRecord):
        value = row[f.name]
        if f.name in JSON_COLUMNS:
            value = json.loads(value) if value else f.default_factory()
        elif f.name == "git_dirty" and value is not None:
            value = bool(value)
        values[f.name] = value
    return RunRecord(**values)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StoreError(ValueError):
    """The store file cannot be used, or a run id names no run or several."""


class ResultsStore:
    """The SQLite results store at ``path`` (created with its folder when missing).

    Args:
        path: the database file, e.g. ``outputs/cvbench.db``.
        timeout_s: how long a writer waits for another writer's lock.
    """

    def __init__(self, path: str | Path, *, timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._write() as db:
                columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
                db.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")
                db.execute("CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (config_hash)")
                db.execute("CREATE INDEX IF NOT EXISTS runs_by_group ON runs (task, dataset)")
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"results store {self.path}: {err}. It is not a cvbench SQLite file; set "
                f"CVBENCH_DB or paths.results_db to another file."
            ) from err

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock is taken at the start, so it never deadlocks."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------

    def start(self, record: RunRecord) -> str:
        """Insert ``record`` as ``running`` (with this host, process and time); its run id.

        Raises:
            StoreError: a run with this id is already recorded.
        """
        record.status = "running"
        record.hostname = record.hostname or socket.gethostname()
        record.pid = record.pid or os.getpid()
        record.started_at = record.started_at or utc_now()
        names = [f.name for f in fields(RunRecord)]
        values = [_encode(n, getattr(record, n)) for n in names]
        try:
            with self._write() as db:
                db.execute(
                    f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    values,
                )
        except sqlite3.IntegrityError as err:
            raise StoreError(f"run id {record.run_id} is already in {self.path}") from err
        return record.run_id

    def end(self, run_id: str, status: str, **values: Any) -> None:
        """Record the end of a run: ``status`` and the :data:`END_FIELDS` given, in one write.

        Raises:
            ValueError: an unknown status or field.
        """
        if status not in ("completed", "failed"):
            raise ValueError(f"a run ends 'completed' or 'failed', not {status!r}")
        unknown = set(values) - set(END_FIELDS)
        if unknown:
            raise ValueError(f"not fields a run sets at its end: {sorted(unknown)}")
        values = {"status": status, "ended_at": utc_now(), **values}
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write() as db:
            db.execute(
                f"UPDATE runs SET {assignments} WHERE run_id = ?",
                [*(_encode(n, v) for n, v in values.items()), run_id],
            )

    def fail_if_running(self, run_id: str, error: str) -> bool:
        """Mark ``run_id`` failed with ``error`` unless it already ended; whether it did."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'failed', error = ?, ended_at = ? "
                "WHERE run_id = ? AND status = 'running'",
                (error, utc_now(), run_id),
            )
        return cursor.rowcount > 0

    def reap(self) -> list[str]:
        """Mark failed the ``running`` runs of this host whose process no longer exists
        (killed with SIGKILL, out of memory, power loss); the run ids it marked."""
        host = socket.gethostname()
        rows = self._db.execute(
            "SELECT run_id, pid FROM runs WHERE status = 'running' AND hostname = ?", (host,)
        ).fetchall()
        dead = [row["run_id"] for row in rows if row["pid"] and not pid_alive(row["pid"])]
        for run_id in dead:
            self.fail_if_running(
                run_id, "the run's process ended without recording a result (killed?)"
            )
        return dead

    # -- reading ---------------------------------------------------------------------------

    def runs(self, *, reap: bool = True, **where: Any) -> list[RunRecord]:
        """Runs in start order; ``where`` filters on columns (``task="detection"``, ``status=
        "completed"``; a list or tuple value matches any of its items). Dead runs are reaped
        first unless ``reap=False``."""
        if reap:
            self.reap()
        clauses, params = [], []
        for name, value in where.items():
            if name not in COLUMNS:
                raise ValueError(f"no column {name!r} in the results store")
            if value is None:
                continue
            if isinstance(value, (list, tuple, set)):
                clauses.append(f"{name} IN ({', '.join('?' * len(value))})")
                params.extend(value)
            else:
                clauses.append(f"{name} = ?")
                params.append(value)
        sql = "SELECT * FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._db.execute(sql + " ORDER BY started_at, rowid", params).fetchall()
        return [_decode(row) for row in rows]

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it.

        Raises:
            StoreError: no run, or several, match.
        """
        self.reap()
        rows = self._db.execute(
            "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started_at", (f"{run_id}%",)
        ).fetchall()
        if len(rows) != 1:
            found = "no run" if not rows else f"{len(rows)} runs"
            raise StoreError(f"{found} with id {run_id!r} in {self.path}")
        return _decode(rows[0])

    def completed_hashes(self, hashes: Sequence[str] | None = None) -> set[str]:
        """The config hashes that have a completed run (among ``hashes`` when given)."""
        rows = self._db.execute(
            "SELECT DISTINCT config_hash FROM runs WHERE status = 'completed'"
        ).fetchall()
        done = {row["config_hash"] for row in rows}
        return done if hashes is None else done & set(hashes)


def default_db_path() -> Path:
    """Where the store is when nothing says otherwise: ``$CVBENCH_DB``, else
    ``outputs/cvbench.db`` under ``$CVBENCH_ROOT`` (the current folder when unset), as
    ``paths.results_db`` in ``conf/paths/default.yaml``."""
    if os.environ.get("CVBENCH_DB"):
        return Path(os.environ["CVBENCH_DB"])
    return Path(os.environ.get("CVBENCH_ROOT", ".")) / "outputs" / "cvbench.db"


def open_store(path: str | Path | None = None) -> ResultsStore:
    """The existing store at ``path`` (default: :func:`default_db_path`) for reading.

    Raises:
        StoreError: no file there, naming it and how runs get recorded.
    """
    path = Path(path) if path else default_db_path()
    if not path.is_file():
        raise StoreError(
            f"no results store at {path}: runs are recorded there by `cvbench train` and "
            f"`cvbench bench`; point CVBENCH_DB or db=PATH at another store"
        )
    return ResultsStore(path)


def store_from_config(cfg: DictConfig) -> ResultsStore | None:
    """The results store ``cfg.paths.results_db`` for writing (created when missing); None
    when ``paths.results_db`` is null: the run records nothing."""
    path = cfg.paths.get("results_db")
    return ResultsStore(path) if path else None

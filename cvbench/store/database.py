"""The results store: one row per run in a SQLite file, safe with several writers at once.

SQLite in WAL mode lets readers work while one process writes; every write is one short
``BEGIN IMMEDIATE`` transaction, so a record is either fully updated or not at all, and a
writer that finds the file locked waits (``busy_timeout``) instead of failing. A run is
inserted as ``running`` when it starts and updated once to ``completed`` or ``failed``.

A process killed with SIGKILL cannot record its own end, and one whose store could not be
written at its end (a full disk) could not either: :meth:`ResultsStore.reap` ends the
``running`` records of dead processes on this host, as completed from the run directory's
``metrics.json`` when the run wrote one, else as failed; every reader calls it.

Every SQLite error becomes a :class:`StoreError` naming the file and what went wrong (a full
disk, an I/O error, a lock held too long, a read-only or corrupt store, no SQLite file):
:mod:`cvbench.store.faults`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from omegaconf import DictConfig

from cvbench.store.faults import (
    ELSEWHERE,
    StoreError,
    corrupt_store,
    store_error,
    why_read_only,
    writable,
)
from cvbench.store.record import (
    COLUMNS,
    END_FIELDS,
    JSON_COLUMNS,
    RunRecord,
    final_status,
    finished_run,
    utc_now,
)

__all__ = ["ResultsStore", "StoreError", "default_db_path", "open_store", "store_from_config"]

BUSY_TIMEOUT_MS = 60_000
KILLED = "the run's process ended without recording a result (killed?)"


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


class ResultsStore:
    """The SQLite results store at ``path``.

    Opened for writing (the default), the file is created with its folder when missing and
    checked (``PRAGMA quick_check``) before anything is written, so a store whose pages are
    corrupt is refused rather than written to. Opened ``read_only``, it is neither switched to
    WAL nor given tables, so a store on a read-only file or folder can be read; writing to it
    raises :class:`StoreError`.

    Args:
        path: the database file, e.g. ``outputs/cvbench.db``.
        timeout_s: how long a writer waits for another writer's lock.
        read_only: open for reading only (SQLite's ``mode=ro``).

    Raises:
        StoreError: the file is no SQLite file, is corrupt, cannot be opened (naming why), or
            (opened for writing) is read-only.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        timeout_s: float = BUSY_TIMEOUT_MS / 1000,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.read_only = read_only
        if read_only:
            self._db = self._sqlite("open it for reading", self._connect_read_only)
            self._check("read it")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not writable(self.path):
            raise self._read_only_error("record runs in it")
        self._db = self._sqlite("open it", self._connect)
        self._check("open it")  # before anything is written
        self._sqlite("switch it to WAL mode", lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        with self._write("create its table") as db:
            columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
            db.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")
            db.execute("CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (config_hash)")
            db.execute("CREATE INDEX IF NOT EXISTS runs_by_group ON runs (task, dataset)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _connect_read_only(self) -> sqlite3.Connection:
        """A ``mode=ro`` connection; in a folder where SQLite cannot create the ``-shm`` file
        a WAL store needs, an ``immutable`` one (no one can write there either)."""
        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
        if not self.path.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(self.path))
        try:
            db = sqlite3.connect(uri, uri=True, timeout=self.timeout_s, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            if writable(self.path):
                raise
            db = sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)
        db.isolation_level = None
        db.row_factory = sqlite3.Row
        return db

    def _sqlite(self, doing: str, call: Callable[[], Any]) -> Any:
        """``call()``, with a SQLite error turned into a :class:`StoreError` naming the file."""
        try:
            return call()
        except sqlite3.Error as err:
            raise store_error(self.path, err, doing, timeout_s=self.timeout_s) from err

    def _check(self, doing: str) -> None:
        """Refuse a store whose pages are corrupt, and a SQLite file without cvbench's table
        (read only)."""
        problems = [row[0] for row in self._sqlite(doing, self._quick_check)]
        if problems != ["ok"]:
            raise corrupt_store(self.path, f"quick_check: {'; '.join(map(str, problems[:3]))}")
        if self.read_only and not self._query(doing, "PRAGMA table_info(runs)"):
            raise StoreError(
                f"results store {self.path} is a SQLite file without cvbench's runs table: "
                f"it is not a cvbench results store; {ELSEWHERE}"
            )

    def _quick_check(self) -> list[sqlite3.Row]:
        # O(size of the file): 0.03 s for 10,000 runs (83 MB) with a warm page cache.
        return self._db.execute("PRAGMA quick_check").fetchall()

    def _query(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one read, SQLite errors (a corrupt page) as :class:`StoreError`."""
        return self._sqlite(doing, lambda: self._db.execute(sql, params).fetchall())

    def _read_only_error(self, doing: str) -> StoreError:
        return StoreError(
            f"results store {self.path} is read-only ({why_read_only(self.path)}): cannot "
            f"{doing}; make it writable or {ELSEWHERE} (paths.results_db=null records nothing)"
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock is taken at the start, so it never deadlocks.

        Raises:
            StoreError: the store is read-only, or SQLite could not write (a full disk, an I/O
                error, a lock held past ``timeout_s``); nothing of the transaction is written.
            sqlite3.IntegrityError: as SQLite raised it (a run id already there).
        """
        if self.read_only:
            raise self._read_only_error(doing)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as err:
            raise store_error(self.path, err, doing, timeout_s=self.timeout_s) from err

    def _rollback(self) -> None:
        """Roll back the open transaction, if SQLite has not already (it does on a full disk)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the error that led here is the one to tell
                self._db.execute("ROLLBACK")

    # -- writing ---------------------------------------------------------------------------

    def start(self, record: RunRecord) -> str:
        """Insert ``record`` as ``running`` (with this host, process and time); its run id.

        Raises:
            StoreError: a run with this id is already recorded, or the store cannot be written.
        """
        record.status = "running"
        record.hostname = record.hostname or socket.gethostname()
        record.pid = record.pid or os.getpid()
        record.started_at = record.started_at or utc_now()
        names = [f.name for f in fields(RunRecord)]
        values = [_encode(n, getattr(record, n)) for n in names]
        try:
            with self._write(f"record the start of run {record.run_id}") as db:
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
            StoreError: the store cannot be written (nothing of the end is).
        """
        if status not in ("completed", "failed"):
            raise ValueError(f"a run ends 'completed' or 'failed', not {status!r}")
        unknown = set(values) - set(END_FIELDS)
        if unknown:
            raise ValueError(f"not fields a run sets at its end: {sorted(unknown)}")
        values = {"status": status, "ended_at": utc_now(), **values}
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write(f"record the end of run {run_id}") as db:
            db.execute(
                f"UPDATE runs SET {assignments} WHERE run_id = ?",
                [*(_encode(n, v) for n, v in values.items()), run_id],
            )

    def fail_if_running(self, run_id: str, error: str) -> bool:
        """End ``run_id`` unless it already ended; whether it did. A run whose directory holds
        the ``metrics.json`` of a finished run (it could not record its end: a full disk) is
        recorded completed with those metrics; any other is recorded failed with ``error``."""
        rows = self._query(
            f"read run {run_id}",
            "SELECT run_dir, primary_metric FROM runs WHERE run_id = ? AND status = 'running'",
            (run_id,),
        )
        if not rows:
            return False
        values: dict[str, Any] = {"status": "failed", "error": error, "ended_at": utc_now()}
        finished = finished_run(rows[0]["run_dir"])
        if finished is not None:
            metrics, ended_at = finished
            status, value, problem = final_status(metrics, rows[0]["primary_metric"])
            values = {"status": status, "error": problem, "ended_at": ended_at}
            values.update(metrics=metrics, primary_value=value)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write(f"record the end of run {run_id}") as db:
            cursor = db.execute(
                f"UPDATE runs SET {assignments} WHERE run_id = ? AND status = 'running'",
                [*(_encode(n, v) for n, v in values.items()), run_id],
            )
        return cursor.rowcount > 0

    def reap(self) -> list[str]:
        """End the ``running`` runs of this host whose process no longer exists (killed with
        SIGKILL, out of memory, power loss, a store it could not write at its end), as
        :meth:`fail_if_running` does; the run ids it ended. A read-only store is left as is."""
        if self.read_only:
            return []
        rows = self._query(
            "read it",
            "SELECT run_id, pid FROM runs WHERE status = 'running' AND hostname = ?",
            (socket.gethostname(),),
        )
        dead = [row["run_id"] for row in rows if row["pid"] and not pid_alive(row["pid"])]
        return [run_id for run_id in dead if self.fail_if_running(run_id, KILLED)]

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
        rows = self._query("read it", sql + " ORDER BY started_at, rowid", params)
        return [_decode(row) for row in rows]

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id`` or starts with it.

        Raises:
            StoreError: no run, or several, match.
        """
        self.reap()
        rows = self._query(
            "read it",
            "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started_at",
            (f"{run_id}%",),
        )
        if len(rows) != 1:
            found = "no run" if not rows else f"{len(rows)} runs"
            raise StoreError(f"{found} with id {run_id!r} in {self.path}")
        return _decode(rows[0])

    def completed_hashes(self, hashes: Sequence[str] | None = None) -> set[str]:
        """The config hashes that have a completed run (among ``hashes`` when given)."""
        rows = self._query(
            "read it", "SELECT DISTINCT config_hash FROM runs WHERE status = 'completed'"
        )
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
    """The existing store at ``path`` (default: :func:`default_db_path`) for reading: read-only
    when this process may not write it (its file or folder), so dead runs are reaped only where
    they can be.

    Raises:
        StoreError: no file there, naming it and how runs get recorded; or a file that cannot
            be read as a store (naming why).
    """
    path = Path(path) if path else default_db_path()
    if not path.is_file():
        raise StoreError(
            f"no results store at {path}: runs are recorded there by `cvbench train` and "
            f"`cvbench bench`; point CVBENCH_DB or db=PATH at another store"
        )
    return ResultsStore(path, read_only=not writable(path))


def store_from_config(cfg: DictConfig) -> ResultsStore | None:
    """The results store ``cfg.paths.results_db`` for writing (created when missing); None
    when ``paths.results_db`` is null: the run records nothing."""
    path = cfg.paths.get("results_db")
    return ResultsStore(path) if path else None

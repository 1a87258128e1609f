"""The results store under faults: a disk that fills before a run records its end, a lock held
too long, corrupt pages, a read-only store, and files SQLite cannot open or read. Each fault is
real: SQLite's own full condition (``max_page_count``), bytes overwritten in a real store, a
read-only file, folder or mount, a real non-SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import unshare_works

from cvbench.cli import leaderboard as leaderboard_cli
from cvbench.cli.errors import reported_errors
from cvbench.store.database import ResultsStore, StoreError
from cvbench.store.record import RunRecord
from cvbench.store.recorded import RecordedRun

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
METRICS = {"test/top1_error": 2.5, "test/top5_error": 0.5, "test/loss": 0.1}


def dead_pid() -> int:
    """The id of a process that has ended (as a killed run's)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def classification_record(run_id: str, run_dir: Path | None = None, **fields) -> RunRecord:
    """A record as ``cvbench train`` starts it for a digits classification run."""
    raw = yaml.safe_load((REPO / "cvbench" / "conf" / "task" / "classification.yaml").read_text())
    task = {k: raw[k] for k in ("name", "monitor", "monitor_mode", "leaderboard")}
    return RunRecord(
        run_id=run_id,
        run_name="digits_small_cnn",
        experiment="classification/digits_small_cnn",
        task="classification",
        dataset="digits",
        model="classification/small_cnn",
        seed=0,
        primary_metric="test/top1_error",
        direction="min",
        config={"task": task, "data": {"name": "digits"}, "seed": 0},
        config_hash=f"hash-{run_id}",
        run_dir=str(run_dir) if run_dir else None,
        **fields,
    )


def fill_up(store: ResultsStore) -> None:
    """Make the store's disk full for this connection: SQLite refuses every new page with
    SQLITE_FULL ("database or disk is full"), as on a full file system."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


# -- a disk that fills before a run records its end ---------------------------------------------


def test_a_run_whose_store_fills_up_at_its_end_is_not_lost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The final update fails on a full disk: one error line naming the store and the run's
    metrics.json, exit 1; the next reader records the run completed from that file."""
    db, run_dir = tmp_path / "cvbench.db", tmp_path / "run"
    run_dir.mkdir()
    store = ResultsStore(db)
    record = classification_record("full1", run_dir, pid=dead_pid())
    recorded = RecordedRun(store, record)
    (run_dir / "metrics.json").write_text(json.dumps(METRICS))  # as record_run writes it
    fill_up(store)
    with pytest.raises(SystemExit) as exited, reported_errors():
        recorded.completed({**METRICS, "test/pad": "x" * 20_000}, params=1234)
    assert exited.value.code == 1
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: results store {db}: cannot record the end of run full1: ")
    assert "database or disk is full" in line
    assert f"results are safe in {run_dir / 'metrics.json'}" in line
    store.close()

    with ResultsStore(db) as reader:  # the disk has room again; the run's process is gone
        assert reader.runs(reap=False)[0].status == "running"  # not recorded by the failure
        (run,) = reader.runs()
    assert (run.status, run.error, run.primary_value) == ("completed", None, 2.5)
    assert run.metrics == METRICS
    with ResultsStore(db) as reader:
        assert reader.runs()[0].status == "completed"  # as recorded, not reaped again


def test_reaping_records_a_finished_run_from_its_metrics_json_only(tmp_path: Path) -> None:
    """A dead run's metrics.json with a NaN primary metric: failed, as the run would have
    recorded itself; half a file, or none: failed as killed, as before."""
    nan_dir, half_dir = tmp_path / "nan", tmp_path / "half"
    nan_dir.mkdir()
    half_dir.mkdir()
    (nan_dir / "metrics.json").write_text('{"test/top1_error": NaN}')  # as write_json writes
    (half_dir / "metrics.json").write_text("[1, 2")
    with ResultsStore(tmp_path / "cvbench.db") as store:
        store.start(classification_record("nan1", nan_dir, pid=dead_pid()))
        store.start(classification_record("k1", half_dir, pid=dead_pid()))
        store.start(classification_record("k2", tmp_path / "nothing", pid=dead_pid()))
        nan, *killed = store.runs()
    assert nan.status == "failed" and nan.error == "the primary metric test/top1_error is NaN"
    assert "test/top1_error" in nan.metrics
    assert [(r.status, r.metrics) for r in killed] == [("failed", {}), ("failed", {})]
    assert all("killed?" in r.error for r in killed)


def test_the_start_of_a_run_on_a_full_disk_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cvbench.db"
    store = ResultsStore(db)
    fill_up(store)
    record = classification_record("s1")
    record.config["pad"] = "x" * 20_000
    with pytest.raises(SystemExit) as exited, reported_errors():
        RecordedRun(store, record)
    assert exited.value.code == 1
    (line,) = error_lines(capsys)
    assert line == (
        f"error: results store {db}: cannot record the start of run s1: the disk holding it "
        f"is full (database or disk is full)"
    )
    assert store.runs(reap=False) == []  # nothing half written


def test_a_lock_held_past_the_timeout_is_named(tmp_path: Path) -> None:
    db, run_dir = tmp_path / "cvbench.db", tmp_path / "run"
    run_dir.mkdir()
    store = ResultsStore(db, timeout_s=0.2)
    recorded = RecordedRun(store, classification_record("l1", run_dir))
    (run_dir / "metrics.json").write_text(json.dumps(METRICS))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that does not let go
    try:
        with pytest.raises(StoreError) as raised:
            recorded.completed(METRICS)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(raised.value).startswith(
        f"results store {db}: cannot record the end of run l1: another process held its lock "
        f"for more than 0.2 s (database is locked); the run finished and its results are safe "
        f"in {run_dir / 'metrics.json'}"
    )
    assert store.get("l1").status == "running"


# -- corrupt pages ------------------------------------------------------------------------------


def corrupt_store(path: Path) -> bytes:
    """Write a real store of 40 runs, then overwrite the header of one of its inner pages (a
    leaf of the runs table, not the last, so a new row would land elsewhere); the bytes."""
    with ResultsStore(path) as store:
        for i in range(40):
            record = classification_record(f"c{i:02d}")
            record.config["pad"] = "x" * 3000
            store.start(record)
            store.end(record.run_id, "completed", metrics=METRICS, primary_value=2.5)
    db = sqlite3.connect(path)  # SQLite's own map of its pages
    size = db.execute("PRAGMA page_size").fetchone()[0]
    leaves = db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'runs' AND pagetype = 'leaf' ORDER BY pageno"
    ).fetchall()
    db.close()  # the last connection: the WAL is folded into the file and removed
    assert len(leaves) > 3 and not path.with_name(f"{path.name}-wal").exists()
    page = leaves[len(leaves) // 2][0]
    raw = bytearray(path.read_bytes())
    raw[(page - 1) * size : (page - 1) * size + 32] = b"\xa5" * 32
    path.write_bytes(bytes(raw))
    return bytes(raw)


def test_a_store_with_corrupt_pages_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cvbench.db"
    before = corrupt_store(db)
    with pytest.raises(StoreError, match=f"results store {db} is corrupt .*sqlite3 {db} .recover"):
        ResultsStore(db)
    assert db.read_bytes() == before
    wal = db.with_name("cvbench.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing waiting to be written either


def test_leaderboard_on_a_corrupt_store_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cvbench.db"
    before = corrupt_store(db)
    with pytest.raises(SystemExit) as exited:
        leaderboard_cli.main([f"db={db}"])
    assert exited.value.code == 1
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: results store {db} is corrupt (")
    assert db.read_bytes() == before


# -- files SQLite cannot open or read -----------------------------------------------------------


def test_a_store_that_cannot_be_opened_says_why_not_that_it_is_no_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "unable to open database file" names the path and why; only a real file of another
    kind is called "not a cvbench SQLite file"."""
    folder_in_place = tmp_path / "cvbench.db"
    folder_in_place.mkdir()
    with pytest.raises(StoreError) as raised:
        ResultsStore(folder_in_place)
    assert str(raised.value) == (
        f"results store {folder_in_place}: unable to open database file: "
        f"{folder_in_place} is a folder"
    )
    assert "not a cvbench SQLite file" not in str(raised.value)

    db = tmp_path / "results.db"
    shutil.copy(REPO / "pyproject.toml", db)  # a real file of another kind
    before = db.read_bytes()
    with pytest.raises(SystemExit):
        leaderboard_cli.main([f"db={db}"])
    (line,) = error_lines(capsys)
    assert line == (
        f"error: results store {db}: file is not a database. It is not a cvbench SQLite file; "
        f"set CVBENCH_DB or paths.results_db to another file."
    )
    assert db.read_bytes() == before


def test_a_folder_in_place_of_the_write_ahead_log_is_named(tmp_path: Path) -> None:
    db = tmp_path / "cvbench.db"
    ResultsStore(db).close()
    db.with_name("cvbench.db-wal").mkdir()
    with pytest.raises(StoreError) as raised:
        ResultsStore(db)
    assert str(raised.value) == (
        f"results store {db}: unable to open database file: {db}-wal is a folder"
    )


WRITE_PAST_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from cvbench.store.database import ResultsStore, StoreError
from cvbench.store.record import RunRecord
store = ResultsStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))
try:
    store.start(RunRecord(run_id="big", run_name="a", config={"pad": "x" * 50_000}))
except StoreError as err:
    print(err)
"""


def test_a_disk_io_error_is_not_called_a_foreign_file(tmp_path: Path) -> None:
    """A write the operating system refuses with EFBIG (a real file-size limit), which SQLite
    reports as "disk I/O error": named so, never "not a cvbench SQLite file"."""
    db = tmp_path / "cvbench.db"
    ResultsStore(db).close()
    done = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_A_FILE_SIZE_LIMIT, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"results store {db}: cannot record the start of run big: disk I/O error "
        f"(SQLITE_IOERR_WRITE): the disk failed or is full"
    )
    with ResultsStore(db) as store:
        assert store.runs() == []


# -- read-only stores ---------------------------------------------------------------------------


def recorded_store(db: Path) -> None:
    """A store holding one completed digits run, closed (its WAL folded into the file)."""
    with ResultsStore(db) as store:
        record = classification_record("ro1")
        store.start(record)
        store.end("ro1", "completed", metrics=METRICS, primary_value=2.5)


def test_a_store_opened_read_only_is_read_and_left_byte_identical(tmp_path: Path) -> None:
    """Opened for reading only: not switched to WAL, no table created, writes refused in one
    line (SQLite ``mode=ro``; runs as root too)."""
    db = tmp_path / "cvbench.db"
    recorded_store(db)
    with sqlite3.connect(db) as plain:
        plain.execute("PRAGMA journal_mode = DELETE")  # as a copy made by other tools may be
    before = db.read_bytes()
    with ResultsStore(db, read_only=True) as store:
        assert [(r.run_id, r.status) for r in store.runs()] == [("ro1", "completed")]
        with pytest.raises(StoreError) as raised:
            store.start(classification_record("ro2"))
    assert str(raised.value).startswith(
        f"results store {db} is read-only (opened for reading only): cannot record the start "
        f"of run ro2; make it writable or set CVBENCH_DB or paths.results_db to another file"
    )
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cvbench.db"]

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (text TEXT)").connection.close()
    with pytest.raises(StoreError, match="SQLite file without cvbench's runs table"):
        ResultsStore(other, read_only=True)
    tables = sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("notes",)]  # no table created


READ_AND_WRITE = """
set -e
{python} -m cvbench leaderboard db={db} > {out}/board.md
{python} -c 'import sys
from cvbench.cli.errors import reported_errors
from cvbench.store.database import ResultsStore
with reported_errors():
    ResultsStore(sys.argv[1])' {db} 2> {out}/write.err || echo "exit $?" > {out}/write.status
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_is_readable_and_a_write_is_one_line(tmp_path: Path, what: str) -> None:
    """`cvbench leaderboard` reads a store whose file (mode 0444) or folder is read-only (a
    read-only mount when root, whom modes do not stop); writing it is one error line."""
    folder, out = tmp_path / "store", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    db = folder / "cvbench.db"
    recorded_store(db)
    before = db.read_bytes()
    script = READ_AND_WRITE.format(python=sys.executable, db=db, out=out)
    if not IS_ROOT:
        (db if what == "file" else folder).chmod(0o444 if what == "file" else 0o555)
        command = ["sh", "-c", script]
    elif what == "folder" and unshare_works():
        mount = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder}"
        command = ["unshare", "-m", "sh", "-c", f"{mount}\n{script}"]
    else:
        pytest.skip("root ignores file modes; a read-only mount needs unshare")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| `classification/digits_small_cnn` |" in (out / "board.md").read_text()
    assert (out / "write.status").read_text() == "exit 1\n"
    errors = (out / "write.err").read_text().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: results store {db} is read-only (")
    assert "cannot record runs in it" in errors[0]
    assert db.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["cvbench.db"]

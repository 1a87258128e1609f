"""The SQLite results store: concurrent writers lose no record and tear none; dead runs are
reaped."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cvbench.store.database import ResultsStore, StoreError, open_store
from cvbench.store.record import RunRecord

WRITERS = 3
RUNS_PER_WRITER = 200
PAD = "x" * 3000  # a config bigger than a page, so a torn write would show


def started(writer: int, i: int) -> RunRecord:
    """The record writer ``writer`` starts as its ``i``-th run."""
    return RunRecord(
        run_id=f"w{writer}-{i:04d}",
        run_name=f"writer{writer}",
        seed=i,
        task="t",
        config={"writer": writer, "i": i, "pad": PAD},
    )


def problem(record: RunRecord) -> str | None:
    """What is wrong with ``record`` (a field of another run, a half-written end), or None:
    a ``running`` record has no end fields, a ``completed`` one has all of them."""
    writer, i = int(record.run_id[1]), int(record.run_id.split("-")[1])
    expected = started(writer, i)
    start = (record.run_name, record.seed, record.task, record.config)
    if start != (expected.run_name, expected.seed, expected.task, expected.config):
        return f"{record.run_id}: start fields of another run {start[:2]}"
    end = (record.metrics, record.primary_value, record.wall_time_s, record.ended_at is None)
    if record.status == "running" and end != ({}, None, None, True):
        return f"{record.run_id}: running with end fields {end}"
    if record.status == "completed" and end != ({"test/x": writer * 1000.0 + i}, i, 0.5, False):
        return f"{record.run_id}: completed with end fields {end}"
    if record.status not in ("running", "completed"):
        return f"{record.run_id}: status {record.status}"
    return None


def write_runs(path: str, writer: int, start: mp.Barrier) -> None:
    """One writer process: start and end RUNS_PER_WRITER runs, as fast as it can."""
    store = ResultsStore(path)
    start.wait()  # the writers and the reader begin together
    for i in range(RUNS_PER_WRITER):
        run_id = store.start(started(writer, i))
        store.end(
            run_id,
            "completed",
            metrics={"test/x": writer * 1000.0 + i},
            primary_value=i,
            wall_time_s=0.5,
        )
    store.close()


def read_runs(path: str, start: mp.Barrier, out: str) -> None:
    """A reader process: read every record again and again while the writers write, until
    all are completed; write what was wrong in any read to ``out`` (JSON)."""
    store = ResultsStore(path)
    start.wait()
    problems: list[str] = []
    while True:
        runs = store.runs(reap=False)
        problems += [p for p in map(problem, runs) if p]
        if len(runs) == WRITERS * RUNS_PER_WRITER and all(r.status == "completed" for r in runs):
            break
    store.close()
    Path(out).write_text(json.dumps(problems))


@pytest.mark.slow
def test_concurrent_writers_lose_no_record_and_tear_none(tmp_path: Path) -> None:
    """Whatever the interleaving of the processes: every record written is there, whole, and
    no read (while they write) sees a record half started or half ended."""
    path, out = str(tmp_path / "cvbench.db"), str(tmp_path / "reads.json")
    ResultsStore(path).close()
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(WRITERS + 1)
    procs = [ctx.Process(target=write_runs, args=(path, w, start)) for w in range(WRITERS)]
    procs.append(ctx.Process(target=read_runs, args=(path, start, out)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    exitcodes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert exitcodes == [0] * (WRITERS + 1)
    assert json.loads(Path(out).read_text()) == []  # no read saw a torn record
    runs = ResultsStore(path).runs()
    assert sorted(r.run_id for r in runs) == sorted(
        f"w{w}-{i:04d}" for w in range(WRITERS) for i in range(RUNS_PER_WRITER)
    )
    assert [p for p in map(problem, runs) if p] == []
    assert all(r.status == "completed" for r in runs)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_record_round_trips_every_field(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "db.sqlite")
    record = RunRecord(
        run_id="abc123",
        run_name="digits_small_cnn",
        experiment="classification/digits_small_cnn",
        task="classification",
        dataset="digits",
        model="classification/small_cnn",
        seed=3,
        primary_metric="test/top1_error",
        direction="min",
        config={"task": {"name": "classification"}, "lr": 0.003},
        config_hash="0123456789abcdef",
        overrides=["seed=3"],
        git_commit="f" * 40,
        git_dirty=True,
        packages={"torch": "2.14.1"},
        device={"cpu": "x86_64"},
    )
    store.start(record)
    assert store.get("abc").status == "running"
    store.end(
        "abc123",
        "completed",
        metrics={"test/top1_error": 2.5, "test/iou_type": "bbox", "test/ap_s": None},
        primary_value=2.5,
        wall_time_s=61.0,
        train_images_per_s=900.5,
        params=12345,
        flops_per_image=1.5e6,
        peak_memory_mb=812.0,
    )
    got = store.get("abc123")
    assert got.status == "completed" and got.ended_at is not None
    assert got.metrics == {"test/top1_error": 2.5, "test/iou_type": "bbox", "test/ap_s": None}
    assert got.config == record.config and got.overrides == ["seed=3"] and got.git_dirty is True
    assert (got.params, got.flops_per_image, got.train_images_per_s) == (12345, 1.5e6, 900.5)
    assert store.completed_hashes() == {"0123456789abcdef"}
    assert store.runs(task="detection") == [] and len(store.runs(task=["classification"])) == 1


def test_duplicate_run_id_and_unknown_fields_are_refused(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "db.sqlite")
    store.start(RunRecord(run_id="r1", run_name="a"))
    with pytest.raises(StoreError, match="run id r1 is already in"):
        store.start(RunRecord(run_id="r1", run_name="b"))
    with pytest.raises(ValueError, match="not fields a run sets at its end: \\['seed'\\]"):
        store.end("r1", "completed", seed=4)
    with pytest.raises(ValueError, match="'completed' or 'failed'"):
        store.end("r1", "done")
    with pytest.raises(StoreError, match="no run with id 'zz'"):
        store.get("zz")
    assert store.get("r1").status == "running"  # the refused writes changed nothing


def test_a_file_that_is_not_a_store_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cvbench.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=f"results store {bad}: .*not a cvbench SQLite file"):
        ResultsStore(bad)
    assert bad.read_bytes() == b"this is not a database" * 100  # left as it was
    with pytest.raises(StoreError, match="no results store at .*missing.db"):
        open_store(tmp_path / "missing.db")


def test_runs_of_dead_processes_are_reaped_as_failed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store = ResultsStore(tmp_path / "db.sqlite")
    store.start(RunRecord(run_id="dead", run_name="a", pid=int(dead.stdout)))
    store.start(RunRecord(run_id="alive", run_name="b"))  # this process
    runs = {r.run_id: r for r in store.runs()}
    assert runs["dead"].status == "failed" and "killed?" in runs["dead"].error
    assert runs["alive"].status == "running"
    assert store.fail_if_running("alive", "stopped") is True
    assert store.fail_if_running("alive", "again") is False
    assert store.get("alive").error == "stopped"

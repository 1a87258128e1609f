"""The SQLite results store: several writers at once lose nothing; dead runs are reaped."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cvbench.bench.store import ResultsStore, RunRecord, StoreError, open_store

RUNS_PER_WRITER = 300


def write_runs(path: str, writer: int, start: mp.Barrier) -> None:
    """One writer process: start and end RUNS_PER_WRITER runs, as fast as it can."""
    store = ResultsStore(path)
    start.wait()  # both writers begin together, so their transactions interleave
    for i in range(RUNS_PER_WRITER):
        run_id = f"w{writer}-{i:04d}"
        store.start(RunRecord(run_id=run_id, run_name=f"writer{writer}", seed=i, task="t"))
        store.end(run_id, "completed", metrics={"test/x": writer * 1000.0 + i}, primary_value=i)
    store.close()


@pytest.mark.slow
def test_two_writers_at_once_lose_no_record(tmp_path: Path) -> None:
    path = str(tmp_path / "cvbench.db")
    ResultsStore(path).close()
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    writers = [ctx.Process(target=write_runs, args=(path, w, start)) for w in (1, 2)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=120)
        assert p.exitcode == 0
    runs = ResultsStore(path).runs()
    assert len(runs) == 2 * RUNS_PER_WRITER
    assert all(r.status == "completed" for r in runs)
    for r in runs:
        writer, i = int(r.run_id[1]), int(r.run_id.split("-")[1])
        assert r.metrics == {"test/x": writer * 1000.0 + i} and r.seed == i
    # The interleaving really happened: neither writer finished before the other started.
    order = [r.run_id[1] for r in runs]
    assert order.index("2") < len(order) - order[::-1].index("1") - 1
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

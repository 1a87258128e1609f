"""Leaderboards from a real SQLite results store: mean and sample std over seeds against numpy,
sorting in the primary metric's direction, left-out runs, variants, columns from the task
configs, number formats, Markdown / CSV output and the ``cvbench leaderboard`` command."""

from __future__ import annotations

import csv
import doctest
import io
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from cvbench.bench import render, tables
from cvbench.bench.leaderboard import leaderboard_text
from cvbench.bench.tables import build_tables
from cvbench.cli import leaderboard as cli
from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

REPO = Path(__file__).resolve().parents[2]
TASKS = sorted((REPO / "cvbench" / "conf" / "task").glob("*.yaml"))


def task_config(task: str) -> dict:
    """The task's keys a resolved config carries that the leaderboard reads (the real YAML)."""
    raw = yaml.safe_load((REPO / "cvbench" / "conf" / "task" / f"{task}.yaml").read_text())
    return {k: raw[k] for k in ("name", "monitor", "monitor_mode", "leaderboard")}


def add_run(store: ResultsStore, run_id: str, experiment: str, metrics: dict, *,
            status: str = "completed", task: str = "classification", dataset: str = "digits",
            model: str = "classification/small_cnn", seed: int = 0,
            overrides: tuple[str, ...] = (), config_hash: str | None = None,
            judge: str | None = None, **costs: float) -> None:  # fmt: skip
    """Record one run the way ``cvbench train`` does: start, then end (unless running);
    ``judge``: the network the task's metrics are computed with (``task.judge``)."""
    config = {"task": task_config(task), "data": {"name": dataset}, "seed": seed}
    if judge is not None:
        config["task"]["judge"] = judge
    monitor = config["task"]["monitor"].split("/", 1)[1]
    store.start(
        RunRecord(
            run_id=run_id,
            run_name=experiment.replace("/", "_"),
            experiment=experiment,
            task=task,
            dataset=dataset,
            model=model,
            seed=seed,
            primary_metric=f"test/{monitor}",
            direction=config["task"]["monitor_mode"],
            config=config,
            config_hash=config_hash,
            overrides=[f"experiment={experiment}", f"seed={seed}", *overrides],
            started_at=f"2024-05-01T10:{len(store.runs(reap=False)):02d}:00+00:00",
        )
    )
    if status != "running":
        store.end(run_id, status, metrics=metrics, **costs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    with ResultsStore(tmp_path / "cvbench.db") as opened:
        yield opened


def test_doctests_pass() -> None:
    for module in (tables, render):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_mean_and_sample_std_over_seeds_match_numpy(store: ResultsStore) -> None:
    top1, top5 = [10.0, 12.5, 15.25], [1.0, 2.0, 4.5]
    for seed, (a, b) in enumerate(zip(top1, top5, strict=True)):
        add_run(store, f"a{seed}", "classification/a", {"test/top1_error": a,
                "test/top5_error": b}, seed=seed, params=11_689_512)  # fmt: skip
    (table,) = build_tables(store.runs())
    (row,) = table.rows
    assert row.n == 3 and row.seeds == [0, 1, 2]
    for key, values in (("test/top1_error", top1), ("test/top5_error", top5)):
        assert row.metrics[key].mean == pytest.approx(np.mean(values), abs=1e-12)
        assert row.metrics[key].std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    text = leaderboard_text(store.runs())
    expected = f"{np.mean(top1):.2f} ± {np.std(top1, ddof=1):.2f}"
    assert f"| 1 | `classification/a` | classification/small_cnn | {expected} |" in text
    assert "| 3 | 11.7M |" in text


def test_rows_sorted_in_the_primary_metric_direction(store: ResultsStore) -> None:
    # classification: lower top1_error first; segmentation: higher miou first.
    for name, value in (("mid", 20.0), ("best", 5.0), ("worst", 40.0)):
        add_run(store, f"c-{name}", f"classification/{name}", {"test/top1_error": value})
    add_run(store, "c-none", "classification/none", {"test/top5_error": 1.0})
    for name, value in (("mid", 50.0), ("best", 70.0), ("worst", 10.0)):
        add_run(store, f"s-{name}", f"segmentation/{name}", {"test/miou": value},
                task="segmentation", dataset="voc", model="segmentation/fcn")  # fmt: skip
    classification, segmentation = build_tables(store.runs())
    assert (classification.task, classification.direction) == ("classification", "min")
    assert [r.experiment for r in classification.rows] == [
        "classification/best",
        "classification/mid",
        "classification/worst",
        "classification/none",  # no primary metric: last
    ]
    assert (segmentation.task, segmentation.direction) == ("segmentation", "max")
    assert [r.experiment for r in segmentation.rows] == [
        "segmentation/best",
        "segmentation/mid",
        "segmentation/worst",
    ]
    assert "Sorted by test/miou (higher is better)" in leaderboard_text(store.runs())


def test_failed_and_running_runs_are_left_out_and_counted(store: ResultsStore) -> None:
    add_run(store, "ok0", "classification/ok", {"test/top1_error": 3.0}, seed=0)
    add_run(store, "ok1", "classification/ok", {"test/top1_error": 5.0}, seed=1)
    add_run(store, "bad", "classification/ok", {"test/top1_error": 0.0}, seed=2, status="failed")
    add_run(store, "crash", "classification/crashed", {}, status="failed")
    add_run(store, "live", "classification/live", {}, status="running")  # this process: alive
    (table,) = build_tables(store.runs())
    assert [r.experiment for r in table.rows] == ["classification/ok"]
    assert table.rows[0].run_ids == ["ok0", "ok1"]
    assert table.rows[0].metrics["test/top1_error"].mean == 4.0  # the failed seed's 0.0 is out
    assert table.left_out == {"failed": 2, "running": 1}
    text = leaderboard_text(store.runs())
    assert "Left out: 2 failed, 1 running run(s)." in text
    assert "crashed" not in text and "live" not in text


def test_a_repeated_config_counts_once_its_latest_run(store: ResultsStore) -> None:
    add_run(store, "s0", "classification/a", {"test/top1_error": 9.0}, config_hash="h0")
    add_run(store, "s1", "classification/a", {"test/top1_error": 7.0}, seed=1, config_hash="h1")
    add_run(store, "s0-again", "classification/a", {"test/top1_error": 5.0}, config_hash="h0")
    (table,) = build_tables(store.runs())
    assert table.rows[0].run_ids == ["s1", "s0-again"]
    assert table.rows[0].metrics["test/top1_error"].mean == 6.0
    assert table.left_out == {"repeated": 1}
    assert "Left out: 1 repeated run(s)." in leaderboard_text(store.runs())


def test_overrides_other_than_seed_make_separate_rows(store: ResultsStore) -> None:
    for seed in (0, 1):
        for lr, error in (("0.1", 10.0), ("0.01", 8.0)):
            overrides = (f"optim.lr={lr}", f"paths.output_dir=/o/{seed}")
            metrics = {"test/top1_error": error + seed}
            add_run(
                store, f"{lr}-{seed}", "classification/a", metrics, seed=seed, overrides=overrides
            )
    (table,) = build_tables(store.runs())
    assert [(r.variant, r.n) for r in table.rows] == [
        (("optim.lr=0.01",), 2),
        (("optim.lr=0.1",), 2),
    ]
    assert "| 1 | `classification/a` `optim.lr=0.01` |" in leaderboard_text(store.runs())


def test_runs_judged_by_different_networks_never_share_a_table(store: ResultsStore) -> None:
    """An FID under one feature network is no number to rank against one under another: each
    (task, dataset, judge) has its own table, named in its title and in the CSV."""
    for run_id, experiment, judge, error in (
        ("a0", "classification/a", "net_a", 5.0),
        ("b0", "classification/b", "net_a", 4.0),
        ("c0", "classification/c", "net_b", 1.0),
    ):
        add_run(store, run_id, experiment, {"test/top1_error": error}, judge=judge)
    add_run(store, "d0", "classification/d", {"test/top1_error": 3.0})
    tables_by_title = {t.title: t for t in build_tables(store.runs())}
    assert sorted(tables_by_title) == [
        "classification · digits",
        "classification · digits · judged by net_a",
        "classification · digits · judged by net_b",
    ]
    assert [
        r.experiment for r in tables_by_title["classification · digits · judged by net_a"].rows
    ] == [
        "classification/b",
        "classification/a",
    ]
    rows = list(csv.DictReader(io.StringIO(leaderboard_text(store.runs(), fmt="csv"))))
    assert sorted((r["experiment"], r["judge"]) for r in rows) == [
        ("classification/a", "net_a"),
        ("classification/b", "net_a"),
        ("classification/c", "net_b"),
        ("classification/d", ""),
    ]


def test_overrides_every_row_of_an_experiment_shares_are_not_shown(store: ResultsStore) -> None:
    """A suite's shared overrides (the same in every row of an experiment) stay out of the
    labels; only what tells rows apart is shown."""
    shared = ("trainer.max_epochs=1", "callbacks.progress_bar=null")
    for lr, error in (("0.1", 10.0), ("0.01", 8.0)):
        add_run(store, f"a-{lr}", "classification/a", {"test/top1_error": error},
                overrides=(*shared, f"optim.lr={lr}"))  # fmt: skip
    add_run(store, "b", "classification/b", {"test/top1_error": 9.0}, overrides=shared)
    (table,) = build_tables(store.runs())
    assert [r.label for r in table.rows] == [
        "classification/a optim.lr=0.01",
        "classification/b",
        "classification/a optim.lr=0.1",
    ]
    text = leaderboard_text(store.runs())
    assert "| 2 | `classification/b` | classification/small_cnn |" in text
    assert "max_epochs" not in text


def test_columns_are_the_task_leaderboard_keys_that_runs_record(store: ResultsStore) -> None:
    keys = task_config("detection")["leaderboard"]
    coco = {k: 30.0 + i for i, k in enumerate(keys) if k != "test/voc_map_50"}
    add_run(store, "d0", "detection/coco", coco, task="detection", dataset="coco")
    (table,) = build_tables(store.runs())
    assert table.columns == [k for k in keys if k != "test/voc_map_50"]  # no run records it
    add_run(store, "d1", "detection/coco", {**coco, "test/voc_map_50": 71.0}, seed=1,
            task="detection", dataset="coco")  # fmt: skip
    (table,) = build_tables(store.runs())
    assert table.columns == keys
    text = leaderboard_text(store.runs())
    assert "| map | map_50 |" in text
    assert "| 71.00 (1/2) |" in text  # recorded by 1 of the row's 2 runs


def test_number_formats(store: ResultsStore) -> None:
    psnr, ssim = [33.123, 33.456], [0.91234, 0.91876]
    for seed in (0, 1):
        add_run(store, f"sr{seed}", "super_resolution/edsr", {"test/psnr": psnr[seed],
                "test/ssim": ssim[seed], "test/baseline_psnr": 30.0}, seed=seed,
                task="super_resolution", dataset="set5", model="super_resolution/edsr",
                params=1_369_859, flops_per_image=8.2345e10,
                train_images_per_s=[411.4, 412.0][seed],
                wall_time_s=[76.0, 79.0][seed])  # fmt: skip
    text = leaderboard_text(store.runs())
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{np.mean(psnr):.2f} ± {np.std(psnr, ddof=1):.2f}"
    assert cells[4] == f"{np.mean(ssim):.4f} ± {np.std(ssim, ddof=1):.4f}"
    assert cells[5] == "30.00 ± 0.00"
    assert cells[6:] == ["2", "1.37M", "82.3G", "412", "1 min 18 s"]  # time: mean 77.5 s
    assert [render.format_si(v) for v in (999_499, 999_500, 12, 1.5e12)] == [
        "999k",
        "1M",
        "12",
        "1.5T",
    ]


def test_markdown_is_stable_whatever_the_record_order(tmp_path: Path) -> None:
    runs = [
        ("b0", "classification/b", 7.0, 0),
        ("a0", "classification/a", 9.0, 0),
        ("b1", "classification/b", 7.5, 1),
        ("a1", "classification/a", 8.0, 1),
    ]
    texts = []
    for name, order in (("forward", runs), ("backward", runs[::-1])):
        with ResultsStore(tmp_path / f"{name}.db") as store:
            for run_id, experiment, error, seed in order:
                add_run(store, run_id, experiment, {"test/top1_error": error}, seed=seed)
            texts.append(leaderboard_text(store.runs()))
    assert texts[0] == texts[1]
    assert "2024" not in texts[0]  # no timestamps


def test_csv_holds_full_precision_values(store: ResultsStore) -> None:
    values = [1.0 / 3.0, 2.0 / 7.0, 0.5]
    for seed, value in enumerate(values):
        add_run(store, f"c{seed}", "classification/a", {"test/top1_error": value}, seed=seed,
                params=1000, train_images_per_s=10.25)  # fmt: skip
    add_run(store, "bad", "classification/a", {}, seed=9, status="failed")
    (row,) = csv.DictReader(io.StringIO(leaderboard_text(store.runs(), fmt="csv")))
    assert float(row["test/top1_error_mean"]) == pytest.approx(np.mean(values), rel=1e-15)
    assert float(row["test/top1_error_std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-15)
    assert "test/top5_error_mean" not in row  # no run records it: no column
    assert (row["n"], row["seeds"], row["run_ids"]) == ("3", "0 1 2", "c0 c1 c2")
    assert (row["params"], row["train_images_per_s"], row["left_out_failed"]) == (
        "1000",
        "10.25",
        "1",
    )


def test_nan_metric_shows_and_sorts_last(store: ResultsStore) -> None:
    add_run(
        store, "n0", "classification/nan", {"test/top1_error": 1.0, "test/top5_error": math.nan}
    )
    add_run(store, "n1", "classification/nan", {"test/top1_error": 2.0, "test/top5_error": 1.0},
            seed=1)  # fmt: skip
    add_run(store, "w", "classification/worse", {"test/top1_error": 50.0})
    (table,) = build_tables(store.runs())
    assert math.isnan(table.rows[0].metrics["test/top5_error"].mean)
    assert "| 1.50 ± 0.71 | nan ± nan |" in leaderboard_text(store.runs())


def test_a_leaderboard_key_that_is_not_a_list_names_the_run_and_file(store: ResultsStore) -> None:
    add_run(store, "x", "classification/a", {"test/top1_error": 1.0})
    record = store.get("x")
    record.config["task"]["leaderboard"] = "test/top1_error"
    with pytest.raises(ValueError, match=r"run x: task.leaderboard .*conf/task/classification"):
        build_tables([record])
    with pytest.raises(ValueError, match="unknown leaderboard format 'pdf'"):
        leaderboard_text([record], fmt="pdf")


@pytest.mark.parametrize("path", TASKS, ids=[p.stem for p in TASKS])
def test_every_task_config_lists_its_primary_metric_first(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    keys = config.get("leaderboard")
    assert isinstance(keys, list) and keys, f"{path} has no leaderboard list"
    assert keys[0] == "test/" + config["monitor"].split("/", 1)[1]
    assert all(k.startswith("test/") for k in keys) and len(set(keys)) == len(keys)


def test_the_composed_config_carries_the_leaderboard(make_cfg) -> None:
    cfg = make_cfg()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["task"]["leaderboard"] == task_config(cfg.task.name)["leaderboard"]


# -- the command ----------------------------------------------------------------------------


def test_cli_filters_and_writes_files(store: ResultsStore, tmp_path: Path, capsys) -> None:
    add_run(store, "c", "classification/a", {"test/top1_error": 4.0})
    add_run(store, "s", "segmentation/a", {"test/miou": 60.0}, task="segmentation",
            dataset="voc", model="segmentation/fcn")  # fmt: skip
    cli.main([f"db={store.path}", "task=segmentation"])
    out = capsys.readouterr().out
    assert "### segmentation · voc" in out and "classification" not in out
    cli.main([f"db={store.path}", "task=classification,segmentation"])
    assert capsys.readouterr().out.count("### ") == 2
    target = tmp_path / "board" / "lb.csv"
    cli.main([f"db={store.path}", "format=csv", f"out={target}"])
    assert capsys.readouterr().out == f"wrote {target}\n"
    rows = list(csv.DictReader(target.open()))
    assert [r["task"] for r in rows] == ["classification", "segmentation"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["format=pdf"], "format=pdf is not one of md, csv, html"),
        (["kind=test"], "kind=test is not one of train, eval, all"),
        (["colour=red"], "unknown setting 'colour'"),
        (["classification"], "takes key=value settings only"),
        (["task=detection"], "no train runs in .* match task=detection .*tasks: classification"),
    ],
)
def test_cli_errors_are_one_line(store: ResultsStore, capsys, argv, message) -> None:
    add_run(store, "c", "classification/a", {"test/top1_error": 4.0})
    with pytest.raises(SystemExit) as exit_:
        cli.main([f"db={store.path}", *argv])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err


def test_cli_without_a_store_says_where_it_looked(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main([f"db={tmp_path / 'missing.db'}"])
    assert "no results store at" in capsys.readouterr().err


@pytest.mark.slow
def test_cvbench_leaderboard_command_reads_cvbench_db(store: ResultsStore, tmp_path: Path) -> None:
    add_run(store, "c", "classification/a", {"test/top1_error": 4.0})
    env = {**os.environ, "CVBENCH_DB": str(store.path)}
    command = [sys.executable, "-m", "cvbench", "leaderboard", "kind=all"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "| 1 | `classification/a` | classification/small_cnn | 4.00 |" in done.stdout

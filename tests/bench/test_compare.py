"""``cvbench compare`` on real SQLite stores and real per-image files in the formats the task
reports write (restoration ``test_per_image.csv``, classification predictions + labels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from cvbench.bench.compare import (
    ABSENT,
    NotApplicable,
    compare,
    per_image_scores,
    resolve_side,
    side_scores,
)
from cvbench.cli.compare import main
from cvbench.store.database import ResultsStore, StoreError
from cvbench.store.record import RunRecord
from cvbench.tasks.restoration_report import per_image_csv
from cvbench.tasks.text_recognition_report import per_word_csv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    with ResultsStore(tmp_path / "cvbench.db") as results:
        yield results


def add_run(
    store: ResultsStore,
    run_id: str,
    *,
    metrics: dict[str, Any],
    experiment: str | None = None,
    seed: int = 0,
    status: str = "completed",
    kind: str = "train",
    config: dict[str, Any] | None = None,
    primary: str = "test/psnr",
    direction: str = "max",
    config_hash: str | None = None,
) -> Path:
    """Record a finished run whose resolved config looks like cvbench's; its run directory."""
    run_dir = store.path.parent / "runs" / run_id
    run_dir.mkdir(parents=True)
    resolved = {
        "run_name": f"name_{run_id}",
        "seed": seed,
        "paths": {"output_dir": str(run_dir), "root_dir": "."},
        "trainer": {"default_root_dir": str(run_dir), "max_epochs": 2},
        "task": {"name": "super_resolution", "report": {"output_dir": str(run_dir)}},
        "data": {"name": "set5"},
        "optim": {"lr": 0.001},
    } | (config or {})
    store.start(
        RunRecord(
            run_id=run_id,
            run_name=resolved["run_name"],
            kind=kind,
            experiment=experiment,
            seed=seed,
            primary_metric=primary,
            direction=direction,
            config=resolved,
            config_hash=config_hash or f"hash_{run_id}",
            run_dir=str(run_dir),
        )
    )
    if status != "running":
        error = "boom" if status == "failed" else None
        store.end(run_id, status, metrics=metrics, primary_value=metrics.get(primary), error=error)
    return run_dir


def write_restoration(run_dir: Path, psnr: list[float], names: list[str] | None = None) -> None:
    names = names or [f"img{i:03d}.png" for i in range(len(psnr))]
    rows = [
        {"index": i, "name": n, "psnr": p, "ssim": 0.9, "baseline_psnr": 30.0}
        for i, (n, p) in enumerate(zip(names, psnr, strict=True))
    ]
    (run_dir / "test_per_image.csv").write_text(per_image_csv(rows))


def write_classification(run_dir: Path, labels: list[int], guesses: list[list[int]]) -> None:
    """The two files as ClassificationReport writes them: one line per image."""
    (run_dir / "test_labels.txt").write_text("".join(f"{t}\n" for t in labels))
    lines = "".join(" ".join(map(str, g)) + "\n" for g in guesses)
    (run_dir / "test_predictions.txt").write_text(lines)


def test_config_differences_leave_out_run_specific_keys(store: ResultsStore) -> None:
    add_run(store, "aaaa01", metrics={"test/psnr": 30.0}, seed=0)
    add_run(
        store,
        "bbbb01",
        metrics={"test/psnr": 31.0},
        seed=1,
        config={"optim": {"lr": 0.01}, "model": {"width": 64}},
    )
    result = compare(store, "aaaa01", "bbbb01")
    assert result.config_differences == [
        ("model.width", [ABSENT], [64]),
        ("optim.lr", [0.001], [0.01]),
        ("seed", [0], [1]),
    ]


def test_seeds_of_two_experiments_are_not_a_difference(store: ResultsStore) -> None:
    for seed in range(2):
        add_run(store, f"a{seed}", metrics={"test/psnr": 30.0 + seed}, experiment="x", seed=seed)
        add_run(store, f"b{seed}", metrics={"test/psnr": 30.5 + seed}, experiment="y", seed=seed)
    result = compare(store, "x", "y")
    assert result.config_differences == []
    assert [r.run_id for r in result.a.records] == ["a0", "a1"]


def test_experiment_side_takes_its_completed_train_runs(store: ResultsStore) -> None:
    add_run(store, "r1", metrics={"test/psnr": 30.0}, experiment="sr/edsr", seed=0)
    add_run(store, "r2", metrics={"test/psnr": 31.0}, experiment="sr/edsr", seed=1)
    add_run(store, "r3", metrics={}, experiment="sr/edsr", seed=2, status="failed")
    add_run(store, "r4", metrics={"test/psnr": 29.0}, experiment="sr/edsr", kind="eval")
    add_run(store, "r5", metrics={}, experiment="sr/edsr", seed=3, status="running")
    side = resolve_side(store, "sr/edsr")
    assert side.kind == "experiment"
    assert [r.run_id for r in side.records] == ["r1", "r2"]
    # The same config run again counts once: the latest run replaces the earlier one.
    add_run(store, "r6", metrics={"test/psnr": 30.2}, experiment="sr/edsr", config_hash="hash_r1")
    assert [r.run_id for r in resolve_side(store, "sr/edsr").records] == ["r6", "r2"]


def test_run_sides_and_their_errors(store: ResultsStore) -> None:
    add_run(store, "abc123", metrics={"test/psnr": 30.0})
    add_run(store, "abd456", metrics={"test/psnr": 30.0})
    add_run(store, "fff000", metrics={}, status="failed")
    add_run(store, "eee000", metrics={}, experiment="broken", status="failed")
    assert resolve_side(store, "abc").records[0].run_id == "abc123"
    with pytest.raises(StoreError, match="2 runs with id 'ab'"):
        resolve_side(store, "ab")
    with pytest.raises(StoreError, match="no run with id 'zzz'.*no experiment named 'zzz'"):
        resolve_side(store, "zzz")
    with pytest.raises(StoreError, match="run fff000 is failed: boom"):
        resolve_side(store, "fff")
    with pytest.raises(StoreError, match="experiment 'broken' has 1 train runs but none"):
        resolve_side(store, "broken")


def test_welch_across_seeds_matches_scipy(store: ResultsStore) -> None:
    a_values, b_values = [30.1, 30.4, 29.9], [30.9, 31.3, 31.0, 30.7]
    for i, value in enumerate(a_values):
        add_run(store, f"a{i}", metrics={"test/psnr": value, "test/ssim": 0.9}, experiment="x")
    for i, value in enumerate(b_values):
        add_run(store, f"b{i}", metrics={"test/psnr": value, "val/psnr": 1.0}, experiment="y")
    result = compare(store, "x", "y")
    assert result.metric == "test/psnr" and result.direction == "max"
    assert [key for key, _, _ in result.metrics] == ["test/psnr", "test/ssim", "val/psnr"]
    assert result.metrics[0][1:] == (a_values, b_values)
    reference = stats.ttest_ind(b_values, a_values, equal_var=False)
    assert result.welch.result.t == pytest.approx(reference.statistic)
    assert result.welch.result.p_value == pytest.approx(reference.pvalue)
    assert result.bootstrap.result is None
    assert "has no test_per_image.csv" in result.bootstrap.reason


def test_paired_bootstrap_over_restoration_images(store: ResultsStore) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(30, 2, 20)
    b = a + 0.4 + rng.normal(0, 0.1, 20)
    write_restoration(add_run(store, "aaa", metrics={"test/psnr": float(a.mean())}), a.tolist())
    write_restoration(add_run(store, "bbb", metrics={"test/psnr": float(b.mean())}), b.tolist())
    result = compare(store, "aaa", "bbb", resamples=2000, seed=3)
    assert result.welch.reason == "needs >= 2 seeds on each side; A has 1, B 1"
    boot = result.bootstrap.result
    assert (boot.n, boot.resamples, boot.seed) == (20, 2000, 3)
    assert boot.mean_diff == pytest.approx(float((b - a).mean()), abs=1e-6)  # CSV: 6 decimals
    assert boot.p_value < 0.001 and boot.ci_low > 0
    same = compare(store, "aaa", "aaa", resamples=500).bootstrap.result
    assert same.mean_diff == 0 and same.p_value == 1


def test_paired_bootstrap_over_recognised_words(store: ResultsStore) -> None:
    """Text recognition: the per-word CSV the report writes pairs two runs word by word; each
    word is right (100) or wrong (0), and the mean is the recorded word accuracy."""
    truths = [f"w{i}" for i in range(200)]
    right_a = [i % 4 != 0 for i in range(200)]  # 75%
    right_b = [i % 20 != 0 for i in range(200)]  # 95%: right wherever A is, and on 40 more
    for run_id, right in (("ra", right_a), ("rb", right_b)):
        words = [
            {
                "index": i,
                "name": f"word_{i:03d}.png",
                "truth": t,
                "prediction": t if ok else "x",
                "right": int(ok),
                "one_minus_ned": 1.0 if ok else 0.0,
            }
            for i, (t, ok) in enumerate(zip(truths, right, strict=True))
        ]
        acc = 100.0 * sum(right) / len(right)
        config = {"task": {"name": "text_recognition"}, "data": {"name": "synth_words"}}
        run_dir = add_run(
            store, run_id, metrics={"test/word_acc": acc}, config=config, primary="test/word_acc"
        )
        (run_dir / "test_per_image.csv").write_text(per_word_csv(words))
    scores = per_image_scores(store.get("ra"), "test/word_acc")
    assert scores["word_000.png"] == 0.0 and scores["word_001.png"] == 100.0
    boot = compare(store, "ra", "rb", metric="test/word_acc", resamples=2000, seed=0)
    result = boot.bootstrap.result
    assert result.n == 200 and result.mean_diff == pytest.approx(20.0)
    assert result.ci_low > 0 and result.p_value < 0.01


@pytest.mark.parametrize(
    ("names_b", "psnr_b", "reason"),
    [
        (["x.png", "y.png", "other.png"], [30.0, 30.0, 30.0], "scored different test images"),
        (["x.png", "y.png", "z.png"], [30.0, float("inf"), 30.0], "not finite"),
    ],
)
def test_bootstrap_needs_the_same_finite_images(
    store: ResultsStore, names_b: list[str], psnr_b: list[float], reason: str
) -> None:
    write_restoration(
        add_run(store, "a1", metrics={"test/psnr": 30.0}), [30.0] * 3, ["x.png", "y.png", "z.png"]
    )
    write_restoration(add_run(store, "b1", metrics={"test/psnr": 30.0}), psnr_b, names_b)
    outcome = compare(store, "a1", "b1").bootstrap
    assert outcome.result is None and reason in outcome.reason


def test_classification_top_k_errors_per_image(store: ResultsStore) -> None:
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    guesses_a = [[(t + 1) % 10, t, 2, 3, 4] if t < 4 else [t, 0, 1, 2, 3] for t in labels]
    guesses_b = [[t, 9, 8, 7, 6] for t in labels[:8]] + [[0, 1, 2, 3, 4], [9, 0, 1, 2, 3]]
    metrics = {"primary": "test/top1_error", "direction": "min"}
    run_a = add_run(
        store, "ca", metrics={"test/top1_error": 40.0, "test/top5_error": 0.0}, **metrics
    )
    run_b = add_run(
        store, "cb", metrics={"test/top1_error": 10.0, "test/top5_error": 10.0}, **metrics
    )
    write_classification(run_a, labels, guesses_a)
    write_classification(run_b, labels, guesses_b)
    top1 = per_image_scores(store.get("ca"), "test/top1_error")
    assert list(top1.values()) == [100.0] * 4 + [0.0] * 6
    assert list(top1)[:2] == ["0:0", "1:1"]
    top5_b = per_image_scores(store.get("cb"), "test/top5_error")
    assert list(top5_b.values()) == [0.0] * 8 + [100.0, 0.0]  # label 8 is not in 0..4
    result = compare(store, "ca", "cb", resamples=1000)
    assert result.metric == "test/top1_error" and result.direction == "min"
    assert result.bootstrap.result.mean_diff == pytest.approx(-30.0)
    with pytest.raises(NotApplicable, match="no per-image scores of test/loss"):
        per_image_scores(store.get("ca"), "test/loss")


def test_classification_runs_on_other_labels_do_not_pair(store: ResultsStore) -> None:
    metrics = {"test/top1_error": 0.0}
    write_classification(add_run(store, "c1", metrics=metrics), [0, 1], [[0], [1]])
    write_classification(add_run(store, "c2", metrics=metrics), [1, 0], [[1], [0]])
    outcome = compare(store, "c1", "c2", metric="test/top1_error").bootstrap
    assert "scored different test images" in outcome.reason


def test_experiment_per_image_scores_are_the_mean_over_seeds(store: ResultsStore) -> None:
    run_0 = add_run(store, "s0", metrics={"test/psnr": 25.0}, experiment="e")
    run_1 = add_run(store, "s1", metrics={"test/psnr": 26.5}, experiment="e", seed=1)
    write_restoration(run_0, [30.0, 20.0])
    write_restoration(run_1, [32.0, 21.0])
    scores = side_scores(resolve_side(store, "e"), "test/psnr")
    assert scores == {"img000.png": 31.0, "img001.png": 20.5}


def test_per_image_files_must_match_the_recorded_metric(store: ResultsStore) -> None:
    write_restoration(add_run(store, "st", metrics={"test/psnr": 25.0}), [30.0, 20.0])
    write_restoration(add_run(store, "sx", metrics={"test/psnr": 25.1}), [30.0, 20.0])
    assert side_scores(resolve_side(store, "st"), "test/psnr") == {
        "img000.png": 30.0,
        "img001.png": 20.0,
    }
    outcome = compare(store, "st", "sx").bootstrap
    assert outcome.result is None
    assert "run sx: the mean of its per-image test/psnr (25) is not its recorded" in outcome.reason


def test_metric_choice_and_errors(store: ResultsStore) -> None:
    add_run(store, "m1", metrics={"test/psnr": 30.0, "test/ssim": 0.8, "test/color": "y"})
    add_run(store, "m2", metrics={"test/psnr": 30.5, "test/ssim": 0.85})
    result = compare(store, "m1", "m2", metric="test/ssim")
    assert result.direction is None  # only the primary metric's direction is recorded
    assert [key for key, _, _ in result.metrics] == ["test/ssim", "test/psnr"]  # no strings
    with pytest.raises(ValueError, match=r"metric=test/map is not recorded.*test/psnr"):
        compare(store, "m1", "m2", metric="test/map")


def test_cli_text_output(store: ResultsStore, capsys: pytest.CaptureFixture[str]) -> None:
    for seed, (a, b) in enumerate([(30.0, 31.0), (30.2, 31.3), (29.9, 31.1)]):
        add_run(store, f"ta{seed}", metrics={"test/psnr": a}, experiment="sr/a", seed=seed)
        add_run(
            store,
            f"tb{seed}",
            metrics={"test/psnr": b},
            experiment="sr/b",
            seed=seed,
            config={"optim": {"lr": 0.01}},
        )
    main(["a=sr/a", "b=sr/b", f"db={store.path}"])
    out = capsys.readouterr().out
    assert "A  experiment sr/a: 3 completed runs (seeds 0, 1, 2)" in out
    assert "optim.lr  0.001  0.01" in out
    assert "test/psnr  30.033 ± 0.15275 (3)  31.133 ± 0.15275 (3)  1.1" in out
    assert "Welch's t-test across seeds: 1.1 [" in out
    assert "Paired bootstrap over test images: does not apply" in out
    assert "B is better than A on test/psnr by 1.1, more than seed noise (p < 0.05)." in out


def test_cli_says_when_neither_test_applies(
    store: ResultsStore, capsys: pytest.CaptureFixture[str]
) -> None:
    add_run(store, "n1", metrics={"test/psnr": 30.0})
    add_run(store, "n2", metrics={"test/psnr": 30.2})
    main(["a=n1", "b=n2", f"db={store.path}"])
    assert "Neither test applies, so it cannot be said" in capsys.readouterr().out


def test_cli_json_output(store: ResultsStore, capsys: pytest.CaptureFixture[str]) -> None:
    write_restoration(add_run(store, "j1", metrics={"test/psnr": 30.0}), [30.0, 31.0, 29.0])
    write_restoration(add_run(store, "j2", metrics={"test/psnr": 31.0}), [31.0, 32.0, 30.0])
    main(["a=j1", "b=j2", f"db={store.path}", "format=json", "resamples=300", "seed=5"])
    data = json.loads(capsys.readouterr().out)
    assert data["a"] == {"name": "j1", "kind": "run", "run_ids": ["j1"], "seeds": [0]}
    assert data["welch"] == {
        "applies": False,
        "reason": "needs >= 2 seeds on each side; A has 1, B 1",
    }
    boot = data["bootstrap"]
    assert boot["applies"] and boot["resamples"] == 300 and boot["seed"] == 5
    assert boot["mean_diff"] == 1.0 and boot["p_value"] == 0.0 and boot["more_than_noise"]
    assert data["metrics"][0] == {
        "key": "test/psnr",
        "a": {"values": [30.0], "mean": 30.0},
        "b": {"values": [31.0], "mean": 31.0},
        "diff": 1.0,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a=only_one"], "b= is required"),
        (["a=a", "b=b", "colour=red"], "unknown setting 'colour'"),
        (["a=a", "b=b", "resamples=lots"], "resamples must be an integer >= 1, got 'lots'"),
        (["a=a", "b=b", "format=xml"], "format=xml is not one of text, json"),
        (["a=x1", "b=nope"], "no run with id 'nope'"),
    ],
)
def test_cli_errors(
    store: ResultsStore, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    add_run(store, "x1", metrics={"test/psnr": 30.0})
    with pytest.raises(SystemExit) as exit_info:
        main([*args, f"db={store.path}"])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err


def test_cli_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["a=a", "b=b", f"db={tmp_path / 'none.db'}"])
    assert f"no results store at {tmp_path / 'none.db'}" in capsys.readouterr().err


@pytest.mark.slow
def test_cvbench_compare_command(store: ResultsStore) -> None:
    add_run(store, "p1", metrics={"test/psnr": 30.0})
    add_run(store, "p2", metrics={"test/psnr": 30.5})
    done = subprocess.run(
        [sys.executable, "-m", "cvbench", "compare", "a=p1", "b=p2", f"db={store.path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "A  run p1: name_p1, seed 0" in done.stdout
    assert "Neither test applies" in done.stdout

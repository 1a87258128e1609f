"""DDP with two CPU processes (gloo), started by the real CLI: training works, testing is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from cvbench.run.train import run_train
from cvbench.store.database import ResultsStore

# 0.1995 of the 1,797 digits: a 359-image test split. Odd, so DistributedSampler pads one
# rank's shard with a repeated image; exact metrics must count it once.
ODD_TEST = "data.records.test_fraction=0.1995"


@pytest.mark.slow
def test_ddp_cpu_test_metrics_equal_single_process(make_cfg, tmp_path: Path) -> None:
    run_train(make_cfg("trainer.max_epochs=1", "trainer.limit_train_batches=10", ODD_TEST))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    results = {}
    for name, extra in (("single", ()), ("ddp", ("trainer=ddp_cpu",))):
        run_dir = tmp_path / name
        done = run_cli(
            "eval", f"ckpt_path={ckpt}", ODD_TEST, *extra, f"hydra.run.dir={run_dir}", cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = json.loads((run_dir / "metrics.json").read_text())
    single, ddp = results["single"], results["ddp"]
    for name in ("test_predictions.txt", "test_labels.txt"):  # every image, from both ranks
        assert (tmp_path / "ddp" / name).read_text() == (tmp_path / "single" / name).read_text()
        assert len((tmp_path / "ddp" / name).read_text().splitlines()) == 359
    assert single["test/num_images"] == ddp["test/num_images"] == 359
    assert single["test/top1_error"] == ddp["test/top1_error"]
    assert single["test/top5_error"] == ddp["test/top5_error"]
    # Per-sample losses come from batches of other sizes: equal up to float rounding.
    assert ddp["test/loss"] == pytest.approx(single["test/loss"], rel=1e-9)


@pytest.mark.slow
def test_ddp_cpu_multirun_writes_one_run_and_one_record_per_trial(tmp_path: Path) -> None:
    """`cvbench train -m trainer=ddp_cpu seed=1,2`: two processes per trial, yet one run
    directory and one results-store record per trial, never one per process."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "train",
        "-m",
        "trainer=ddp_cpu",
        "seed=1,2",
        "debug=limit",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert 0 <= metrics["test/top1_error"] <= 100
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    runs = ResultsStore(tmp_path / "outputs" / "cvbench.db").runs()
    assert sorted((r.seed, r.status, Path(r.run_dir).name) for r in runs) == [
        (1, "completed", "0"),
        (2, "completed", "1"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "sweep"]

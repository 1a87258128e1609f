"""DDP with two CPU processes (gloo), started by the real CLI: training works, testing is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from cvbench.run.train import run_train

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
def test_ddp_cpu_training_writes_one_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = run_cli(
        "train", "trainer=ddp_cpu", "debug=limit", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["test/top1_error"] <= 100
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no directory per process

"""Every run lands in the results store: completed with its metrics and costs, or failed
with the error, including runs killed mid-training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import HELPERS
from torch.utils.flop_counter import FlopCounterMode

from cvbench.run.build import build_model
from cvbench.run.callbacks import NonFiniteLossError
from cvbench.run.evaluate import run_eval
from cvbench.run.train import run_train
from cvbench.store.database import ResultsStore
from cvbench.store.record import config_hash

QUICK = ("trainer.max_epochs=2", "trainer.limit_train_batches=6")


@pytest.mark.slow
def test_train_and_eval_runs_are_recorded(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("experiment=classification/digits_small_cnn", "seed=7", *QUICK)
    metrics = run_train(cfg)
    (record,) = ResultsStore(tmp_path / "cvbench.db").runs()
    assert record.status == "completed" and record.error is None and record.kind == "train"
    assert (record.experiment, record.task, record.dataset, record.model, record.seed) == (
        "classification/digits_small_cnn",
        "classification",
        "digits",
        "classification/small_cnn",
        7,
    )
    assert record.metrics == json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (record.primary_metric, record.direction) == ("test/top1_error", "min")
    assert record.primary_value == metrics["test/top1_error"]
    assert record.config_hash == config_hash(cfg) and record.config["seed"] == 7
    assert record.run_dir == str(tmp_path / "run") and record.git_commit
    assert record.packages["torch"] and record.device["cuda_available"] is False

    net = build_model(cfg)
    assert record.params == sum(p.numel() for p in net.parameters())
    # The test step of classification is the net's forward: count it on one image.
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net.eval()(torch.zeros(1, 1, 8, 8))
    assert record.flops_per_image == pytest.approx(counter.get_total_flops())
    assert record.train_images_per_s > 0 and record.peak_memory_mb > 100
    assert 0 < record.wall_time_s < 600

    # An evaluation of its checkpoint is filed under the same experiment, as kind "eval".
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    run_eval(make_cfg(f"ckpt_path={ckpt}", name="eval", run="eval"), [f"ckpt_path={ckpt}"])
    evaluated = ResultsStore(tmp_path / "cvbench.db").runs(kind="eval")
    assert [(r.experiment, r.status) for r in evaluated] == [
        ("classification/digits_small_cnn", "completed")
    ]
    assert evaluated[0].primary_value == record.primary_value


def test_failed_run_is_recorded_with_its_error(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "task.module.loss._target_=diverging.DivergingLoss",
        "+task.module.loss.finite_calls=4",
        "trainer.num_sanity_val_steps=0",
    )
    sys.path.insert(0, str(HELPERS))
    try:
        with pytest.raises(NonFiniteLossError):
            run_train(cfg)
    finally:
        sys.path.pop(0)
    (record,) = ResultsStore(tmp_path / "cvbench.db").runs()
    assert record.status == "failed" and record.ended_at is not None
    assert record.error.startswith("NonFiniteLossError: training loss is nan at epoch 1")
    assert record.metrics == {} and record.primary_value is None
    assert record.params > 0 and record.wall_time_s > 0


def start_long_run(tmp_path: Path) -> subprocess.Popen:
    """`cvbench train` for many epochs, recording into tmp_path/outputs/cvbench.db."""
    return subprocess.Popen(
        [sys.executable, "-m", "cvbench", "train", "trainer.max_epochs=500",
         "callbacks.progress_bar=null", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for_training(proc: subprocess.Popen, run_dir: Path) -> None:
    """Until the first epoch's checkpoint exists: the run is mid-training."""
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the run never finished an epoch"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "error"),
    [
        (signal.SIGKILL, "the run's process ended without recording a result (killed?)"),
        (signal.SIGTERM, "interrupted (SIGTERMException"),
    ],
)
def test_run_killed_mid_training_is_marked_failed(tmp_path: Path, sig, error) -> None:
    """SIGTERM (what SLURM sends at the time limit) is recorded by the run itself; SIGKILL
    leaves it `running` until a reader finds its process gone. Ctrl-C: tests/bench/test_suite.py."""
    proc = start_long_run(tmp_path)
    try:
        wait_for_training(proc, tmp_path / "run")
        store = ResultsStore(tmp_path / "outputs" / "cvbench.db")
        assert [r.status for r in store.runs()] == ["running"]
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    (record,) = store.runs()  # reads reap the runs of dead processes
    assert record.status == "failed" and record.error.startswith(error), record.error
    assert not (tmp_path / "run" / "metrics.json").exists()

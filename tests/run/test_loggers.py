"""Every logger option writes its real files: CSV, TensorBoard events, W&B offline run."""

from __future__ import annotations

from pathlib import Path

import pytest
import wandb
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cvbench.run.train import run_train


@pytest.mark.slow
def test_logger_many_offline(make_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "run"))
    metrics = run_train(make_cfg("logger=many", "debug=limit"))
    run_dir = tmp_path / "run"

    assert "val/top1_error" in (run_dir / "csv" / "metrics.csv").read_text()

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalar = events.Scalars("test/top1_error")
    assert scalar[-1].value == pytest.approx(metrics["test/top1_error"], rel=1e-6)

    # run.finish() hands the records to wandb's service process, which writes
    # the file on its own schedule; teardown waits for it to finish writing.
    wandb.teardown()
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    (run_file,) = offline[0].glob("run-*.wandb")  # what `wandb sync` uploads
    records = run_file.read_bytes()
    assert b"test/top1_error" in records and b"val/top1_error" in records

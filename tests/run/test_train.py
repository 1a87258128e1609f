"""End-to-end runs on the embedded digits: what a run directory holds, seeding, eval, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_cli
from PIL import Image

from cvbench.metrics.ilsvrc_files import score_ilsvrc_files
from cvbench.run.callbacks import NonFiniteLossError
from cvbench.run.evaluate import run_eval
from cvbench.run.outputs import RunDirectoryInUse
from cvbench.run.train import run_train

QUICK = ("trainer.max_epochs=2", "trainer.limit_train_batches=6")


def read_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_cli_train_writes_run_directory(tmp_path: Path) -> None:
    """`cvbench train` as a process: every file a run promises, in the directory it prints."""
    run_dir = tmp_path / "run"
    done = run_cli("train", *QUICK, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run directory: {run_dir}" in done.stdout.replace("\n", "")
    metrics = read_metrics(run_dir)
    for key in (
        "test/top1_error",
        "test/top5_error",
        "test/loss",
        "val/top1_error",
        "val/top5_error",
        "val/loss",
        "train/loss",
    ):
        assert key in metrics, key
    assert 0 <= metrics["test/top5_error"] <= metrics["test/top1_error"] <= 100
    assert metrics["test/num_images"] == 360
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["name"] == "digits" and config["trainer"]["max_epochs"] == 2
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["packages"]["torch"] == torch.__version__.split("+")[0] or env["packages"]["torch"]
    assert set(env["git"]) == {"commit", "dirty"} and "cpu" in env["device"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("epoch_*.ckpt"))) == 1
    assert "test/top1_error" in (run_dir / "csv" / "metrics.csv").read_text()

    # The devkit files it writes score to the same numbers with `cvbench score`.
    rescored = score_ilsvrc_files(run_dir / "test_labels.txt", run_dir / "test_predictions.txt")
    assert rescored["top1_error"] == metrics["test/top1_error"]
    assert rescored["top5_error"] == metrics["test/top5_error"]
    assert rescored["num_images"] == metrics["test/num_images"]
    per_class = (run_dir / "test_per_class.csv").read_text().splitlines()
    assert per_class[0] == "class_id,class,num_images,top1_error" and len(per_class) == 11
    for picture in ("test_confusion_matrix.png", "test_samples.png"):
        with Image.open(run_dir / picture) as image:
            assert image.format == "PNG" and min(image.size) > 200


@pytest.mark.slow
def test_default_run_is_repeatable(make_cfg) -> None:
    first = run_train(make_cfg(*QUICK, "seed=7", run="a"))
    second = run_train(make_cfg(*QUICK, "seed=7", run="b"))
    assert first == second
    assert run_train(make_cfg(*QUICK, "seed=8", run="c")) != first


@pytest.mark.slow
def test_eval_rebuilds_run_from_checkpoint(make_cfg, tmp_path: Path) -> None:
    trained = run_train(make_cfg(*QUICK, "data.batch_size=32", "trainer.max_epochs=1"))
    best = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    overrides = [f"ckpt_path={best}", "data.batch_size=7"]
    evaluated = run_eval(make_cfg(*overrides, name="eval", run="eval"), overrides)
    assert evaluated == {k: v for k, v in trained.items() if k.startswith("test/")}
    stored = yaml.safe_load((tmp_path / "eval" / "config.yaml").read_text())
    assert stored["data"]["batch_size"] == 7  # the override
    assert stored["trainer"]["max_epochs"] == 1  # from the checkpoint (conf/eval.yaml says 20)
    assert stored["paths"]["output_dir"] == str(tmp_path / "eval")


def test_eval_rejects_foreign_checkpoint(make_cfg, tmp_path: Path) -> None:
    ckpt = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, ckpt)
    overrides = [f"ckpt_path={ckpt}"]
    with pytest.raises(ValueError, match="foreign.ckpt holds no cvbench config"):
        run_eval(make_cfg(*overrides, name="eval"), overrides)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_last_good_checkpoint(make_cfg, tmp_path: Path) -> None:
    steps_per_epoch = 5
    cfg = make_cfg(
        "trainer.max_epochs=5",
        f"trainer.limit_train_batches={steps_per_epoch}",
        "task.module.loss._target_=diverging.DivergingLoss",
        f"+task.module.loss.finite_calls={2 * steps_per_epoch + 3}",
        "trainer.num_sanity_val_steps=0",
    )
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))
    try:
        with pytest.raises(NonFiniteLossError, match="training loss is nan at epoch 2"):
            run_train(cfg)
    finally:
        sys.path.pop(0)
    run_dir = tmp_path / "run"
    assert not (run_dir / "metrics.json").exists()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 1  # saved at the end of the second epoch, before the NaN
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def test_label_outside_num_classes_names_sample(make_cfg) -> None:
    with pytest.raises(
        ValueError, match=r"label [5-9] of sklearn digits, image \d+ .*outside \[0, 5\)"
    ):
        run_train(make_cfg("data.num_classes=5", "debug=fdr"))


def test_run_directory_is_never_overwritten(make_cfg, tmp_path: Path) -> None:
    run_train(make_cfg("debug=fdr"))
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    with pytest.raises(RunDirectoryInUse, match="already holds a run"):
        run_train(make_cfg("debug=fdr", "seed=3"))
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before


@pytest.mark.slow
def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    done = run_cli(
        "train",
        "data=classification/cifar10",
        f"paths.data_dir={tmp_path / 'nowhere'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and str(tmp_path / "nowhere") in line
    assert "cifar-10-batches-py" in line


@pytest.mark.slow
def test_cli_multirun_writes_one_run_per_job(tmp_path: Path) -> None:
    """`cvbench train -m seed=1,2`: one complete run directory per job, each with its own log."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        "train", "-m", "seed=1,2", "debug=limit", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for job, seed in (("0", 1), ("1", 2)):
        run_dir = sweep / job
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["seed"] == seed
        assert "test/top1_error" in read_metrics(run_dir)
        assert f"Seed set to {seed}" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_cli_corrupt_image_in_a_worker_names_the_file(tmp_path: Path) -> None:
    """A corrupt image read by a DataLoader worker process: one error line naming the file."""
    from fakes import write_imagefolder

    root = tmp_path / "images"
    write_imagefolder(root)
    bad = root / "test" / "dog" / "3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    done = run_cli(
        "train",
        "data=classification/image_folder",
        f"data.records.root={root}",
        "data.num_classes=3",
        "data.num_workers=2",
        "model=classification/small_cnn",
        "debug=fdr",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(bad) in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr

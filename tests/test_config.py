"""Contract tests from the config tree: every experiment runs end to end, every optimizer and
scheduler option builds, composition errors name what is wrong. (Every model YAML is tested by
its ``contract:`` in tests/models/test_contracts.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, options, run_cli
from data_contracts import write_fakes
from omegaconf import DictConfig

from cvbench.run.build import build_task
from cvbench.run.train import run_train

# The reproduction recipes need their real datasets: tests/bench/test_repro.py runs them on
# files written in those layouts.
EXPERIMENTS = [e for e in options("experiment") if not e.startswith("repro/")]


def test_config_tree_is_found() -> None:
    assert "classification/small_cnn" in options("model")
    assert "classification/digits_small_cnn" in EXPERIMENTS


@pytest.mark.parametrize("option", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("sched", ["cosine", "step", "none"])
def test_optim_and_sched_build(make_cfg, option: str, sched: str) -> None:
    task = build_task(make_cfg(f"optim={option}", f"sched={sched}"))
    config = task.configure_optimizers()
    assert type(config["optimizer"]).__name__.lower() == option
    assert ("lr_scheduler" in config) == (sched != "none")


def tiny_data(data: DictConfig) -> list[str]:
    """Overrides that shrink the experiment's data to a batch per split, from the keys its
    data config has."""
    overrides = ["data.batch_size=4"]
    records = data.get("records") or {}
    if "num_images" in records:  # the embedded shapes, words, scenes: every split they have
        sizes = ", ".join(f"{s}: {8 if s == 'train' else 4}" for s in records.num_images)
        overrides.append(f"data.records.num_images={{{sizes}}}")
    elif "num_images" in (records.get("instances") or {}):  # their semantic masks
        overrides.append("data.records.instances.num_images={train: 8, val: 4, test: 4}")
    if "val_size" in records:  # a validation split held out of the training files
        overrides.append("data.records.val_size=4")
    if "repeat" in data:  # crops per image and epoch
        overrides.append("data.repeat=2")
    return overrides


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(make_cfg, experiment: str) -> None:
    """Every experiment runs one train, val and test batch end to end and reports the test
    value of the metric its task monitors."""
    data = make_cfg(f"experiment={experiment}").data
    cfg = make_cfg(f"experiment={experiment}", "debug=fdr", "data.num_workers=0", *tiny_data(data))
    if not cfg.data.contract.get("embedded", False):  # its files in the real layout, tiny
        write_fakes(cfg.data.contract)
    metrics = run_train(cfg)
    primary = cfg.task.monitor.replace("val/", "test/")
    assert primary in metrics
    value = metrics[primary]
    if "fid" in primary:  # a Frechet distance: unbounded above
        assert value is None or 0.0 <= value < float("inf")
    else:
        assert value is None or 0.0 <= value <= 100.0


def test_unknown_option_lists_valid_ones(tmp_path: Path) -> None:
    done = run_cli("train", "model=classification/no_such_net", cwd=tmp_path)
    assert done.returncode != 0
    assert "no_such_net" in done.stderr
    assert "Valid:" in done.stderr and "model=classification/small_cnn" in done.stderr


def test_missing_key_names_it(make_cfg) -> None:
    with pytest.raises(Exception, match="num_classes"):
        make_cfg("data=classification/image_folder")["data"][
            "num_classes"
        ]  # ??? in image_folder.yaml


def test_repo_layout() -> None:
    for path in (
        "cvbench/conf/train.yaml",
        "cvbench/conf/eval.yaml",
        "Makefile",
        "README.md",
        ".ci/run",
    ):
        assert (REPO / path).is_file(), path

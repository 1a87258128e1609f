"""Contract tests generated from the config tree: every model, every experiment, every option."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONF, REPO, run_cli
from hydra.utils import instantiate

from cvbench.run.build import build_task
from cvbench.run.train import run_train

MODELS = sorted(
    p.relative_to(CONF / "model").with_suffix("").as_posix()
    for p in (CONF / "model").rglob("*.yaml")
)
EXPERIMENTS = sorted(
    p.relative_to(CONF / "experiment").with_suffix("").as_posix()
    for p in (CONF / "experiment").rglob("*.yaml")
)


def test_config_tree_is_found() -> None:
    assert "classification/small_cnn" in MODELS
    assert "classification/digits_small_cnn" in EXPERIMENTS


@pytest.mark.parametrize("model", MODELS)
def test_model_forward_backward(make_cfg, model: str) -> None:
    """Each model YAML builds (no weights fetched) and trains one step on a tiny batch."""
    channels = 3 if "/tv_" in model else 1
    cfg = make_cfg(f"model={model}", f"data.num_channels={channels}")
    net = instantiate(cfg.model)
    images = torch.randn(2, channels, 32, 32)
    logits = net(images)
    assert logits.shape == (2, cfg.data.num_classes)
    logits.logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("option", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("sched", ["cosine", "step", "none"])
def test_optim_and_sched_build(make_cfg, option: str, sched: str) -> None:
    task = build_task(make_cfg(f"optim={option}", f"sched={sched}"))
    config = task.configure_optimizers()
    assert type(config["optimizer"]).__name__.lower() == option
    assert ("lr_scheduler" in config) == (sched != "none")


def write_experiment_data(experiment: str, data_dir: Path) -> None:
    """Write the files an experiment's dataset reads, in the real format (tiny)."""
    from fakes import write_cifar10, write_mnist

    if "cifar10" in experiment:
        write_cifar10(data_dir)
    elif "mnist" in experiment:
        write_mnist(data_dir / "MNIST" / "raw", gz=True)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(make_cfg, tmp_path: Path, experiment: str) -> None:
    """Every experiment runs one train, val and test batch end to end."""
    write_experiment_data(experiment, tmp_path / "data")
    cfg = make_cfg(
        f"experiment={experiment}",
        "debug=fdr",
        "data.num_workers=0",
        "data.batch_size=4",
        "++data.records.val_size=4" if "digits" not in experiment else "seed=1",
    )
    metrics = run_train(cfg)
    assert {"test/top1_error", "test/loss"} <= metrics.keys()
    assert 0.0 <= metrics["test/top1_error"] <= 100.0


def test_unknown_option_lists_valid_ones(tmp_path: Path) -> None:
    done = run_cli("train", "model=classification/no_such_net", cwd=tmp_path)
    assert done.returncode != 0
    assert "no_such_net" in done.stderr
    assert "Valid:" in done.stderr and "model=classification/small_cnn" in done.stderr


def test_missing_key_names_it(make_cfg) -> None:
    with pytest.raises(Exception, match="num_classes"):
        make_cfg("data=imagefolder")["data"]["num_classes"]  # declared ??? in imagefolder.yaml


def test_repo_layout() -> None:
    for path in ("conf/train.yaml", "conf/eval.yaml", "Makefile", "README.md", ".ci/run"):
        assert (REPO / path).is_file(), path

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
# The reproduction recipes need their real datasets: tests/bench/test_repro.py runs them on
# files written in those layouts.
EXPERIMENTS = sorted(
    p.relative_to(CONF / "experiment").with_suffix("").as_posix()
    for p in (CONF / "experiment").rglob("*.yaml")
    if p.parent.name != "repro"
)


CLASSIFIERS = [m for m in MODELS if m.startswith("classification/")]
DETECTORS = [m for m in MODELS if m.startswith("detection/")]
INSTANCE_SEGMENTERS = [m for m in MODELS if m.startswith("instance/")]
# Each trains a step and predicts in tests/models/test_segmentation_models.py.
SEGMENTERS = [m for m in MODELS if m.startswith("segmentation/")]
# Each builds and runs forward (and backward) in tests/models/test_restoration_models.py.
RESTORERS = [
    m for m in MODELS if m.startswith(("super_resolution/", "colorization/", "inpainting/"))
]


def test_config_tree_is_found() -> None:
    assert "classification/small_cnn" in MODELS
    assert "classification/digits_small_cnn" in EXPERIMENTS


def test_every_model_is_tested() -> None:
    tested = CLASSIFIERS + DETECTORS + INSTANCE_SEGMENTERS + SEGMENTERS + RESTORERS
    tested += ["localization/timm_resnet18"]
    assert sorted(tested) == MODELS


@pytest.mark.parametrize("model", CLASSIFIERS)
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


@pytest.mark.slow
@pytest.mark.parametrize("model", DETECTORS)
def test_detector_trains_and_detects(make_cfg, model: str) -> None:
    """Each detector YAML builds from scratch (no weights fetched), takes a training step on
    images of two sizes (one without boxes) and returns detections in the input's pixels."""
    cfg = make_cfg("data=detection/shapes", f"model={model}")
    if "min_size" in cfg.model.detector:  # SSDlite resizes to its own fixed 320 x 320
        cfg.model.detector.min_size, cfg.model.detector.max_size = 96, 128
    net = instantiate(cfg.model)
    images = [torch.rand(3, 96, 128), torch.rand(3, 80, 80)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([4])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    net.train()
    losses = net(images, targets)
    sum(losses.values()).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    net.eval()
    with torch.no_grad():
        detections = net(images)
    assert len(detections) == 2
    for det, image in zip(detections, images, strict=True):
        assert det["boxes"].shape[1] == 4 and len(det["boxes"]) <= 100
        assert (det["boxes"][:, 2] <= image.shape[2] + 1e-3).all()
        assert (det["boxes"][:, 3] <= image.shape[1] + 1e-3).all()
        assert ((det["labels"] >= 0) & (det["labels"] <= cfg.data.num_classes)).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", INSTANCE_SEGMENTERS)
def test_instance_segmenter_trains_and_predicts_masks(make_cfg, model: str) -> None:
    """Each Mask R-CNN YAML builds from scratch, takes a training step with instance masks
    and returns per detection a mask of its image's size."""
    cfg = make_cfg("data=detection/shapes", f"model={model}")
    cfg.model.detector.min_size, cfg.model.detector.max_size = 96, 128
    net = instantiate(cfg.model)
    images = [torch.rand(3, 96, 128), torch.rand(3, 80, 80)]
    masks = torch.zeros(1, 96, 128, dtype=torch.uint8)
    masks[0, 12:70, 10:60] = 1
    targets = [
        {
            "boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]),
            "labels": torch.tensor([4]),
            "masks": masks,
        },
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.int64),
            "masks": torch.zeros(0, 80, 80, dtype=torch.uint8),
        },
    ]
    net.train()
    losses = net(images, targets)
    assert "loss_mask" in losses
    sum(losses.values()).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    net.eval()
    with torch.no_grad():
        detections = net(images)
    for det, image in zip(detections, images, strict=True):
        assert det["masks"].shape == (len(det["boxes"]), 1, *image.shape[1:])
        assert ((det["masks"] >= 0) & (det["masks"] <= 1)).all()


def test_localizer_builds(make_cfg) -> None:
    cfg = make_cfg("experiment=localization/shapes_resnet18")
    out = instantiate(cfg.model)(torch.rand(2, 3, 64, 64))
    assert out["logits"].shape == (2, cfg.data.num_classes)
    assert out["boxes"].shape == (2, 4) and ((out["boxes"] >= 0) & (out["boxes"] <= 1)).all()


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


def experiment_overrides(experiment: str) -> list[str]:
    """Tiny data for one fast_dev_run of an experiment."""
    if experiment.startswith(("detection/", "localization/", "instance/")):
        return ["data.records.num_images={train: 8, val: 4, test: 4}", "data.batch_size=4"]
    if experiment.startswith("segmentation/shapes"):
        return [
            "data.records.instances.num_images={train: 8, val: 4, test: 4}",
            "data.batch_size=4",
        ]
    if experiment.startswith(("super_resolution/", "colorization/", "inpainting/")):
        return ["data.repeat=2", "data.batch_size=4"]
    if "digits" in experiment:
        return ["data.batch_size=4"]
    return ["++data.records.val_size=4", "data.batch_size=4"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(make_cfg, tmp_path: Path, experiment: str) -> None:
    """Every experiment runs one train, val and test batch end to end and reports the test
    value of the metric its task monitors."""
    write_experiment_data(experiment, tmp_path / "data")
    cfg = make_cfg(
        f"experiment={experiment}",
        "debug=fdr",
        "data.num_workers=0",
        *experiment_overrides(experiment),
    )
    metrics = run_train(cfg)
    primary = cfg.task.monitor.replace("val/", "test/")
    assert primary in metrics
    assert metrics[primary] is None or 0.0 <= metrics[primary] <= 100.0


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

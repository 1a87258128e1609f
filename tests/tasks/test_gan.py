"""The DCGAN task through the real config and the real run_train, at tiny sizes: per-sample
seeded noise, the judge trained once and cached, the keys and protocol it reports, the
untrained baseline equal to a direct computation on the whole test set at once (batching does
not change the generated set), the sample grids, the stabilisers (label smoothing, R1,
spectral norm, two-timescale learning rates, EMA) and the class-conditional variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import wandb
from fakes_generation import JUDGE, TINY_GAN
from fakes_translation import write_image_folder
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cvbench.metrics.generative import GenerativeMetric
from cvbench.run.build import build_datamodule, build_task
from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.train import run_train
from cvbench.tasks.generation import FROZEN, sample_noise, sample_seed
from cvbench.tasks.judges import cache_file, cached_judge, data_fingerprint, sha256_prefix


def test_sample_noise_depends_on_seed_and_index_only() -> None:
    whole = sample_noise(torch.arange(6), (4, 1, 1), seed=3)
    parts = torch.cat(
        [sample_noise([0, 1, 2], (4, 1, 1), 3), sample_noise([3, 4, 5], (4, 1, 1), 3)]
    )
    assert torch.equal(whole, parts)
    assert torch.equal(sample_noise([4, 2], (4, 1, 1), 3), whole[[4, 2]])
    assert not torch.equal(sample_noise([0], (4, 1, 1), 4), whole[:1])
    assert not torch.equal(sample_noise([0], (4, 1, 1), 3, stream=1), whole[:1])
    assert len({sample_seed(0, i) for i in range(1000)}) == 1000
    with pytest.raises(ValueError, match="seed, sample index and stream"):
        sample_seed(0, -1)


def test_cached_judge_trains_once_then_reads_the_file(tmp_path: Path) -> None:
    calls = []

    def fit(net: torch.nn.Module) -> None:
        calls.append(1)
        with torch.no_grad():
            net.weight.fill_(0.5)

    path = tmp_path / "judges" / "lin.pt"
    net = cached_judge(torch.nn.Linear(2, 1), path, fit)
    again = cached_judge(torch.nn.Linear(2, 1), path, fit)
    assert calls == [1] and path.is_file()
    assert torch.equal(again.weight, torch.full((1, 2), 0.5)) and not again.weight.requires_grad
    assert not net.training
    with pytest.raises(ValueError, match="lin.pt: the cached judge's weights do not fit"):
        cached_judge(torch.nn.Linear(3, 1), path, fit)


@pytest.mark.slow
def test_dcgan_trains_reports_and_scores_the_untrained_baseline(make_cfg) -> None:
    cfg = make_cfg(*TINY_GAN)
    metrics = run_train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    for key in ("fid", "kid", "kid_std", "precision", "recall", "is_mean", "is_std"):
        assert (
            f"test/{key}@{JUDGE}" in metrics and f"test/baseline_untrained_{key}@{JUDGE}" in metrics
        )
        assert f"test/{key}" not in metrics  # not an FID: never under the plain names
    assert metrics["test/num_real"] == metrics["test/num_fake"] == 32
    assert metrics[f"test/fid@{JUDGE}"] > 0 and metrics[f"val/fid@{JUDGE}"] > 0
    datamodule = build_datamodule(cfg)
    judge_file = cache_file(cfg.task.module.judge.cache_path, datamodule.split("train"))
    assert judge_file.parent == Path(cfg.paths.data_dir) / "judges"
    assert judge_file.name == f"{JUDGE}-{data_fingerprint(datamodule.split('train'))}.pt"
    protocol = metrics["test/fid_protocol"]
    assert f"sha256 {sha256_prefix(judge_file)}" in protocol and "test accuracy" in protocol
    assert "digits test split" in protocol and "32 counted; generated: 32 samples" in protocol
    assert "generator: EMA of the weights (decay " in protocol  # TINY_GAN keeps an EMA
    assert (run_dir / "samples" / "epoch_000.png").is_file()
    with Image.open(run_dir / "samples.png") as grid:  # 4 samples of 32 px, 2 per row
        assert grid.size == (2 + 2 * 34, 2 + 2 * 34)
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    keys = list(ckpt["state_dict"])
    assert not [k for k in keys if k.startswith(FROZEN)]
    assert any(k.startswith("generator_ema.module.") for k in keys)

    # The baseline recomputed here in one batch of the 32 test images (the run: two of 16).
    task = build_task(cfg)
    task.load_state_dict(ckpt["state_dict"])
    real = torch.stack([datamodule.split("test")[i][0] for i in range(32)])
    task.judge = cached_judge(task.judge, judge_file, fit=None)
    metric = GenerativeMetric(network=JUDGE, feature_dim=8)
    with torch.no_grad():
        index = torch.arange(32)
        metric.update_real(task.judge(real)[0], index)
        fake = task.generate_from(task.untrained.eval(), index, None, seed=0)
        metric.update_fake(task.judge(fake)[0], index)
    assert metric.compute()[f"fid@{JUDGE}"] == pytest.approx(
        metrics[f"test/baseline_untrained_fid@{JUDGE}"], rel=1e-5
    )


@pytest.mark.slow
def test_stabilisers_class_conditional_dcgan_and_logged_grids(
    make_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "run"))
    adam = "{_target_: torch.optim.Adam, _partial_: true, betas: [0.5, 0.999], lr: %s}"
    cfg = make_cfg(
        *TINY_GAN,
        "model.discriminator.spectral_norm=true",
        "model.generator.num_classes=10",
        "model.discriminator.num_classes=10",
        "task.module.real_label=0.9",
        "task.module.r1_gamma=1.0",
        "task.module.ema_decay=0.5",
        "task.module.grid_size=10",
        *(f"~optim.{key}" for key in ("_target_", "_partial_", "lr", "betas", "weight_decay")),
        f"+optim.generator={adam % '0.0001'}",
        f"+optim.discriminator={adam % '0.0004'}",
        "logger=many",
    )
    metrics = run_train(cfg)
    assert torch.isfinite(torch.tensor(metrics[f"test/fid@{JUDGE}"]))
    run_dir = Path(cfg.paths.output_dir)
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    lrs = [s["param_groups"][0]["lr"] for s in ckpt["optimizer_states"]]
    assert lrs == [0.0001, 0.0004]  # generator, discriminator: two time scales
    state = ckpt["state_dict"]
    assert any("parametrizations.weight.original" in k for k in state if k.startswith("discrim"))
    generator = {k[len("generator.") :]: v for k, v in state.items() if k.startswith("generator.")}
    ema = {k[len("generator_ema.module.") :]: v for k, v in state.items() if "ema.module." in k}
    assert generator.keys() == ema.keys()
    assert any(not torch.equal(generator[k], ema[k]) for k in generator)  # averaged, not copied
    log = (run_dir / "csv" / "metrics.csv").read_text()
    assert "train/r1" in log and "train/d_real" in log
    with Image.open(run_dir / "samples.png") as grid:  # one column per class
        assert grid.size == (2 + 10 * 34, 2 + 1 * 34)

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"val/samples", "test/samples"} <= set(events.Tags()["images"])
    wandb.teardown()  # waits for wandb's service process to write the offline run
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    (records,) = offline.glob("run-*.wandb")
    assert b"val/samples" in records.read_bytes()


def test_the_judge_cache_is_named_by_the_train_split(make_cfg) -> None:
    """The digits train split, a cut-down one (a tiny test run's data) and the same split
    composed again: only the cut-down one gets another judge file."""
    full = build_datamodule(make_cfg("experiment=synthesis/dcgan_digits")).split("train")
    again = build_datamodule(make_cfg("experiment=synthesis/dcgan_digits")).split("train")
    smaller = build_datamodule(
        make_cfg("experiment=synthesis/dcgan_digits", "data.records.test_fraction=0.5")
    ).split("train")
    assert len(smaller) < len(full)
    assert data_fingerprint(full) == data_fingerprint(again)
    assert data_fingerprint(smaller) != data_fingerprint(full)
    path = "/data/judges/cnn_digits32_s0.pt"
    assert cache_file(path, full) != cache_file(path, smaller)
    assert cache_file(path, full).name.startswith("cnn_digits32_s0-")
    # a dataset of other items with the same length: another fingerprint
    swapped = [full[i] for i in reversed(range(len(full)))]
    assert data_fingerprint(swapped) != data_fingerprint(full)


def test_a_classifier_judge_on_unlabelled_images_is_refused(make_cfg) -> None:
    """An unlabelled image folder gives the digits judge no classes to learn: refused before
    training, naming the key and the ways out (the judge would otherwise score noise)."""
    cfg = make_cfg(*TINY_GAN, "data=synthesis/image_folder", "data.image_size=32")
    for split in ("train", "val", "test"):
        write_image_folder(Path(cfg.paths.data_dir) / "images", 4, split=split, size=(32, 32))
    cfg = make_cfg(
        *TINY_GAN,
        "data=synthesis/image_folder",
        "data.image_size=32",
        f"data.records.root={Path(cfg.paths.data_dir) / 'images'}",
    )
    with pytest.raises(ValueError, match=r"^task.module.judge: cnn_digits32_s0 .* has none;"):
        run_train(cfg)
    assert not list((Path(cfg.paths.data_dir) / "judges").glob("*.pt"))


def test_cached_judge_file_depends_on_the_weights_only(tmp_path: Path) -> None:
    def fit(net: torch.nn.Module) -> None:
        with torch.no_grad():
            net.weight.fill_(0.25)
            net.bias.fill_(-1.0)

    cached_judge(torch.nn.Linear(2, 1), tmp_path / "a" / "judge.pt", fit)
    cached_judge(torch.nn.Linear(2, 1), tmp_path / "b" / "judge.pt", fit)
    assert sha256_prefix(tmp_path / "a" / "judge.pt") == sha256_prefix(tmp_path / "b" / "judge.pt")

"""The style-transfer task through the real config and the real run_train, at tiny sizes: the
judged keys carry the network's name, the content baseline is the metric of the content image
itself (content loss 0, SSIM 1), an untrained network scores as its untrained baseline, Gatys's
image optimised with L-BFGS lowers its objective, and the report writes one CSV row per grid
cell and the sample grid."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from cvbench.run.build import build_datamodule, build_task
from cvbench.run.train import run_train
from cvbench.tasks.style_transfer import FROZEN, total_variation

NET = "vgg_rand_s0"
TINY = (
    "data.crop_size=32",
    "data.style_size=32",
    "data.eval_size=32",
    "data.repeat=1",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
)


def test_total_variation_closed_form() -> None:
    image = torch.tensor([[[[0.0, 2.0], [1.0, 2.0]]]])  # down: 1, 0; across: 2, 1
    assert total_variation(image).tolist() == [(1 + 0) / 2 + (4 + 1) / 2]


@pytest.mark.slow
def test_johnson_trains_reports_and_scores_the_content_baseline(make_cfg) -> None:
    cfg = make_cfg(
        "experiment=style_transfer/johnson_photos",
        *TINY,
        "model.width=0.25",
        "model.num_residual=1",
    )
    metrics = run_train(cfg)
    for stage in ("val", "test"):
        for key in ("content_loss", "style_loss", "style_loss_mean_std"):
            assert metrics[f"{stage}/{key}@{NET}"] > 0
        assert -1 <= metrics[f"{stage}/ssim_content"] < 1
        assert metrics[f"{stage}/loss"] > 0
        assert metrics[f"{stage}/loss_network"].startswith(f"{NET}: vgg19 features")
        # The content image scored as the output: no content loss, SSIM 1, its own style loss.
        assert metrics[f"{stage}/baseline_content_content_loss@{NET}"] == 0.0
        assert metrics[f"{stage}/baseline_content_ssim_content"] == 1.0
        assert metrics[f"{stage}/baseline_content_style_loss@{NET}"] > 0
        assert metrics[f"{stage}/baseline_untrained_content_loss@{NET}"] > 0
    assert "layers relu1_2, relu2_2, relu3_3, relu4_3" in metrics["train/loss_network"]
    assert metrics["test/num_images"] == 2  # chelsea, flower x brick
    run_dir = Path(cfg.paths.output_dir)
    with open(run_dir / "test_per_image.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["content"], r["style"]) for r in rows] == [
        ("chelsea.png", "brick.png"),
        ("flower.png", "brick.png"),
    ]
    mean = sum(float(r[f"style_loss@{NET}"]) for r in rows) / len(rows)
    assert mean == pytest.approx(metrics[f"test/style_loss@{NET}"], rel=1e-4)
    assert {float(r[f"baseline_content_content_loss@{NET}"]) for r in rows} == {0.0}
    with Image.open(run_dir / "test_samples.png") as grid:  # 2 rows of 4 panels
        assert grid.width > grid.height > 0


@pytest.mark.slow
def test_an_untrained_adain_scores_as_its_untrained_baseline(make_cfg) -> None:
    """Without training the network is its copy as built: the metric and the untrained
    baseline agree, the held-out style (colorwheel) is scored apart."""
    cfg = make_cfg("experiment=style_transfer/adain_photos", *TINY, "train=false")
    metrics = run_train(cfg)
    for key in ("content_loss", "style_loss", "style_loss_mean_std", "style_loss_held_out"):
        name = f"{key}@{NET}"
        assert metrics[f"test/{name}"] == pytest.approx(metrics[f"test/baseline_untrained_{name}"])
    assert metrics["test/num_images"] == 4 and metrics["test/num_images_held_out"] == 2
    assert metrics[f"test/style_loss_held_out@{NET}"] != metrics[f"test/style_loss@{NET}"]


def test_forward_uses_the_content_as_style_and_checkpoints_skip_the_loss_networks(
    make_cfg,
) -> None:
    cfg = make_cfg("experiment=style_transfer/adain_photos", *TINY, "model.decoder_width=0.25")
    task = build_task(cfg).eval()
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(task(content), task.net(content, content))
    state = task.state_dict()
    assert not [key for key in state if key.startswith(FROZEN)]
    assert any(key.startswith("net.decoder.") for key in state)
    assert any(key.startswith("untrained_net.") for key in state)
    task.load_state_dict(state)  # the loss networks come from the config
    with pytest.raises(RuntimeError, match="missing"):
        task.load_state_dict({k: v for k, v in state.items() if not k.startswith("net.")})


@pytest.mark.slow
def test_gatys_with_lbfgs_lowers_its_objective(make_cfg) -> None:
    cfg = make_cfg("experiment=style_transfer/gatys_photo", *TINY, "trainer.max_epochs=3")
    task = build_task(cfg)
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():  # the image starts as the content: its objective before training
        start = task.objective(batch.content, batch.content, batch.style)["loss"].item()
    metrics = run_train(cfg)
    assert type(task.configure_optimizers()["optimizer"]).__name__ == "LBFGS"
    assert metrics["test/loss"] < 0.5 * start
    assert metrics[f"test/content_loss@{NET}"] > 0  # it left the content image

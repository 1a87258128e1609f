"""Resume: a run killed after an epoch and resumed from its ``last.ckpt`` ends where the
uninterrupted run ends, bit for bit; a NaN loss names the checkpoint to go back to."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import HELPERS, run_cli

from cvbench.data.datamodule import set_transform_state, transform_state
from cvbench.run.errors import NonFiniteLossError
from cvbench.run.train import run_train

# The default experiment (digits, small_cnn, random Affine augmentation in the main process),
# 3 short epochs. With seed 5 the best validation epoch is epoch 1, before the kill: the
# resumed run must know it to report val/top1_error_best and to test that checkpoint.
RUN = (
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "seed=5",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
)
KILL = ("+callbacks.kill._target_=kill_at_epoch.KillAtEpochStart", "+callbacks.kill.epoch=2")


def train(tmp_path: Path, name: str, *overrides: str):
    return run_cli(
        "train",
        *RUN,
        *overrides,
        f"paths.results_db={tmp_path / 'cvbench.db'}",
        f"hydra.run.dir={tmp_path / name}",
        cwd=tmp_path,
    )


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_resumed_run_ends_where_the_uninterrupted_run_ends(tmp_path: Path) -> None:
    done = train(tmp_path, "full")
    assert done.returncode == 0, done.stderr[-3000:]
    full = tmp_path / "full"
    # The precondition that makes best-checkpoint tracking matter: the best epoch is epoch 1.
    assert [p.name for p in (full / "checkpoints").glob("epoch_*.ckpt")] == ["epoch_001.ckpt"]

    killed = train(tmp_path, "killed", *KILL)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert checkpoint(last)["epoch"] == 1  # killed as epoch 2 started
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = train(tmp_path, "resumed", f"ckpt_path={last}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = json.loads((full / "metrics.json").read_text())
    got = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert got == expected  # every key: train/, val/, val/top1_error_best, test/
    assert {"val/top1_error_best", "test/top1_error", "test/loss"} <= set(got)

    # Bit for bit: the final weights (last.ckpt is the last epoch's, even when not the best).
    final, final_resumed = (
        checkpoint(d / "checkpoints" / "last.ckpt") for d in (full, tmp_path / "resumed")
    )
    assert final["epoch"] == final_resumed["epoch"] == 2
    assert final["state_dict"].keys() == final_resumed["state_dict"].keys()
    for key, value in final["state_dict"].items():
        assert torch.equal(value, final_resumed["state_dict"][key]), key
    # The best checkpoint stays the killed run's, which the resumed run tested; nothing of
    # the killed run was deleted.
    assert not list((tmp_path / "resumed" / "checkpoints").glob("epoch_*.ckpt"))
    assert (tmp_path / "killed" / "checkpoints" / "epoch_001.ckpt").is_file()


def augment(pipeline: A.Compose, times: int) -> list[np.ndarray]:
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    return [pipeline(image=image)["image"] for _ in range(times)]


def test_augmentation_streams_continue_from_a_saved_state(tmp_path: Path) -> None:
    """A pipeline's own random streams (the pipeline's, each transform's, nested ones') are
    saved as plain values and continue from there in another pipeline of the same config."""

    def pipeline() -> A.Compose:
        return A.Compose(
            [
                A.OneOf([A.HorizontalFlip(), A.VerticalFlip()], p=0.7),
                A.Affine(rotate=(-30, 30), p=0.5),
                A.RandomBrightnessContrast(p=0.5),
            ]
        )

    first, second = pipeline(), pipeline()
    first.set_random_seed(1)
    second.set_random_seed(2)
    augment(first, 5)
    state = transform_state(first)
    torch.save(state, tmp_path / "state.pt")  # plain values: weights_only loading takes them
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    expected = augment(first, 8)
    assert set_transform_state(second, state)
    assert all(np.array_equal(a, b) for a, b in zip(augment(second, 8), expected, strict=True))
    # Another pipeline config: refused, nothing changed.
    other = A.Compose([A.HorizontalFlip()])
    other.set_random_seed(3)
    assert not set_transform_state(other, state)


def diverging_run(make_cfg, nan_at_call: int, steps_per_epoch: int = 5) -> NonFiniteLossError:
    """Train with a loss that turns NaN at training call ``nan_at_call``; the error raised."""
    cfg = make_cfg(
        "trainer.max_epochs=5",
        f"trainer.limit_train_batches={steps_per_epoch}",
        "trainer.limit_val_batches=2",
        "task.module.loss._target_=diverging.DivergingLoss",
        f"+task.module.loss.finite_calls={nan_at_call - 1}",
        "trainer.num_sanity_val_steps=0",
    )
    sys.path.insert(0, str(HELPERS))
    try:
        with pytest.raises(NonFiniteLossError) as caught:
            run_train(cfg)
    finally:
        sys.path.remove(str(HELPERS))
    return caught.value


def test_nan_loss_before_any_checkpoint_says_none_was_saved(make_cfg, tmp_path: Path) -> None:
    error = diverging_run(make_cfg, nan_at_call=3)
    message = str(error)
    assert "training loss is nan at epoch 0" in message
    assert "No checkpoint was saved before it" in message
    assert "last.ckpt" not in message
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_nan_loss_names_the_last_good_checkpoint(make_cfg, tmp_path: Path) -> None:
    error = diverging_run(make_cfg, nan_at_call=2 * 5 + 3)  # in epoch 2
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert f"The last good checkpoint is {last}." in str(error)
    assert checkpoint(last)["epoch"] == 1

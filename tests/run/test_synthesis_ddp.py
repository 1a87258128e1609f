"""A generator evaluated by one process and by two (DDP on CPU, gloo, the real CLI) gives the
same FID: every real test image and every generated sample counted once, each sample's noise
seeded by its index whatever process draws it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import eval_single_and_ddp
from fakes_generation import JUDGE, TINY_GAN

from cvbench.run.train import run_train

# 0.1995 of the 1,797 digits: a 359-image test split. Odd, so DistributedSampler pads one
# rank's shard with a repeated image; the metric must count it (and its sample) once.
ODD_TEST = "data.records.test_fraction=0.1995"


@pytest.mark.slow
def test_ddp_cpu_fid_equals_single_process(make_cfg, tmp_path: Path) -> None:
    run_train(make_cfg(*TINY_GAN, ODD_TEST))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    results = eval_single_and_ddp(ckpt, tmp_path, ODD_TEST, "trainer.limit_test_batches=1.0")
    single, ddp = results["single"], results["ddp"]
    for key in ("num_real", "num_fake", "baseline_untrained_num_fake"):
        assert single[f"test/{key}"] == ddp[f"test/{key}"] == 359
    for key in (f"fid@{JUDGE}", f"baseline_untrained_fid@{JUDGE}", f"precision@{JUDGE}"):
        assert ddp[f"test/{key}"] == pytest.approx(single[f"test/{key}"], rel=1e-9, abs=1e-12)
    assert single["test/fid_protocol"] == ddp["test/fid_protocol"]

"""``cvbench sample`` writes the images of a real DCGAN checkpoint (a tiny ``cvbench train``
run): PNG files 000000.png ..., pixels equal to the task's own ``generate`` rounded to uint8,
image j the same whatever num (blocks of 256 included), a class per image for a conditional
generator; a translation task's folder translated keeping names; and one ``error:`` line for
every wrong use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, run_in_process, the_error_line
from fakes_generation import TINY_GAN
from PIL import Image
from torch import Tensor, nn

from cvbench.run.sample import load_task, sample_names, translate_folder
from cvbench.run.train import run_train


def trained(root: Path, *overrides: str) -> Path:
    run_train(compose_config("train", (*TINY_GAN, *overrides), root / "run", root / "data"))
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def gan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained(tmp_path_factory.mktemp("gan"), "trainer.limit_val_batches=0")


def sample(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``cvbench sample <args>`` in-process: exit status, stdout, stderr."""
    return run_in_process(capsys, monkeypatch, "sample", *args)


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def test_sample_names() -> None:
    assert sample_names(3) == ["000000.png", "000001.png", "000002.png"]


@pytest.mark.slow
def test_sample_writes_the_generators_images(gan: Path, tmp_path: Path, capsys, monkeypatch):
    code, out, err = sample(
        capsys, monkeypatch, f"ckpt_path={gan}", "num=5", f"output={tmp_path}/a"
    )
    assert code == 0, err[-3000:]
    assert "5 images written to" in out
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sample_names(5)
    task = load_task(gan, output_dir=tmp_path)
    expected = (task.generate(5, 0) * 255 + 0.5).floor().to(torch.uint8).permute(0, 2, 3, 1)
    for j, name in enumerate(sample_names(5)):
        image = read(tmp_path / "a" / name)
        assert image.shape == (32, 32, 3)
        assert np.abs(image.astype(int) - expected[j].numpy().astype(int)).max() <= 1

    # Image j depends on (seed, j) alone: the first 5 of 260 (two blocks) are the same files.
    code, _, err = sample(
        capsys, monkeypatch, f"ckpt_path={gan}", "num=260", f"output={tmp_path}/b"
    )
    assert code == 0, err[-3000:]
    for name in sample_names(5):
        assert np.array_equal(read(tmp_path / "a" / name), read(tmp_path / "b" / name))
    assert len(list((tmp_path / "b").iterdir())) == 260
    block = task.generate(2, 0, first=256)
    assert torch.allclose(block, task.generate(258, 0)[256:], atol=1e-6)
    code, _, err = sample(
        capsys, monkeypatch, f"ckpt_path={gan}", "num=5", "seed=1", f"output={tmp_path}/c"
    )
    assert code == 0, err[-3000:]
    assert not np.array_equal(
        read(tmp_path / "a" / "000000.png"), read(tmp_path / "c" / "000000.png")
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("num=2", "label=3"), "label=3: this generator is not class-conditional"),
        (("num=2", "sampler=ddim"), "a GAN takes no sampling options"),
        (("input={inputs}",), "this checkpoint generates images and translates none"),
        (("num=2", "output={existing}"), "2 of the 2 images exist already"),
    ],
)
def test_sample_refuses_wrong_uses(gan, tmp_path, capsys, monkeypatch, args, message) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "existing").mkdir()
    for name in sample_names(2):
        (tmp_path / "existing" / name).write_bytes(b"")
    args = tuple(a.format(inputs=tmp_path / "inputs", existing=tmp_path / "existing") for a in args)
    output = () if any(a.startswith("output=") for a in args) else (f"output={tmp_path}/o",)
    code, _, err = sample(capsys, monkeypatch, f"ckpt_path={gan}", *output, *args)
    assert message in the_error_line(code, err)


def test_sample_refuses_a_missing_checkpoint(tmp_path: Path, capsys, monkeypatch) -> None:
    missing = tmp_path / "none.ckpt"
    code, _, err = sample(capsys, monkeypatch, f"ckpt_path={missing}", f"output={tmp_path}")
    assert str(missing) in the_error_line(code, err)


class Inverter(nn.Module):
    """A translation task's interface: ``translate(images) -> images``, ``device``."""

    device = torch.device("cpu")

    def translate(self, images: Tensor) -> Tensor:
        if images.shape[-1] < 8:
            raise ValueError("images must be at least 8 px wide")
        return 1 - images


def test_translate_folder_keeps_names_and_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = ["a.png", "sub/b.png"]
    for name, size in zip(names, [(12, 10), (9, 16)], strict=True):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
            tmp_path / "in" / name
        )
    translate_folder(Inverter(), input_path=tmp_path / "in", output=tmp_path / "out")
    for name in names:
        assert np.array_equal(read(tmp_path / "out" / name), 255 - read(tmp_path / "in" / name))
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(tmp_path / "in" / "narrow.png")
    with pytest.raises(ValueError, match="narrow.png: the network cannot translate it"):
        translate_folder(Inverter(), input_path=tmp_path / "in", output=tmp_path / "o2")

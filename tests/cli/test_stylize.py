"""``cvbench stylize`` applies the network of a real style-transfer checkpoint (tiny Johnson and
AdaIN runs of ``cvbench train``) to images and folders: names and sizes kept, pixels equal to
what the network computes when loaded here by hand, AdaIN's alpha honoured, and one ``error:``
line for every wrong use (a missing or gray style, a style given to Johnson, a missing input,
another task's checkpoint, a harmful stored ``_target_``, results that exist already, a Gatys
run, whose "model" is one image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, run_cli, run_in_process, the_error_line
from omegaconf import OmegaConf
from PIL import Image

from cvbench.run.build import build_networks
from cvbench.run.stylize import plan_jobs
from cvbench.run.train import run_train

TINY_TRAIN = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data.batch_size=2",
    "data.repeat=1",
    "data.crop_size=32",
    "data.style_size=32",
    "data.eval_size=32",
    "logger=csv",
)
STYLE_SIZE = 32  # data.style_size of the tiny runs: a style image of this short side is not resized


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 smooth colour noise: a real-looking input, not flat."""
    small = np.random.default_rng(seed).integers(
        0, 256, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8
    )
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the module's runs: the embedded photos and textures written once."""
    return tmp_path_factory.mktemp("data")


def trained(root: Path, data_dir: Path, *overrides: str) -> Path:
    """The checkpoint of a tiny real ``cvbench train`` run into ``root/run``."""
    run_train(compose_config("train", overrides, root / "run", data_dir))
    return sorted((root / "run" / "checkpoints").glob("*.ckpt"))[0]


@pytest.fixture(scope="module")
def johnson(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return trained(
        tmp_path_factory.mktemp("johnson"),
        data_dir,
        "experiment=style_transfer/johnson_photos",
        *TINY_TRAIN,
        "model.width=0.125",
        "model.num_residual=1",
    )


@pytest.fixture(scope="module")
def adain(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return trained(
        tmp_path_factory.mktemp("adain"),
        data_dir,
        "experiment=style_transfer/adain_photos",
        *TINY_TRAIN,
        "model.decoder_width=0.125",
    )


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A checkpoint of another task: the default digits classification, trained tiny."""
    return trained(tmp_path_factory.mktemp("digits"), data_dir, *TINY_TRAIN[:4])


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, np.ndarray]:
    """A folder with nested images (sides multiples of 8 or not, PNG and JPEG), by relative
    name; written to ``tmp_path/in``."""
    images = {
        "a.png": noise_image(40, 48, seed=1),
        "sub/b.png": noise_image(33, 50, seed=2),
        "sub/deeper/c.jpg": noise_image(24, 21, seed=3),
    }
    for name, image in images.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return images


@pytest.fixture
def style(tmp_path: Path) -> Path:
    """A style far from the photos' statistics (saturated stripes), so that AdaIN's features,
    and even a barely trained decoder's output, differ between alpha 0 and 1; its short side
    is the runs' data.style_size, so stylize does not resize it."""
    stripes = np.zeros((STYLE_SIZE, 40, 3), np.uint8)
    stripes[:, ::4] = (255, 40, 0)
    stripes[:, 1::4] = (255, 220, 0)
    stripes[::5, :] = (0, 0, 120)
    path = tmp_path / "style.png"
    Image.fromarray(stripes).save(path)
    return path


def stylize(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """``cvbench stylize <args>`` in-process: exit status, stdout, stderr."""
    return run_in_process(capsys, monkeypatch, "stylize", *args)


def direct(
    ckpt: Path, image: np.ndarray, style: np.ndarray | None = None, alpha: float = 1.0
) -> np.ndarray:
    """The network of ``ckpt`` applied by hand: built from the checkpoint's resolved config,
    its ``net.*`` weights loaded, output clamped and rounded to uint8."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    net = build_networks(OmegaConf.create(checkpoint["cvbench"]["resolved_config"]))["net"]
    weights = {k[4:]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(weights, strict=True)
    net.eval()

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255

    with torch.no_grad():
        if style is None:
            out = net(tensor(image))
        else:
            out = net(tensor(image), tensor(style), alpha=alpha)
    return (out[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# ------------------------------------------------------------------------- without a network


def test_a_missing_input_is_one_line(capsys, monkeypatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={tmp_path / 'x.ckpt'}", f"input={missing}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    assert the_error_line(code, err) == f"error: input={missing}: no such image file or folder"
    assert not (tmp_path / "out").exists()


def test_a_missing_checkpoint_is_one_line(capsys, monkeypatch, tmp_path: Path, photos) -> None:
    ckpt = tmp_path / "x.ckpt"
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    assert the_error_line(code, err) == f"error: ckpt_path={ckpt}: no such checkpoint file"


def test_existing_results_are_refused_before_anything_runs(
    capsys, monkeypatch, tmp_path: Path, photos
) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.png").write_bytes(b"mine")
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={tmp_path / 'x.ckpt'}", f"input={tmp_path / 'in'}",
        f"output={out}",
    )  # fmt: skip
    line = the_error_line(code, err)
    assert f"1 of the 3 results exist already (first: {out / 'sub' / 'b.png'})" in line
    assert "overwrite=true" in line
    assert (out / "sub" / "b.png").read_bytes() == b"mine"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["b.png"]


def test_an_empty_folder_is_one_line(capsys, monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no image")
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={tmp_path / 'x.ckpt'}", f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    assert f"input={tmp_path / 'in'}: no image files" in the_error_line(code, err)


def test_results_inside_the_input_folder_are_not_read_again(tmp_path: Path, photos) -> None:
    out = tmp_path / "in" / "styled"
    out.mkdir()
    Image.fromarray(noise_image(8, 8)).save(out / "a.png")  # an earlier run's result
    jobs = plan_jobs(tmp_path / "in", out, overwrite=True)
    names = [job.source.relative_to(tmp_path / "in").as_posix() for job in jobs]
    assert names == sorted(photos)
    assert [job.destination for job in jobs] == [out / name for name in names]


# ------------------------------------------------------------------ Johnson: one style, no input


@pytest.mark.slow
def test_johnson_stylizes_a_folder_keeping_names_and_sizes(
    johnson: Path, photos, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "stylize", f"ckpt_path={johnson}", f"input={tmp_path / 'in'}", f"output={out}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"3 images written to {out}"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(photos)
    for name, image in photos.items():
        result = read(out / name)
        assert result.shape == image.shape, name
        with Image.open(out / name) as saved:
            assert saved.format == ("JPEG" if name.endswith(".jpg") else "PNG")
        if name.endswith(".png"):  # lossless: exactly the network's output
            np.testing.assert_array_equal(result, direct(johnson, image), err_msg=name)


@pytest.mark.slow
def test_johnson_stylizes_one_image_and_resizes(
    capsys, monkeypatch, johnson: Path, photos, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    source = tmp_path / "in" / "sub" / "b.png"
    code, stdout, err = stylize(
        capsys, monkeypatch, f"ckpt_path={johnson}", f"input={source}", f"output={out}",
        "size=20",
    )  # fmt: skip
    assert code == 0, err
    assert stdout.strip() == f"1 image written to {out}"
    assert [p.name for p in out.iterdir()] == ["b.png"]
    assert read(out / "b.png").shape == (20, 30, 3)  # 33x50, short side to 20


@pytest.mark.slow
def test_johnson_refuses_a_style_and_alpha(
    capsys, monkeypatch, johnson: Path, photos, style: Path, tmp_path: Path
) -> None:
    common = (f"ckpt_path={johnson}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}")
    code, _, err = stylize(capsys, monkeypatch, *common, f"style={style}")
    line = the_error_line(code, err)
    assert line.startswith(f"error: style={style}: ckpt_path={johnson}: its network, JohnsonNet")
    assert "leave style= out" in line
    code, _, err = stylize(capsys, monkeypatch, *common, "alpha=0.5")
    assert "alpha=0.5: only networks that take a style image" in the_error_line(code, err)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_overwrite_replaces_existing_results(
    capsys, monkeypatch, johnson: Path, photos, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"mine")
    common = (f"ckpt_path={johnson}", f"input={tmp_path / 'in' / 'a.png'}", f"output={out}")
    code, _, err = stylize(capsys, monkeypatch, *common)
    assert "exist already" in the_error_line(code, err)
    assert (out / "a.png").read_bytes() == b"mine"
    code, _, err = stylize(capsys, monkeypatch, *common, "overwrite=true")
    assert code == 0, err
    np.testing.assert_array_equal(read(out / "a.png"), direct(johnson, photos["a.png"]))


# --------------------------------------------------------------------- AdaIN: any style, alpha


@pytest.mark.slow
def test_adain_follows_the_style_and_alpha(
    capsys, monkeypatch, adain: Path, photos, style: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "a.png"
    style_image = read(style)
    results = {}
    for alpha in (0.0, 1.0):
        out = tmp_path / f"alpha{alpha:g}"
        code, _, err = stylize(
            capsys, monkeypatch, f"ckpt_path={adain}", f"input={source}", f"style={style}",
            f"output={out}", f"alpha={alpha:g}",
        )  # fmt: skip
        assert code == 0, err
        results[alpha] = read(out / "a.png")
        expected = direct(adain, photos["a.png"], style_image, alpha)
        np.testing.assert_array_equal(results[alpha], expected)
    changed = (results[0.0] != results[1.0]).mean()
    assert changed > 0.05, changed  # the share of pixel values alpha changes


@pytest.mark.slow
def test_adain_refuses_a_missing_or_gray_style_and_a_wrong_alpha(
    capsys, monkeypatch, adain: Path, photos, style: Path, tmp_path: Path
) -> None:
    common = (f"ckpt_path={adain}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}")
    code, _, err = stylize(capsys, monkeypatch, *common)
    line = the_error_line(code, err)
    assert line == (
        f"error: ckpt_path={adain}: its network, AdaINNet, transfers the style of any image: "
        "give style=IMAGE"
    )
    gray = tmp_path / "gray.png"
    Image.fromarray(noise_image(32, 32)[..., 0]).save(gray)
    code, _, err = stylize(capsys, monkeypatch, *common, f"style={gray}")
    line = the_error_line(code, err)
    assert str(gray) in line and "gray" in line
    missing = tmp_path / "no_style.png"
    code, _, err = stylize(capsys, monkeypatch, *common, f"style={missing}")
    assert the_error_line(code, err) == f"error: style={missing}: no such image file"
    code, _, err = stylize(capsys, monkeypatch, *common, f"style={style}", "alpha=1.5")
    assert "alpha=1.5: expected a number in [0, 1]" in the_error_line(code, err)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- checkpoints refused


@pytest.mark.slow
def test_another_tasks_checkpoint_is_refused(
    capsys, monkeypatch, digits: Path, photos, tmp_path: Path
) -> None:
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={digits}", f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    assert the_error_line(code, err) == (
        f"error: ckpt_path={digits} holds a classification run (task.name=classification); "
        "cvbench stylize applies style_transfer checkpoints"
    )


@pytest.mark.slow
def test_a_harmful_stored_target_is_refused_before_anything_is_built(
    capsys, monkeypatch, johnson: Path, photos, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    checkpoint = torch.load(johnson, map_location="cpu", weights_only=True)
    checkpoint["cvbench"]["config"]["model"] = {
        "_target_": "pathlib.Path.touch",
        "_args_": [str(marker)],
    }
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={evil}", f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    line = the_error_line(code, err)
    assert f"ckpt_path={evil}: its stored config has model._target_=pathlib.Path.touch" in line
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_gatys_run_has_no_network_to_apply(
    capsys, monkeypatch, tmp_path: Path, data_dir: Path, photos
) -> None:
    ckpt = trained(
        tmp_path / "gatys",
        data_dir,
        "experiment=style_transfer/gatys_photo",
        *TINY_TRAIN[:4],
        "data.eval_size=32",
        "data.style_size=32",
        "optim.max_iter=2",
    )
    code, _, err = stylize(
        capsys, monkeypatch, f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
    )  # fmt: skip
    line = the_error_line(code, err)
    assert line.startswith(f"error: ckpt_path={ckpt} holds a GatysImage: Gatys et al.")
    assert line.endswith(f"its result image is in the run directory {tmp_path / 'gatys' / 'run'}")

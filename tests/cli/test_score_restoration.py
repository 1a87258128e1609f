"""``cvbench score task=restoration``: folders of real image files written here with PIL (and a
16-bit RGB PNG with OpenCV), scored against scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` and against BasicSR's Y-channel convention, and one-line errors naming
the file for every way the folders can disagree."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cvbench.cli.score import EXIT_BAD_INPUT, main

SKIMAGE_SSIM = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
}
# name -> (H, W, PIL mode of the output file); the ground truth is always RGB
IMAGES = {"a.png": (24, 30, "RGB"), "b.bmp": (31, 17, "RGB"), "c.png": (20, 40, "RGBA")}


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """Y of BT.601 as MATLAB ``rgb2ycbcr`` (not rounded), (H, W) float64 from uint8 RGB."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def reference(gt: np.ndarray, out: np.ndarray, *, color: str, crop: int) -> tuple[float, float]:
    """scikit-image PSNR and SSIM of two (H, W, 3) uint8 images, after the crop."""
    if crop:
        gt, out = gt[crop:-crop, crop:-crop], out[crop:-crop, crop:-crop]
    if color == "y":
        gt, out = y_channel(gt), y_channel(out)
        return (
            peak_signal_noise_ratio(gt, out, data_range=255),
            structural_similarity(gt, out, **SKIMAGE_SSIM),
        )
    gt, out = gt.astype(np.float64), out.astype(np.float64)
    return (
        peak_signal_noise_ratio(gt, out, data_range=255),
        structural_similarity(gt, out, channel_axis=2, **SKIMAGE_SSIM),
    )


def image_folders(tmp_path: Path, seed: int = 0) -> tuple[Path, Path, dict]:
    """gt/ and pred/ with the ``IMAGES`` (the output of c.png with an alpha channel, which is
    dropped); returns the RGB arrays as the scorer should read them."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
    for name, (h, w, mode) in IMAGES.items():
        target = rng.integers(0, 256, (h // 3 + 1, w // 3 + 1, 3)).repeat(3, 0).repeat(3, 1)
        target = target[:h, :w].astype(np.uint8)
        noise = rng.normal(0, 12, (h, w, 3))
        output = np.clip(target + noise, 0, 255).round().astype(np.uint8)
        Image.fromarray(target).save(tmp_path / "gt" / name)
        if mode == "RGBA":
            alpha = rng.integers(0, 256, (h, w, 1), dtype=np.uint8)
            Image.fromarray(np.concatenate([output, alpha], axis=2)).save(tmp_path / "pred" / name)
        else:
            Image.fromarray(output).save(tmp_path / "pred" / name)
        arrays[name] = (target, output)
    return tmp_path / "gt", tmp_path / "pred", arrays


def assert_result(result: dict, arrays: dict, *, color: str, crop: int) -> None:
    expected = {name: reference(*pair, color=color, crop=crop) for name, pair in arrays.items()}
    assert [row["name"] for row in result["per_image"]] == sorted(arrays)
    for row in result["per_image"]:
        assert row["psnr"] == pytest.approx(expected[row["name"]][0], abs=1e-9), row["name"]
        assert row["ssim"] == pytest.approx(expected[row["name"]][1], abs=1e-9), row["name"]
    assert result["psnr"] == pytest.approx(np.mean([e[0] for e in expected.values()]), abs=1e-9)
    assert result["ssim"] == pytest.approx(np.mean([e[1] for e in expected.values()]), abs=1e-9)
    assert result["num_images"] == len(arrays)
    assert result["color"] == color and result["crop_border"] == crop


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main(argv)`` in-process: exit status, stdout, stderr."""
    try:
        main(["task=restoration", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_the_real_command_equals_scikit_image(tmp_path: Path) -> None:
    gt, pred, arrays = image_folders(tmp_path)
    (gt / "notes.txt").write_text("not an image")  # only image files count
    (gt / "sub").mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(gt / "sub" / "e.png")  # not read
    out = tmp_path / "out" / "score.json"
    proc = run_cli(
        *("score", "task=restoration", f"gt={gt}", f"pred={pred}"),
        *("crop_border=2", f"out={out}"),
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert_result(result, arrays, color="y", crop=2)  # color=y is the default
    assert out.read_text() == proc.stdout


@pytest.mark.parametrize(("color", "crop"), [("rgb", 0), ("rgb", 3), ("y", 0)])
def test_options(tmp_path: Path, capsys, color: str, crop: int) -> None:
    gt, pred, arrays = image_folders(tmp_path, seed=1)
    args = [f"gt={gt}", f"pred={pred}", f"color={color}"]
    code, stdout, stderr = run_main(capsys, *args, f"crop_border={crop}")
    assert code == 0, stderr
    assert_result(json.loads(stdout), arrays, color=color, crop=crop)


def test_gray_palette_and_jpeg_files(tmp_path: Path, capsys) -> None:
    """A gray output is repeated to 3 channels; a palette image is read as its colours; a JPEG
    is scored as PIL decodes it."""
    rng = np.random.default_rng(2)
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    gray = rng.integers(0, 256, (20, 26), dtype=np.uint8)
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(gt / "g.png")
    Image.fromarray(np.clip(gray.astype(int) + 5, 0, 255).astype(np.uint8)).save(pred / "g.png")
    colours = rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)
    palette = Image.fromarray(colours).quantize(16)
    palette.save(gt / "p.png")
    Image.fromarray(colours).save(pred / "p.png")
    photo = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(photo).save(gt / "j.jpg", quality=90)
    Image.fromarray(photo).save(pred / "j.jpg", quality=40)
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", "color=rgb")
    assert code == 0, stderr
    gray_output = np.asarray(Image.open(pred / "g.png"))
    assert gray_output.ndim == 2  # stored as a 1-channel PNG
    arrays = {
        "g.png": (np.repeat(gray[..., None], 3, axis=2), np.repeat(gray_output[..., None], 3, 2)),
        "j.jpg": (np.asarray(Image.open(gt / "j.jpg")), np.asarray(Image.open(pred / "j.jpg"))),
        "p.png": (np.asarray(palette.convert("RGB")), colours),
    }
    assert_result(json.loads(stdout), arrays, color="rgb", crop=0)


def test_identical_folders_score_infinity(tmp_path: Path, capsys) -> None:
    gt, _, arrays = image_folders(tmp_path, seed=3)
    out = tmp_path / "score.json"
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={gt}", f"out={out}")
    assert code == 0, stderr
    result = json.loads(stdout)  # Python's JSON reads Infinity
    assert result["psnr"] == math.inf and result["ssim"] == 1.0
    assert all(row["psnr"] == math.inf for row in result["per_image"])
    assert '"psnr": Infinity' in stdout and out.read_text() == stdout


def _missing(gt: Path, pred: Path) -> str:
    (pred / "c.png").unlink()
    return f"error: {pred / 'c.png'}: missing; every ground-truth image ({gt / 'c.png'})"


def _other_extension(gt: Path, pred: Path) -> str:
    (pred / "b.bmp").rename(pred / "b.png")
    return (
        f"error: {pred / 'b.bmp'}: missing; every ground-truth image ({gt / 'b.bmp'}) needs an "
        f"output of the same file name (1 missing in all); found {pred / 'b.png'}: names must "
        "match, extension included"
    )


def _extra(gt: Path, pred: Path) -> str:
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(pred / "z.png")
    return f"error: {pred / 'z.png'}: no ground truth {gt / 'z.png'} for this output"


def _size(gt: Path, pred: Path) -> str:
    Image.fromarray(np.zeros((17, 31, 3), np.uint8)).save(pred / "b.bmp")
    return (
        f"error: {pred / 'b.bmp'}: output is 17x31 (HxW) but ground truth {gt / 'b.bmp'} is "
        "31x17; save outputs at the ground truth's size"
    )


def _gray_16_bit(gt: Path, pred: Path) -> str:
    Image.fromarray(np.full((24, 30), 4000, np.uint16)).save(gt / "a.png")
    assert Image.open(gt / "a.png").mode == "I;16"
    return f"error: {gt / 'a.png'}: more than 8 bits per channel (PIL mode I;16)"


def _rgb_16_bit(gt: Path, pred: Path) -> str:
    """PIL opens a 16-bit RGB PNG as 8-bit RGB, silently: the raw mode tells."""
    assert cv2.imwrite(str(pred / "c.png"), np.full((20, 40, 3), 40000, np.uint16))
    assert Image.open(pred / "c.png").mode == "RGB"
    return f"error: {pred / 'c.png'}: more than 8 bits per channel (PIL mode RGB)"


def _cmyk(gt: Path, pred: Path) -> str:
    (pred / "a.png").unlink()
    (gt / "a.png").unlink()
    for folder in (gt, pred):
        Image.new("CMYK", (24, 24)).save(folder / "a.jpg")
    return f"error: {gt / 'a.jpg'}: PIL mode CMYK; expected 8-bit gray, palette or RGB(A)"


def _not_an_image(gt: Path, pred: Path) -> str:
    (pred / "a.png").write_text("not a PNG")
    return f"error: cannot read image {pred / 'a.png'}: cannot identify image file"


def _too_small(gt: Path, pred: Path) -> str:
    for folder in (gt, pred):
        Image.fromarray(np.zeros((10, 30, 3), np.uint8)).save(folder / "c.png")
    return (
        f"error: {pred / 'c.png'}: SSIM of a 10x30 (HxW) image (after crop_border): the 11x11 "
        "window needs at least 11 pixels each way (crop_border=0)"
    )


def _no_folder(gt: Path, pred: Path) -> str:
    for path in pred.iterdir():
        path.unlink()
    pred.rmdir()
    return f"error: cannot read {pred}: No such file or directory"


def _empty_folder(gt: Path, pred: Path) -> str:
    for path in gt.iterdir():
        path.rename(path.with_suffix(".txt"))
    return f"error: {gt}: no image files (.jpg, .jpeg, .png"


def _a_file(gt: Path, pred: Path) -> str:
    for path in gt.iterdir():
        path.unlink()
    gt.rmdir()
    gt.write_text("a file")
    return f"error: {gt}: not a folder; task=restoration scores folders of images"


@pytest.mark.parametrize(
    "break_it",
    [
        _missing,
        _other_extension,
        _extra,
        _size,
        _gray_16_bit,
        _rgb_16_bit,
        _cmyk,
        _not_an_image,
        _too_small,
        _no_folder,
        _empty_folder,
        _a_file,
    ],
)
def test_errors_name_the_file(tmp_path: Path, capsys, break_it) -> None:
    gt, pred, _ = image_folders(tmp_path)
    message = break_it(gt, pred)
    out = tmp_path / "score.json"
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", f"out={out}")
    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    assert stderr.startswith(message), stderr
    assert stderr.count("\n") == 1
    assert not out.exists()


def test_crop_border_too_large_names_the_file(tmp_path: Path, capsys) -> None:
    gt, pred, _ = image_folders(tmp_path)
    code, stdout, stderr = run_main(capsys, f"gt={gt}", f"pred={pred}", "crop_border=12")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr == (
        f"error: {pred / 'a.png'}: crop_border 12 leaves nothing of a 24x30 (HxW) image "
        "(crop_border=12)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["task=restoration", "gt=g", "pred=p", "crop_border=-1"], "crop_border=-1: expected 0"),
        (
            ["task=restoration", "gt=g", "pred=p", "color=lab"],
            "cvbench score task=restoration: color=lab is not one of y, rgb",
        ),
        (
            ["task=segmentation", "gt=g", "pred=p", "num_classes=3", "color=rgb"],
            "cvbench score task=segmentation: unknown setting 'color'",
        ),
        (
            ["task=classification", "gt=g", "pred=p", "crop_border=0"],
            "cvbench score task=classification: unknown setting 'crop_border'",
        ),
        (
            ["task=restoration", "gt=g", "pred=p", "crop_border=2.5"],
            "crop_border must be an integer, got '2.5'",
        ),
        (
            ["task=restoration", "gt=g", "pred=p", "iou_type=segm"],
            "unknown setting 'iou_type'; valid: gt=, pred=, color=, crop_border=, out=",
        ),
    ],
)
def test_wrong_command_lines(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err

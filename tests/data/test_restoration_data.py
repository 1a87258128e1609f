"""Image-restoration data: the MATLAB bicubic resize, the embedded photos, image folders and
paired super-resolution folders written in their real layouts, the degradations and batches
(the restoration data YAMLs are tested by ``test_data_contracts.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matlab_reference import imresize_reference
from PIL import Image

from cvbench.data.batches import PairBatch
from cvbench.data.degradations import BicubicDownscale, HoleMasks, LabColorization
from cvbench.data.embedded.photos import photos
from cvbench.data.formats.images import image_folder
from cvbench.data.formats.paired import paired_folders
from cvbench.data.resize import imresize, modcrop
from cvbench.data.restoration import RestorationSamples, collate_restoration

# MATLAB's x2 antialiased bicubic kernel: Keys' cubic (a = -0.5) stretched by 2, sampled at
# distances 0.25, 0.75, ..., 1.75 (in input pixels / 2) and normalised; the weights every
# published description of imresize(A, 0.5) gives for interior pixels.
MATLAB_X2_KERNEL = np.array(
    [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625,
     -0.01171875]
)  # fmt: skip


def test_imresize_x2_impulse_gives_matlab_kernel() -> None:
    image = np.zeros((32, 32))
    image[15, 15] = 1.0  # input pixel 16 (1-based) feeds output pixels 7 and 8 (1-based)
    out = imresize(image, 0.5)
    assert out.shape == (16, 16)
    # Output pixel i (0-based) covers input pixels 2i-3 .. 2i+4.
    rows = np.array([out[i, 7] for i in range(4, 12)])
    weights_at_15 = [MATLAB_X2_KERNEL[15 - (2 * i - 3)] if 0 <= 15 - (2 * i - 3) < 8 else 0.0
                     for i in range(4, 12)]  # fmt: skip
    expected = np.array(weights_at_15) * MATLAB_X2_KERNEL[15 - (2 * 7 - 3)]
    np.testing.assert_allclose(rows, expected, atol=1e-15)


@pytest.mark.parametrize(
    ("scale", "size"), [(1 / 2, (36, 24)), (1 / 3, (36, 24)), (1 / 4, (36, 24)), (2, (37, 29)),
                        (3, (37, 29)), (4, (37, 29))]
)  # fmt: skip
def test_imresize_equals_matlab_algorithm(scale: float, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    ours, ref = imresize(image, scale), imresize_reference(image, scale)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    assert ours.shape[:2] == (round(size[0] * scale), round(size[1] * scale))
    np.testing.assert_array_equal(ours, ref)
    floats = image.astype(np.float64) / 255
    np.testing.assert_allclose(imresize(floats, scale), imresize_reference(floats, scale),
                               atol=1e-12)  # fmt: skip


def test_imresize_refuses_sizes_that_do_not_scale_to_integers() -> None:
    with pytest.raises(ValueError, match="a side of 37 px at scale 0.5 gives 18.5 px"):
        imresize(np.zeros((37, 36), np.uint8), 0.5)


def test_imresize_differs_from_torch_bicubic_at_the_border() -> None:
    """Why the library: torch's antialiased bicubic renormalises border weights instead of
    mirroring, so it is not MATLAB's (the interior agrees)."""
    image = np.random.default_rng(1).random((40, 40))
    torch_out = torch.nn.functional.interpolate(
        torch.from_numpy(image)[None, None], scale_factor=0.5, mode="bicubic", antialias=True
    )[0, 0].numpy()
    ours = imresize(image, 0.5)
    np.testing.assert_allclose(ours[3:-3, 3:-3], torch_out[3:-3, 3:-3], atol=1e-6)
    assert np.abs(ours[0] - torch_out[0]).max() > 1e-3


def test_modcrop() -> None:
    assert modcrop(np.zeros((10, 11, 3)), 4).shape == (8, 8, 3)


def test_photos_are_written_once_as_real_pngs(tmp_path) -> None:
    split = photos("test", root=str(tmp_path), train=["astronaut"], val=[], test=["chelsea"])
    assert len(split) == 1 and split.name(0) == "chelsea.png"
    path = tmp_path / "photos" / "chelsea.png"
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.mode == "RGB" and saved.size == (451, 300)
    import skimage.data

    np.testing.assert_array_equal(split.load(0), skimage.data.chelsea())
    before = path.stat().st_mtime_ns
    photos("test", root=str(tmp_path), train=[], val=[], test=["chelsea"])
    assert path.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="unknown photo 'lena'"):
        photos("train", root=str(tmp_path), train=["lena"], val=[], test=[])


def test_image_folder_reads_rgb_and_names_bad_files(tmp_path) -> None:
    folder = tmp_path / "train" / "sub"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((8, 9), 77, np.uint8)).save(folder / "gray.png")
    Image.fromarray(np.zeros((8, 9, 4), np.uint8)).save(tmp_path / "train" / "rgba.png")
    records = image_folder("train", root=str(tmp_path))
    assert [records.name(i) for i in range(len(records))] == ["rgba.png", "sub/gray.png"]
    gray = records.load(1)
    assert gray.shape == (8, 9, 3) and (gray == 77).all()
    assert records.load(0).shape == (8, 9, 3)
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(folder / "deep.png")
    records = image_folder("train", root=str(tmp_path))
    with pytest.raises(ValueError, match=r"deep\.png: more than 8 bits per channel"):
        records.load(records.paths.index(folder / "deep.png"))
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        image_folder("test", root=str(tmp_path))


def write_div2k(root, scale: int, sizes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """DIV2K's layout: DIV2K_train_HR/<id>.png and DIV2K_train_LR_bicubic/X<s>/<id>x<s>.png,
    the inputs made by the MATLAB-bicubic reference (as DIV2K's were)."""
    rng = np.random.default_rng(0)
    hr_dir, lr_dir = root / "DIV2K_train_HR", root / "DIV2K_train_LR_bicubic" / f"X{scale}"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    images = {}
    for stem, (h, w) in sizes.items():
        hr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(hr).save(hr_dir / f"{stem}.png")
        lr = imresize_reference(modcrop(hr, scale), 1 / scale)
        Image.fromarray(lr).save(lr_dir / f"{stem}x{scale}.png")
        images[stem] = hr
    return images


def test_paired_folders_div2k_layout(tmp_path) -> None:
    images = write_div2k(tmp_path, 3, {"0001": (31, 20), "0002": (24, 24)})
    records = paired_folders(
        "train", root=str(tmp_path), scale=3, hr_dir="DIV2K_{split}_HR",
        lr_dir="DIV2K_{split}_LR_bicubic/X{scale}",
    )  # fmt: skip
    assert len(records) == 2 and records.name(0) == "0001.png"
    np.testing.assert_array_equal(records.load(0), images["0001"][:30, :18])  # modcropped
    assert records.load_input(0).shape == (10, 6, 3)
    # An input of the wrong size is named with its HR image.
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(
        tmp_path / "DIV2K_train_LR_bicubic" / "X3" / "0002x3.png"
    )
    with pytest.raises(ValueError, match=r"0002x3\.png: input is 7x7.*0002\.png needs 8x8"):
        records.load_input(1)
    (tmp_path / "DIV2K_train_LR_bicubic" / "X3" / "0001x3.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"0001x3\.png: missing; the x3 input"):
        paired_folders("train", root=str(tmp_path), scale=3, hr_dir="DIV2K_{split}_HR",
                       lr_dir="DIV2K_{split}_LR_bicubic/X{scale}")  # fmt: skip


def test_bicubic_downscale_sample() -> None:
    image = np.random.default_rng(2).integers(0, 256, size=(25, 26, 3), dtype=np.uint8)
    sample = BicubicDownscale(scale=4)(image, np.random.default_rng(0))
    hr = image[:24, :24]
    expected = torch.from_numpy(imresize_reference(hr, 0.25)).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(sample["input"], expected)
    torch.testing.assert_close(sample["image"], torch.from_numpy(hr).permute(2, 0, 1) / 255)
    assert sample["target"] is sample["image"]


def test_lab_colorization_round_trip() -> None:
    """L* and a*b* of an image compose back to it (to within the 8-bit rounding)."""
    import skimage.color
    import skimage.data

    image = skimage.data.coffee()[::8, ::8]
    lab = LabColorization()
    sample = lab(image, np.random.default_rng(0))
    ref = skimage.color.rgb2lab(image)
    np.testing.assert_allclose(sample["input"][0].numpy() * 100, ref[..., 0], atol=1e-3)
    np.testing.assert_allclose(
        sample["target"].permute(1, 2, 0).numpy() * 110, ref[..., 1:], atol=2e-2
    )
    back = lab.compose(sample["input"][None], sample["target"][None])[0]
    assert ((back * 255).round() - sample["image"] * 255).abs().max() <= 1
    gray = lab.compose(sample["input"][None], torch.zeros(1, 2, *image.shape[:2]))[0]
    assert (gray.max(0).values - gray.min(0).values).max() < 2e-3  # neutral: R = G = B


def test_hole_masks_sample_and_compose() -> None:
    image = np.random.default_rng(3).integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    holes = HoleMasks(max_boxes=2, max_strokes=3, max_fraction=0.4)
    sample = holes(image, np.random.default_rng(5))
    hole = sample["input"][3]
    assert set(hole.unique().tolist()) == {0.0, 1.0} and 0 < hole.mean() <= 0.4
    assert (sample["input"][:3][:, hole == 1] == 0).all()
    torch.testing.assert_close(sample["input"][:3][:, hole == 0], sample["image"][:, hole == 0])
    noise = torch.rand(1, 3, 64, 80)
    composed = holes.compose(sample["input"][None], noise)[0]
    torch.testing.assert_close(composed[:, hole == 1], noise[0][:, hole == 1])
    torch.testing.assert_close(composed[:, hole == 0], sample["image"][:, hole == 0])


def test_eval_masks_are_fixed_per_image_and_training_ones_random(tmp_path) -> None:
    records = photos("test", root=str(tmp_path), train=[], val=[], test=["chelsea", "flower"])

    def masks(train: bool, seed: int = 0) -> list[torch.Tensor]:
        data = RestorationSamples(
            records, transform=None, degradation=HoleMasks(), train=train, eval_seed=seed
        )
        return [data[i]["input"][3] for i in range(2)]

    first, again = masks(False), masks(False)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][:300, :427], first[1][:300, :427])
    assert not torch.equal(masks(False, seed=1)[0], first[0])
    torch.manual_seed(0)
    assert not torch.equal(masks(True)[0], masks(True)[0])


def test_paired_training_crops_stay_aligned(tmp_path) -> None:
    """HR images that are the input blown up (each input pixel a 2x2 block) stay exactly that
    after the aligned crop, flips and rotations applied to both."""
    import albumentations as A

    rng = np.random.default_rng(4)
    (tmp_path / "HR").mkdir()
    (tmp_path / "LR_bicubic" / "X2").mkdir(parents=True)
    lr = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    Image.fromarray(np.kron(lr, np.ones((2, 2, 1), np.uint8))).save(tmp_path / "HR" / "a.png")
    Image.fromarray(lr).save(tmp_path / "LR_bicubic" / "X2" / "ax2.png")
    transform = A.Compose(
        [A.HorizontalFlip(p=0.5), A.RandomRotate90(p=1.0)],
        additional_targets={"input": "image"},
        is_check_shapes=False,
    )
    transform.set_random_seed(0)
    data = RestorationSamples(
        paired_folders("train", root=str(tmp_path), scale=2), transform=transform,
        degradation=None, scale=2, patch_size=16, repeat=8, train=True,
    )  # fmt: skip
    torch.manual_seed(0)
    batch = collate_restoration([data[i] for i in range(8)])
    assert batch.input.shape == (8, 3, 8, 8) and batch.image.shape == (8, 3, 16, 16)
    blown_up = batch.input.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(batch.image, blown_up)
    assert len({tuple(x.flatten()[:5].tolist()) for x in batch.input}) > 1


def test_collate_keeps_images_of_different_sizes_as_lists(tmp_path) -> None:
    records = photos("test", root=str(tmp_path), train=[], val=[], test=["chelsea", "flower"])
    data = RestorationSamples(records, transform=None, degradation=BicubicDownscale(scale=3))
    batch = collate_restoration([data[0], data[1]])
    assert isinstance(batch, PairBatch)
    assert isinstance(batch.input, list) and batch.input[0].shape == (3, 100, 150)
    assert batch.image[1].shape == (3, 426, 639) and batch.index.tolist() == [0, 1]

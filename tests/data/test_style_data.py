"""Style-transfer data: the strict RGB reader of style images, the embedded textures, the fixed
evaluation grid and the seeded training samples (the style data YAMLs' batches are tested by
``test_data_contracts.py``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import albumentations as A
import matplotlib
import numpy as np
import pytest
import skimage.data
import torch
from data_contracts import data_config
from PIL import Image

from cvbench.data.batches import StyleBatch
from cvbench.data.embedded.textures import textures
from cvbench.data.formats.images import image_folder
from cvbench.data.formats.style_images import style_images
from cvbench.data.style import StyleDataModule
from cvbench.run.build import build_datamodule

# Three solid style colours: a style tensor tells which style was drawn.
COLOURS = ((255, 0, 0), (0, 200, 0), (0, 0, 150))


def write_rgb(path: Path, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return image


def small_datamodule(tmp_path: Path, **kwargs) -> StyleDataModule:
    """Content: ``content/train/{a,b}.png`` (20 x 30, 26 x 24); styles: three solid colours
    ``styles/s{0,1,2}.png`` (18 x 22) for every split."""
    for i, size in enumerate(((20, 30), (26, 24))):
        for split in ("train", "val", "test"):
            write_rgb(tmp_path / "content" / split / f"{'ab'[i]}.png", size, seed=i)
    for i, colour in enumerate(COLOURS):
        folder = tmp_path / "styles"
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.full((18, 22, 3), colour, np.uint8)).save(folder / f"s{i}.png")
    options = {
        "name": "tiny",
        "records": partial(image_folder, root=str(tmp_path / "content")),
        "styles": partial(style_images, train=str(tmp_path / "styles")),
        "crop_size": 16,
        "style_size": 12,
        "eval_size": 14,
        "batch_size": 4,
        **kwargs,
    }
    return StyleDataModule(**options)


def style_of(batch: StyleBatch) -> list[int]:
    """Which solid colour each sample's style is (checked to be exactly that colour)."""
    found = []
    for style in batch.style:
        colour = tuple(round(float(v) * 255) for v in style[:, 0, 0])
        assert (style == style[:, :1, :1]).all(), "a solid style stays solid"
        found.append(COLOURS.index(colour))
    return found


def test_eval_grid_is_fixed_ordered_and_the_same_for_every_run(make_cfg, tmp_path) -> None:
    cfg = data_config(make_cfg, "style/image_folder")
    one, two = build_datamodule(cfg), build_datamodule(cfg)
    names = one.grid_names("test")
    # 2 content images x 1 test style (a single file), index c * M + s
    assert names == [("a.jpg", "starry.jpg"), ("sub/b.png", "starry.jpg")]
    torch.manual_seed(1)
    batch = next(iter(one.test_dataloader()))
    torch.manual_seed(2)  # the grid does not depend on the seed
    other = next(iter(two.test_dataloader()))
    assert batch.index.tolist() == [0, 1] and batch.content_index.tolist() == [0, 1]
    assert batch.style_index.tolist() == [0, 0]
    assert batch.content.shape == (2, 3, 40, 40) and batch.style.shape == (2, 3, 24, 24)
    for ours, theirs in zip(batch, other, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    # Known answer: the 60 x 72 content resized (bicubic) to 40 x 48, the centre 40 x 40 kept.
    with Image.open(tmp_path / "data" / "content" / "test" / "a.jpg") as image:
        expected = np.asarray(image.resize((48, 40), Image.Resampling.BICUBIC))[:, 4:44]
    got = (batch.content[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
    # val: 2 contents x the training folder's 2 styles (val defaults to train's styles)
    assert [n for n in one.grid_names("val")] == [
        ("a.jpg", "sub/mosaic.jpg"), ("a.jpg", "wave.png"),
        ("sub/b.png", "sub/mosaic.jpg"), ("sub/b.png", "wave.png"),
    ]  # fmt: skip
    assert len(one.split("val")) == 4
    assert one.held_out_styles == ["starry.jpg"]


def test_photos_test_grid_holds_a_style_never_trained_on(make_cfg) -> None:
    cfg = make_cfg("data=style/photos")
    datamodule = build_datamodule(cfg)
    assert datamodule.held_out_styles == ["colorwheel.png"]
    assert not datamodule.datasets, "naming the held-out styles reads no content"
    test = datamodule.split("test")
    assert len(test) == 4 and isinstance(test.content_records.name(0), str)
    trained = {datamodule.split("train").content_records.name(i) for i in range(4)}
    tested = {content for content, _ in datamodule.grid_names("test")}
    assert tested == {"chelsea.png", "flower.png"} and not tested & trained


def test_training_draws_styles_per_sample_seeded(tmp_path) -> None:
    torch.manual_seed(0)
    datamodule = small_datamodule(tmp_path, repeat=12)
    samples = datamodule.split("train")
    assert len(samples) == 24 and len(samples.style_records) == 3
    batches = [datamodule.collate_fn([samples[i] for i in range(12)]) for _ in range(2)]
    styles = [style_of(b) for b in batches]
    assert set(styles[0]) == {0, 1, 2}, "12 draws of 3 styles give each"
    for batch, drawn in zip(batches, styles, strict=True):
        assert batch.content.shape == (12, 3, 16, 16) and batch.style.shape == (12, 3, 12, 12)
        assert batch.style_index.tolist() == drawn
        assert batch.index.tolist() == [c * 3 + s for c, s in zip([0, 1] * 6, drawn, strict=True)]
    assert styles[0] != styles[1], "each pass draws again"
    # The same seed gives the same samples (content crops and style draws) in a new process.
    torch.manual_seed(0)
    again = small_datamodule(tmp_path, repeat=12).split("train")
    first = datamodule.collate_fn([again[i] for i in range(12)])
    for ours, theirs in zip(first, batches[0], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    torch.manual_seed(1)
    other = small_datamodule(tmp_path, repeat=12).split("train")
    assert style_of(datamodule.collate_fn([other[i] for i in range(12)])) != styles[0]


def test_train_transform_crops_content_and_center_mode_is_fixed(tmp_path) -> None:
    torch.manual_seed(0)
    flip = A.Compose([A.RandomCrop(16, 16), A.HorizontalFlip(p=0.5)])
    cropped = small_datamodule(tmp_path, transforms={"train": flip}).split("train")
    crops = torch.stack([cropped[0]["content"] for _ in range(8)])
    assert crops.shape == (8, 3, 16, 16) and not (crops == crops[:1]).all()
    fixed = small_datamodule(tmp_path, train_crop="center", transforms={"train": flip})
    samples = fixed.split("train")
    content = torch.stack([samples[0]["content"] for _ in range(4)])
    assert (content == content[:1]).all(), "Gatys sees one image"
    # the centre crop of content a (20 x 30) resized to 16 x 24: columns 4..20
    image = np.asarray(
        Image.fromarray(samples.content_records.load(0)).resize((24, 16), Image.Resampling.BICUBIC)
    )
    got = (content[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, image[:, 4:20])
    wrong = small_datamodule(tmp_path, transforms={"train": A.Compose([A.RandomCrop(8, 8)])})
    with pytest.raises(ValueError, match=r"data 'tiny' split 'train'.*data.transforms.train.*"
                                         r"a\.png; expected a \(16, 16, 3\)"):  # fmt: skip
        wrong.split("train")[0]
    with pytest.raises(ValueError, match="data.transforms.test must be null"):
        small_datamodule(tmp_path, transforms={"test": flip})


def test_style_errors_name_the_file(tmp_path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((8, 8, 2), np.uint8), mode="LA").save(tmp_path / "gray_alpha.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    for name, error, message in (
        ("missing.jpg", FileNotFoundError, r"style image .*missing\.jpg does not exist"),
        ("broken.jpg", ValueError, r"cannot read style image .*broken\.jpg"),
        ("gray.png", ValueError, r"style image .*gray\.png is grayscale \(mode L\); style "
                                 r"transfer needs an RGB image"),
        ("gray_alpha.png", ValueError, r"gray_alpha\.png is grayscale \(mode LA\)"),
    ):  # fmt: skip
        with pytest.raises(error, match=message) as caught:
            style_images("train", train=str(tmp_path / name))
        assert "\n" not in str(caught.value)


def test_style_folder_and_file(tmp_path) -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    (tmp_path / "styles" / "sub").mkdir(parents=True)
    Image.fromarray(rgba).save(tmp_path / "styles" / "sub" / "rgba.png")
    palette = Image.fromarray(np.full((5, 5, 3), (200, 10, 10), np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    palette.save(tmp_path / "styles" / "palette.png")
    (tmp_path / "styles" / ".hidden.png").write_bytes(b"skipped")
    records = style_images("val", train=str(tmp_path / "styles"))
    assert [records.name(i) for i in range(len(records))] == ["palette.png", "sub/rgba.png"]
    np.testing.assert_array_equal(records.load(1), rgba[:, :, :3])  # alpha dropped
    assert (records.load(0) == (200, 10, 10)).all()
    single = style_images("test", train="unused", test=str(tmp_path / "styles" / "palette.png"))
    assert len(single) == 1 and single.name(0) == "palette.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "styles" / "sub" / "g.png")
    with pytest.raises(ValueError, match=r"sub/g\.png is grayscale"):
        style_images("train", train=str(tmp_path / "styles"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"style folder .*empty \(split 'train'\): no image"):
        style_images("train", train=str(tmp_path / "empty"))


def test_missing_style_file_fails_when_the_datamodule_is_set_up(make_cfg, tmp_path) -> None:
    cfg = data_config(make_cfg, "style/image_folder", "data.styles.train=/nowhere/wave.jpg")
    datamodule = build_datamodule(cfg)
    with pytest.raises(FileNotFoundError, match=r"style image /nowhere/wave\.jpg does not"):
        datamodule.setup("fit")


def test_textures_are_written_once_as_rgb_pngs(tmp_path) -> None:
    names = ["grass", "hubble_deep_field", "colorwheel"]
    split = textures("train", root=str(tmp_path), train=names, val=[], test=[])
    assert [split.name(i) for i in range(3)] == [f"{n}.png" for n in names]
    for name, size in zip(names, ((512, 512), (1000, 872), (371, 370)), strict=True):
        with Image.open(tmp_path / "textures" / f"{name}.png") as saved:
            assert saved.format == "PNG" and saved.mode == "RGB" and saved.size == size
    grass = split.load(0)
    tint = matplotlib.colormaps["YlGn_r"](skimage.data.grass() / 255.0)[:, :, :3]
    np.testing.assert_array_equal(grass, np.round(tint * 255).astype(np.uint8))
    assert np.abs(grass[:, :, 0].astype(int) - grass[:, :, 1]).mean() > 10, "colour, not gray"
    np.testing.assert_array_equal(split.load(1), skimage.data.hubble_deep_field())
    path = tmp_path / "textures" / "grass.png"
    before = path.stat().st_mtime_ns
    textures("test", root=str(tmp_path), train=[], val=[], test=["grass"])
    assert path.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="unknown texture 'marble'"):
        textures("train", root=str(tmp_path), train=["marble"], val=[], test=[])


def test_the_embedded_photos_are_styles_too(tmp_path) -> None:
    split = textures("train", root=str(tmp_path), train=["photo_chelsea"], val=[], test=[])
    assert split.name(0) == "photo_chelsea.png"
    np.testing.assert_array_equal(split.load(0), skimage.data.chelsea())

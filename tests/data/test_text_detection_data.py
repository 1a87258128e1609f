"""Text detection data: the ICDAR 2015 folder reader on real files, its errors, the embedded
text scenes (deterministic, quadrilaterals that hold the rendered ink) and the datamodule's
resize and augmentation (the YAMLs' batches are tested by ``test_data_contracts.py``)."""

from __future__ import annotations

import codecs
from functools import partial
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
from fakes_text_detection import REGIONS, write_icdar2015
from PIL import Image

from cvbench.data.batches import TextDetectionBatch
from cvbench.data.embedded import text_render
from cvbench.data.embedded import text_scenes as scenes
from cvbench.data.formats.icdar2015_folder import Icdar2015Folder, icdar2015_folder
from cvbench.data.text_detection import TextDetectionDataModule, resize_square

DIRS = {"image_dirs": {"test": "test_images"}, "gt_dirs": {"test": "test_gt"}}


def test_reader_reads_the_icdar2015_layout(tmp_path: Path) -> None:
    written = write_icdar2015(tmp_path, "test")
    records = icdar2015_folder("test", root=str(tmp_path), **DIRS)
    assert [records.name(i) for i in range(len(records))] == ["img_1", "img_2", "img_10"]
    for i, (stem, expected) in enumerate(written.items()):
        regions = records.regions(i)
        np.testing.assert_array_equal(regions["polygons"], expected["polygons"])
        assert regions["polygons"].dtype == np.float32 and regions["polygons"].shape[1:] == (4, 2)
        assert regions["texts"] == expected["texts"]  # BOM dropped, commas and UTF-8 kept
        assert regions["ignore"].tolist() == [t == "###" for t in expected["texts"]]
        width, height = expected["size"]
        assert records.load(i).shape == (height, width, 3)
        assert records.source(i).endswith(stem + REGIONS[stem][0])
    assert records.regions(0)["texts"] == ["Hello, world", "###"]
    assert records.regions(2)["polygons"].shape == (0, 4, 2)


def test_reader_names_an_image_without_gt_and_a_gt_without_image(tmp_path: Path) -> None:
    write_icdar2015(tmp_path, "test")
    (tmp_path / "test_gt" / "gt_img_2.txt").rename(tmp_path / "gt_img_2.txt")
    with pytest.raises(ValueError, match=r"img_2\.png: no ground-truth file .*gt_img_2\.txt"):
        icdar2015_folder("test", root=str(tmp_path), **DIRS)
    (tmp_path / "gt_img_2.txt").rename(tmp_path / "test_gt" / "gt_img_2.txt")
    (tmp_path / "test_gt" / "gt_img_7.txt").write_text("1,1,5,1,5,5,1,5,x\n")
    with pytest.raises(ValueError, match=r"gt_img_7\.txt: no image img_7\.\* in .*test_images"):
        icdar2015_folder("test", root=str(tmp_path), **DIRS)


def test_reader_names_the_file_and_line_of_a_short_polygon(tmp_path: Path) -> None:
    write_icdar2015(tmp_path, "test")
    gt = tmp_path / "test_gt" / "gt_img_10.txt"
    gt.write_bytes(codecs.BOM_UTF8 + b"1,1,9,1,9,9,1,9,ok\r\n1,1,9,1,9,9,oops\r\n")
    with pytest.raises(ValueError, match=r"gt_img_10\.txt, line 2: .*fewer than 8 coordinates"):
        Icdar2015Folder(tmp_path / "test_images", tmp_path / "test_gt")
    with pytest.raises(ValueError, match=r"data\.records\.image_dirs names splits \['test'\]"):
        icdar2015_folder("val", root=str(tmp_path), **DIRS)


TINY = {"num_images": {"train": 3, "val": 1, "test": 2}, "image_size": 96}


def test_scenes_are_deterministic_icdar2015_files(tmp_path: Path) -> None:
    first = scenes.text_scenes("train", root=str(tmp_path / "a"), **TINY)
    scenes.text_scenes("train", root=str(tmp_path / "b"), **TINY)
    (folder_a,), (folder_b,) = ((tmp_path / r / "ocr_scenes").iterdir() for r in "ab")
    files = sorted(p.relative_to(folder_a) for p in folder_a.rglob("*") if p.is_file())
    assert len(files) == 2 * (3 + 1 + 2) and Path("test_gt/gt_img_2.txt") in files
    for name in files:  # same parameters, same bytes
        assert (folder_a / name).read_bytes() == (folder_b / name).read_bytes(), name
    gt = (folder_a / "train_gt" / "gt_img_1.txt").read_bytes()
    assert gt.startswith(codecs.BOM_UTF8) and gt.endswith(b"\r\n")
    with Image.open(folder_a / "train_images" / "img_1.jpg") as image:
        assert image.format == "JPEG" and image.size == (96, 96)
    assert len(first) == 3 and sum(len(first.regions(i)["texts"]) for i in range(3)) >= 3
    other = scenes.text_scenes("train", root=str(tmp_path / "a"), **{**TINY, "seed": 1})
    assert Path(other.images_dir).parent != folder_a  # other parameters, another folder
    assert not np.array_equal(other.load(0), first.load(0))


def _words_alone(seed: int, count: int, size: int = 160) -> tuple[np.ndarray, list]:
    """Words drawn by the generator on a flat gray image: (ink (size, size) float, words)."""
    rng = np.random.default_rng(seed)
    flat = np.full((size, size, 3), 128.0, np.float32)
    image, words = text_render.render_words(
        rng, flat, count, max_angle=20.0, dont_care_fraction=0.0
    )
    return np.abs(image - flat).sum(2), words


def test_scene_quads_hold_the_rendered_ink_tightly() -> None:
    angles = []
    for seed in range(12):
        ink, words = _words_alone(seed, count=1)
        ((quad, text),) = words
        assert text != "###" and text.strip()
        inside = np.zeros(ink.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(quad * 16).astype(np.int32)], 1, shift=4)
        assert ink[inside > 0].sum() > 0.95 * ink.sum(), (seed, text)
        # tight: every side of the quad has ink within a tenth of the box height (+2 px)
        ys, xs = np.nonzero(ink > 0.05 * ink.max())
        points = np.stack([xs + 0.5, ys + 0.5], 1)
        height = np.linalg.norm(quad[3] - quad[0])
        for a, b in zip(quad, np.roll(quad, -1, axis=0), strict=True):
            edge = (b - a) / np.linalg.norm(b - a)
            distance = np.abs(np.cross(edge, points - a))
            assert distance.min() <= 0.1 * height + 2, (seed, text)
        # clockwise on screen (y down) from the word's top-left corner
        x, y = quad[:, 0], quad[:, 1]
        assert np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y) > 0
        assert np.argmin(x + y) == 0
        angles.append(np.degrees(np.arctan2(*(quad[1] - quad[0])[::-1])))
    assert max(np.abs(angles)) <= 20.0 + 1e-6 and np.mean(np.abs(angles) > 2) > 0.5


def test_scene_words_do_not_overlap_and_dont_care_is_marked() -> None:
    rng = np.random.default_rng(3)
    flat = np.full((320, 320, 3), 128.0, np.float32)
    _, words = text_render.render_words(rng, flat, 40, max_angle=20.0, dont_care_fraction=1.0)
    assert words and all(text == "###" for _, text in words)
    masks = np.zeros((320, 320), np.int32)
    for quad, _ in words:
        one = np.zeros_like(masks, dtype=np.uint8)
        cv2.fillPoly(one, [np.round(quad).astype(np.int32)], 1)
        masks += one
        assert (quad >= text_render.MARGIN - 1e-6).all() and (
            quad <= 320 - text_render.MARGIN
        ).all()
    assert masks.max() == 1


def _datamodule(tmp_path: Path, **kwargs) -> TextDetectionDataModule:
    write_icdar2015(tmp_path, "test")
    records = partial(icdar2015_folder, root=str(tmp_path), **DIRS)
    splits = {"train": "test", "val": "test"}
    defaults = {"name": "fake", "records": records, "batch_size": 3, "image_size": 40}
    return TextDetectionDataModule(split_names=splits, **{**defaults, **kwargs})


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_evaluation_images_are_resized_and_polygons_scaled(tmp_path: Path, keep_aspect) -> None:
    dm = _datamodule(tmp_path, keep_aspect=keep_aspect)
    batch = next(iter(dm.val_dataloader()))
    assert isinstance(batch, TextDetectionBatch) and batch.indices.tolist() == [0, 1, 2]
    assert batch.images.shape == (3, 3, 40, 40) and batch.names == ["img_1", "img_2", "img_10"]
    records = dm.records_of("val")
    for i in range(3):
        height, width = records.load(i).shape[:2]
        if keep_aspect:  # long side to 40, padded at the bottom / right
            factor = 40 / max(width, height)
            expected = (round(width * factor) / width, round(height * factor) / height)
        else:
            expected = (40 / width, 40 / height)
        np.testing.assert_allclose(batch.scales[i].numpy(), expected, rtol=1e-6)
        scaled = records.regions(i)["polygons"] * batch.scales[i].numpy()
        np.testing.assert_allclose(batch.polygons[i].numpy(), scaled, rtol=1e-6)
        assert batch.texts[i] == records.regions(i)["texts"]
        image, _ = resize_square(records.load(i), 40, keep_aspect=keep_aspect)
        np.testing.assert_allclose(
            batch.images[i].numpy(), image.transpose(2, 0, 1) / 255, atol=1e-6
        )
    assert batch.ignore[0].tolist() == [False, True]
    if keep_aspect:  # img_1 is 80 x 60: rows 30..39 are padding
        assert float(batch.images[0, :, 30:].abs().max()) == 0.0


def test_training_drops_polygons_pushed_out_and_ignores_slivers(tmp_path: Path) -> None:
    shift = A.Compose(
        [A.Affine(translate_px={"x": (30, 30), "y": (0, 0)}, p=1.0)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )
    dm = _datamodule(tmp_path, transforms={"train": shift})
    sample = dm.split("train")[0]  # img_1 (80 x 60) at 40 x 40: x 4-25 and x 30-37.5
    assert sample["texts"] == ["###"]  # the word is 28% inside: don't care; "###" left: dropped
    assert sample["ignore"].tolist() == [True]
    expected = REGIONS["img_1"][2][0][0]
    np.testing.assert_allclose(
        sample["polygons"][0].numpy(),
        np.reshape(expected, (4, 2)) * (0.5, 40 / 60) + (30, 0),
        atol=1e-3,
    )
    assert dm.split("train")[2]["polygons"].shape == (0, 4, 2)  # no text, still a sample


def test_wrong_train_or_eval_transforms_are_named(tmp_path: Path) -> None:
    flip = A.Compose([A.HorizontalFlip()])
    with pytest.raises(ValueError, match=r"data\.transforms\.train must be .*keypoint_params"):
        _datamodule(tmp_path, transforms={"train": flip}).setup("fit")
    with pytest.raises(ValueError, match=r"data\.transforms\.val must be null"):
        _datamodule(tmp_path, transforms={"val": flip})

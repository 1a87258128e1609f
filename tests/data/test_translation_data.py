"""Image-to-image translation data: pix2pix's paired layouts, CycleGAN's unpaired layout and the
embedded shapes, read from real files the tests write (tests/fakes_translation.py)."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes_translation import (
    FAKE_PALETTE,
    fake_pair,
    write_aligned_images,
    write_cyclegan_folders,
    write_pix2pix_folders,
)
from PIL import Image

from cvbench.data.batches import TranslationBatch, UnpairedBatch
from cvbench.data.embedded import shape_pairs as embedded
from cvbench.data.formats.paired_images import pix2pix_images
from cvbench.data.formats.unpaired import cyclegan_folders
from cvbench.data.jitter import resize_image, resize_nearest
from cvbench.data.translation import PairedDataModule, UnpairedDataModule, palette_labels
from cvbench.run.build import build_datamodule


def _paired(root: Path, **kwargs) -> PairedDataModule:
    records = kwargs.pop("records", {})
    return PairedDataModule(
        name="pairs",
        records=lambda split: pix2pix_images(split, root=str(root), **records),
        batch_size=kwargs.pop("batch_size", 8),
        **{"load_size": 20, "crop_size": 16, **kwargs},
    )


def _arrays(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8 (exact for images read from uint8)."""
    return np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def test_pix2pix_folders_pair_by_name_in_both_directions(tmp_path: Path) -> None:
    written = write_pix2pix_folders(tmp_path, 3, b_suffix=".bmp")  # A .png, B .bmp
    records = pix2pix_images("train", root=str(tmp_path))
    assert len(records) == 3 and records.name(1) == "2.png"
    np.testing.assert_array_equal(records.load_input(1), written["train/A/2.png"])
    np.testing.assert_array_equal(records.load(1), written["train/B/2.bmp"])
    reverse = pix2pix_images("train", root=str(tmp_path), direction="BtoA")
    np.testing.assert_array_equal(reverse.load_input(1), written["train/B/2.bmp"])
    np.testing.assert_array_equal(reverse.load(1), written["train/A/2.png"])


def test_aligned_images_split_in_halves(tmp_path: Path) -> None:
    written = write_aligned_images(tmp_path, 2, split="test")
    records = pix2pix_images("test", root=str(tmp_path), layout="aligned")
    np.testing.assert_array_equal(records.load_input(1), written["test/2.png/A"])
    np.testing.assert_array_equal(records.load(1), written["test/2.png/B"])


def test_palette_gives_label_map_ids(tmp_path: Path) -> None:
    """Evaluation: resized (nearest) to crop_size; label_map = palette index of each source
    pixel, -1 for a colour the palette does not hold."""
    written = write_pix2pix_folders(tmp_path, 2, split="val")
    source = written["val/A/1.png"].copy()
    source[0, 0] = (1, 2, 3)  # no class
    Image.fromarray(source).save(tmp_path / "val" / "A" / "1.png")
    dm = _paired(tmp_path, palette=[list(c) for c in FAKE_PALETTE],
                 source_interpolation="nearest")  # fmt: skip
    assert dm.num_classes == 3 and dm.class_names == ["class_0", "class_1", "class_2"]
    batch = next(iter(dm.val_dataloader()))
    assert isinstance(batch, TranslationBatch) and batch.index.tolist() == [0, 1]
    _, _, ids = fake_pair(1 + 300, (20, 24))  # what write_pix2pix_folders wrote as val/A/1
    want = ids.astype(np.int64)
    want[0, 0] = -1
    np.testing.assert_array_equal(batch.label_map[0].numpy(), resize_nearest(want, 16, 16))
    np.testing.assert_array_equal(_arrays(batch.source)[0], resize_nearest(source, 16, 16))
    target = resize_image(written["val/B/1.png"], 16, 16)  # PIL bilinear
    np.testing.assert_array_equal(_arrays(batch.target)[0], target)


def test_training_jitter_keeps_source_and_label_map_aligned(tmp_path: Path) -> None:
    write_pix2pix_folders(tmp_path, 4, split="train")
    dm = _paired(tmp_path, palette=[list(c) for c in FAKE_PALETTE], source_interpolation="nearest",
                 load_size=28, crop_size=12)  # fmt: skip
    torch.manual_seed(0)
    batches = [next(iter(dm.train_dataloader())) for _ in range(3)]
    palette = np.asarray(FAKE_PALETTE, np.uint8)
    for batch in batches:
        assert batch.source.shape == batch.target.shape == (4, 3, 12, 12)
        labels = batch.label_map.numpy()
        assert (labels >= 0).all()
        np.testing.assert_array_equal(_arrays(batch.source), palette[labels])
    torch.manual_seed(0)  # the draws follow torch's generator: the same seed, the same batches
    again = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(again.source, batches[0].source, rtol=0, atol=0)
    torch.testing.assert_close(again.target, batches[0].target, rtol=0, atol=0)
    assert not all(torch.equal(batches[0].source, b.source) for b in batches[1:])


def test_labels_folder_gives_label_map(tmp_path: Path) -> None:
    written = write_pix2pix_folders(tmp_path, 2, split="test", labels=True)
    labels = written["test/labels/2.png"].copy()
    labels[:2] = 255  # unknown
    Image.fromarray(labels).save(tmp_path / "test" / "labels" / "2.png")
    dm = _paired(tmp_path, records={"labels_dir": "labels"}, crop_size=20, load_size=20)
    got = next(iter(dm.test_dataloader())).label_map  # 20 x 24 resized to 20 x 20
    want = resize_nearest(np.where(labels == 255, -1, labels.astype(np.int64)), 20, 20)
    np.testing.assert_array_equal(got[1].numpy(), want)
    assert (got[1, :2] == -1).all() and (got[1, 2:] >= 0).all()


def test_without_palette_label_map_is_unknown(tmp_path: Path) -> None:
    write_pix2pix_folders(tmp_path, 2, split="val")
    dm = _paired(tmp_path)
    assert dm.num_classes is None and dm.class_names is None
    assert (next(iter(dm.val_dataloader())).label_map == -1).all()


def test_palette_labels_tolerance() -> None:
    image = np.array([[[10, 0, 160], [40, 40, 40]]], np.uint8)
    palette = np.array([[0, 0, 170], [255, 85, 0]])
    assert palette_labels(image, palette).tolist() == [[-1, -1]]
    assert palette_labels(image, palette, tolerance=10).tolist() == [[0, -1]]


def _one_line_error(exc: type[Exception], call, *names: object) -> str:
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert str(name) in message, (name, message)
    return message


def test_unmatched_pairs_list_names_of_both_sides(tmp_path: Path) -> None:
    write_pix2pix_folders(tmp_path, 3)
    (tmp_path / "train" / "A" / "2.png").rename(tmp_path / "train" / "A" / "only_a.png")
    (tmp_path / "train" / "B" / "3.png").rename(tmp_path / "train" / "B" / "only_b.png")
    a, b = tmp_path / "train" / "A", tmp_path / "train" / "B"
    message = _one_line_error(
        ValueError, lambda: pix2pix_images("train", root=str(tmp_path)), "only_a", "only_b", a, b
    )
    assert "'2'" in message and "'3'" in message  # B's 2 and A's 3 lost their partners


def test_empty_and_missing_folders_are_named(tmp_path: Path) -> None:
    write_pix2pix_folders(tmp_path, 1)
    for path in (tmp_path / "train" / "B").iterdir():
        path.unlink()
    _one_line_error(ValueError, lambda: pix2pix_images("train", root=str(tmp_path)),
                    tmp_path / "train" / "B")  # fmt: skip
    _one_line_error(FileNotFoundError, lambda: pix2pix_images("val", root=str(tmp_path)),
                    tmp_path / "val" / "A")  # fmt: skip
    (tmp_path / "testA").mkdir()
    _one_line_error(ValueError, lambda: cyclegan_folders("test", root=str(tmp_path)),
                    tmp_path / "testA")  # fmt: skip
    _one_line_error(FileNotFoundError, lambda: cyclegan_folders("train", root=str(tmp_path)),
                    tmp_path / "trainA")  # fmt: skip


def test_pair_of_different_sizes_names_the_file(tmp_path: Path) -> None:
    write_pix2pix_folders(tmp_path, 2, split="val")
    bad = tmp_path / "val" / "B" / "2.png"
    Image.fromarray(np.zeros((20, 26, 3), np.uint8)).save(bad)
    records = pix2pix_images("val", root=str(tmp_path))
    records.load(0)
    _one_line_error(ValueError, lambda: records.load(1), bad, "26x20")
    dm = _paired(tmp_path)
    _one_line_error(ValueError, lambda: next(iter(dm.val_dataloader())), bad)


def test_odd_width_side_by_side_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "train" / "odd.jpg"
    bad.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 15, 3), np.uint8)).save(bad)
    records = pix2pix_images("train", root=str(tmp_path), layout="aligned")
    _one_line_error(ValueError, lambda: records.load(0), bad, "odd width 15")


def test_cyclegan_validation_is_val_folders_or_a_seeded_holdout(tmp_path: Path) -> None:
    write_cyclegan_folders(tmp_path / "held", 5, 8)
    train = cyclegan_folders("train", root=str(tmp_path / "held"), val_size=2)
    val = cyclegan_folders("val", root=str(tmp_path / "held"), val_size=2)
    assert (len(train.a), len(train.b), len(val.a), len(val.b)) == (3, 6, 2, 2)
    names = [train.a.name(i) for i in range(3)] + [val.a.name(i) for i in range(2)]
    assert sorted(names) == [f"{k}.png" for k in range(1, 6)]
    write_cyclegan_folders(tmp_path / "own", 2, 3, val=True)
    assert len(cyclegan_folders("train", root=str(tmp_path / "own")).a) == 2
    val = cyclegan_folders("val", root=str(tmp_path / "own"))
    assert val.a.source(0) == str(tmp_path / "own" / "valA" / "1.png")


def _unpaired(root: Path, **kwargs) -> UnpairedDataModule:
    return UnpairedDataModule(
        name="unpaired",
        records=lambda split: cyclegan_folders(split, root=str(root), val_size=1),
        batch_size=2,
        load_size=20,
        crop_size=16,
        **kwargs,
    )


def test_unpaired_evaluation_covers_every_image_of_both_domains(tmp_path: Path) -> None:
    written = write_cyclegan_folders(tmp_path, 3, 5)
    dm = _unpaired(tmp_path)
    batches = list(dm.test_dataloader())
    assert all(isinstance(b, UnpairedBatch) for b in batches)
    pairs = [
        (a, b)
        for batch in batches
        for a, b in zip(batch.indices_a.tolist(), batch.indices_b.tolist(), strict=True)
    ]
    assert pairs == [(0, 0), (1, 1), (2, 2), (0, 3), (1, 4)]
    first = _arrays(batches[0].images_b)[1]
    np.testing.assert_array_equal(first, resize_image(written["testB/2.png"], 16, 16))


def test_unpaired_training_draws_b_at_random_from_torchs_generator(tmp_path: Path) -> None:
    write_cyclegan_folders(tmp_path, 4, 9)
    dm = _unpaired(tmp_path)  # train: 3 A, 8 B (one of each held out)

    def draws() -> list[tuple[list[int], list[int]]]:
        torch.manual_seed(3)
        return [(b.indices_a.tolist(), b.indices_b.tolist()) for b in dm.train_dataloader()]

    first = draws()
    assert len(first) == 4  # max(3, 8) samples in batches of 2
    assert sorted(a for a_s, _ in first for a in a_s) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert draws() == first
    assert len({b for _, b_s in first for b in b_s}) > 1


def _hue(rgb: np.ndarray) -> np.ndarray:
    return np.array([colorsys.rgb_to_hsv(*(p / 255.0))[0] for p in rgb.reshape(-1, 3)])


def _hue_gap(hues: np.ndarray, want: float) -> float:
    gap = np.abs(hues - want) % 1.0
    return float(np.median(np.minimum(gap, 1.0 - gap)))


def test_embedded_shape_pairs_read_back_through_the_pix2pix_reader(make_cfg) -> None:
    cfg = make_cfg("data=translation/shapes_pairs", "data.num_workers=0", "data.batch_size=4",
                   "data.records.num_images={train: 6, val: 4, test: 3}")  # fmt: skip
    dm = build_datamodule(cfg)
    assert dm.class_names == list(embedded.CLASSES) and dm.num_classes == 5
    batch = next(iter(dm.val_dataloader()))
    records = dm.split("val").records
    assert records.source(0).endswith("val/A/000001.png + " + str(
        Path(records.b_paths[0]).parent / "000001.png"))  # fmt: skip
    palette = np.asarray(embedded.PALETTE, np.uint8)
    labels = batch.label_map.numpy()
    np.testing.assert_array_equal(_arrays(batch.source), palette[labels])  # A = palette[labels]
    target = _arrays(batch.target)
    for c in range(1, 5):  # each class painted in its hue
        pixels = target[labels == c]
        if len(pixels):
            assert _hue_gap(_hue(pixels), embedded.PHOTO_HUES[c - 1]) < 0.05


def test_embedded_generation_is_deterministic(tmp_path: Path) -> None:
    sizes = {"train": 3, "val": 2, "test": 2}
    for root in ("one", "two"):
        embedded.shape_pairs("train", root=str(tmp_path / root), num_images=sizes)
        embedded.shapes_unpaired("train", root=str(tmp_path / root), num_images=sizes)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert len(files) == 7 * 3 + 7 * 2  # A, B, labels per pair; A and B per unpaired index
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    assert not list(tmp_path.glob("*/.*"))  # no temporary folder left


def test_embedded_unpaired_domains_are_warm_and_cool(make_cfg) -> None:
    cfg = make_cfg("data=translation/shapes_unpaired", "data.num_workers=0", "data.batch_size=8",
                   "data.records.num_images={train: 4, val: 2, test: 8}")  # fmt: skip
    dm = build_datamodule(cfg)
    batch = next(iter(dm.test_dataloader()))
    assert batch.images_a.shape == batch.images_b.shape == (8, 3, 64, 64)
    records = dm.split("test").records
    assert records.a.source(0).endswith("testA/000001.png")
    for images, hues in (
        (batch.images_a, embedded.WARM_HUES),
        (batch.images_b, embedded.COOL_HUES),
    ):
        rgb = _arrays(images).reshape(-1, 3).astype(np.float64)
        saturated = rgb[(rgb.max(1) - rgb.min(1)) > 0.5 * rgb.max(1)]  # the objects
        hue = _hue(saturated)
        gaps = np.min([np.minimum(np.abs(hue - h) % 1, 1 - np.abs(hue - h) % 1) for h in hues], 0)
        assert np.mean(gaps < 0.06) > 0.9


def test_a_resumed_run_continues_the_draws(tmp_path: Path) -> None:
    """The datamodule keeps no random state of its own: torch's generator (which cvbench's
    exact resume restores, cvbench/run/resume.py) and its state_dict give the next epochs."""
    write_pix2pix_folders(tmp_path, 4, split="train")
    dm = _paired(tmp_path, batch_size=2)
    torch.manual_seed(5)
    first = [b.source for b in dm.train_dataloader()]  # epoch 1
    saved, state = torch.get_rng_state(), dm.state_dict()
    want = [b.source for b in dm.train_dataloader()]  # epoch 2
    resumed = _paired(tmp_path, batch_size=2)
    resumed.load_state_dict(state)
    torch.set_rng_state(saved)
    got = [b.source for b in resumed.train_dataloader()]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not all(torch.equal(a, b) for a, b in zip(first, want, strict=True))

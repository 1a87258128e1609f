"""Image synthesis data: the embedded digits and image folders, as ImageBatch, with the fixed
resize that the FID protocol names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes_translation import write_image_folder
from PIL import Image

from cvbench.data.batches import ImageBatch
from cvbench.data.embedded.digits import digits
from cvbench.data.formats.folder_splits import image_splits
from cvbench.data.synthesis import SynthesisDataModule
from cvbench.run.build import build_datamodule


def _arrays(images: torch.Tensor) -> np.ndarray:
    return np.rint(images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def test_digits_are_upsampled_bilinear_to_rgb_32(make_cfg) -> None:
    cfg = make_cfg("data=synthesis/digits", "data.batch_size=5")
    dm = build_datamodule(cfg)
    batch = next(iter(dm.test_dataloader()))
    assert isinstance(batch, ImageBatch) and batch.images.shape == (5, 3, 32, 32)
    test = digits("test")
    assert batch.labels.tolist() == test.targets[:5].tolist()
    assert batch.indices.tolist() == [0, 1, 2, 3, 4]
    for image, index in zip(_arrays(batch.images), range(5), strict=True):
        want = Image.fromarray(test.load(index)).resize((32, 32), Image.Resampling.BILINEAR)
        for channel in range(3):  # gray repeated to RGB
            np.testing.assert_array_equal(image[:, :, channel], np.asarray(want))
    assert dm.num_classes == 10 and dm.class_names == [str(c) for c in range(10)]
    protocol = dm.real_protocol("test")
    assert protocol.startswith("digits test split (360 images, 8x8 px) -> 32x32 px")
    assert "bilinear" in protocol and "gray->RGB" in protocol


def _module(records, **kwargs) -> SynthesisDataModule:
    return SynthesisDataModule(name="images", records=records, **{"batch_size": 8, **kwargs})


def test_flip_mirrors_training_images_only(tmp_path: Path) -> None:
    for split in ("train", "val"):
        write_image_folder(tmp_path, 8, split=split, size=(8, 8))
    dm = _module(lambda split: image_splits(split, root=str(tmp_path)), image_size=8, flip=True)
    torch.manual_seed(1)
    train = next(iter(dm.train_dataloader()))
    assert (train.labels == -1).all() and dm.num_classes is None and dm.class_names is None
    mirrored = []
    for image, index in zip(_arrays(train.images), train.indices.tolist(), strict=True):
        fixed = dm.split("train").image(index)  # resized, not flipped
        assert np.array_equal(image, fixed) or np.array_equal(image, fixed[:, ::-1])
        mirrored.append(not np.array_equal(image, fixed))
    assert any(mirrored) and not all(mirrored)
    val = next(iter(dm.val_dataloader()))
    assert val.indices.tolist() == list(range(8))
    for image, index in zip(_arrays(val.images), val.indices.tolist(), strict=True):
        np.testing.assert_array_equal(image, dm.split("val").image(index))


def test_short_side_resized_then_centre_cropped(tmp_path: Path) -> None:
    written = write_image_folder(tmp_path, 2, split="test", size=(12, 10))  # H 12, W 10
    dm = _module(lambda split: image_splits(split, root=str(tmp_path)), image_size=8)
    batch = next(iter(dm.test_dataloader()))
    image = Image.fromarray(written["0.png"]).resize((8, 10), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(_arrays(batch.images)[0], np.asarray(image)[1:9])
    gray = Image.fromarray(written["1.png"]).resize((8, 10), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(
        _arrays(batch.images)[1], np.repeat(np.asarray(gray)[1:9, :, None], 3, 2)
    )


def test_one_folder_is_split_by_a_seeded_holdout(tmp_path: Path) -> None:
    write_image_folder(tmp_path, 10)

    def names(split: str) -> list[str]:
        records = image_splits(split, root=str(tmp_path), split_dir="", val_size=2, test_size=0.3)
        return [records.name(i) for i in range(len(records))]

    splits = {split: names(split) for split in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [5, 2, 3]
    assert sorted(sum(splits.values(), [])) == sorted(f"{k}.png" for k in range(10))
    assert names("val") == splits["val"]
    with pytest.raises(ValueError, match="val_size=8, test_size=0.3"):
        image_splits("train", root=str(tmp_path), split_dir="", val_size=8, test_size=0.3)


@pytest.mark.parametrize("split_dir", ["{split}", ""])
def test_class_subfolders_give_labels(tmp_path: Path, split_dir: str) -> None:
    for split in ("train", "val", "test") if split_dir else (None,):
        write_image_folder(tmp_path, 4, classes=["cat", "dog", "eel"], split=split)
    kwargs = {"root": str(tmp_path), "split_dir": split_dir, "labelled": True, "test_size": 3}
    dm = _module(lambda split: image_splits(split, **kwargs), image_size=8, batch_size=12)
    batch = next(iter(dm.test_dataloader()))
    records = dm.split("test").records
    assert dm.num_classes == 3 and dm.class_names == ["cat", "dog", "eel"]
    for label, index in zip(batch.labels.tolist(), batch.indices.tolist(), strict=True):
        assert Path(records.source(index)).parent.name == dm.class_names[label]
    wrong = _module(lambda split: image_splits(split, **kwargs), image_size=8, num_classes=4)
    with pytest.raises(ValueError, match="3 classes .* but data.num_classes=4"):
        wrong.split("train")

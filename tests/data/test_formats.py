"""Readers of on-disk formats (CIFAR pickles, MNIST IDX, image folders); their data YAMLs are
tested by ``test_data_contracts.py``.

Every test writes a tiny dataset in the real format into ``tmp_path``: pickles with bytes
keys as in the official CIFAR files, IDX files raw and gzipped, PNG and JPEG files.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from fakes import (
    write_cifar10,
    write_cifar100,
    write_idx,
    write_image,
    write_imagefolder,
    write_mnist,
)

from cvbench.data.formats.cifar import cifar
from cvbench.data.formats.imagefolder import imagefolder
from cvbench.data.formats.mnist import mnist
from cvbench.data.records import holdout_split

CONF_DATA = Path(__file__).resolve().parents[2] / "cvbench" / "conf" / "data"
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _as_images(data: np.ndarray) -> np.ndarray:
    """Official CIFAR rows (N, 3072) as (N, 32, 32, 3)."""
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


# ---------------------------------------------------------------- CIFAR


def test_cifar10_splits(tmp_path: Path) -> None:
    truth = write_cifar10(tmp_path)
    train = cifar("train", root=str(tmp_path), val_size=5, seed=0)
    val = cifar("val", root=str(tmp_path), val_size=5, seed=0)
    test = cifar("test", root=str(tmp_path))

    assert train.images.shape == (25, 32, 32, 3) and train.images.dtype == np.uint8
    assert val.images.shape == (5, 32, 32, 3)
    assert train.targets.dtype == np.int64
    assert train.classes[:3] == ["airplane", "automobile", "bird"] and len(train.classes) == 10

    full = _as_images(truth["train_data"])
    for split, records in (("train", train), ("val", val)):
        chosen = holdout_split(30, split, val_size=5, seed=0)
        np.testing.assert_array_equal(records.images, full[chosen])
        np.testing.assert_array_equal(records.targets, truth["train_labels"][chosen])
    train_sources = {train.source(i) for i in range(len(train))}
    val_sources = {val.source(i) for i in range(len(val))}
    assert not train_sources & val_sources
    expected = {
        f"{tmp_path / 'cifar-10-batches-py' / f'data_batch_{k}'}, record {j}"
        for k in range(1, 6)
        for j in range(6)
    }
    assert train_sources | val_sources == expected

    np.testing.assert_array_equal(test.images, _as_images(truth["test_data"]))
    np.testing.assert_array_equal(test.targets, truth["test_labels"])
    assert test.source(3) == f"{tmp_path / 'cifar-10-batches-py' / 'test_batch'}, record 3"


def test_cifar10_source_names_batch_and_record(tmp_path: Path) -> None:
    truth = write_cifar10(tmp_path)
    train = cifar("train", root=str(tmp_path), val_size=0)
    assert len(train) == 30
    assert train.source(17).endswith("cifar-10-batches-py/data_batch_3, record 5")
    np.testing.assert_array_equal(train.load(17), _as_images(truth["train_data"])[17])
    with pytest.raises(ValueError, match="val_size=0"):
        cifar("val", root=str(tmp_path), val_size=0)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    truth = write_cifar100(tmp_path)
    train = cifar("train", root=str(tmp_path), variant="cifar100", val_size=0.25, seed=1)
    val = cifar("val", root=str(tmp_path), variant="cifar100", val_size=0.25, seed=1)
    test = cifar("test", root=str(tmp_path), variant="cifar100")

    assert len(train.classes) == 100 and train.classes[7] == "fine_7"
    assert (len(train), len(val), len(test)) == (15, 5, 6)
    chosen = holdout_split(20, "val", val_size=0.25, seed=1)
    np.testing.assert_array_equal(val.images, _as_images(truth["train_data"])[chosen])
    np.testing.assert_array_equal(val.targets, truth["train_labels"][chosen])
    np.testing.assert_array_equal(test.targets, truth["test_labels"])
    assert test.images.shape == (6, 32, 32, 3)
    assert val.source(0).startswith(str(tmp_path / "cifar-100-python" / "train"))


@pytest.mark.parametrize(
    "variant, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_cifar_missing(tmp_path: Path, variant: str, folder: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        cifar("train", root=str(tmp_path), variant=variant)
    message = str(info.value)
    assert str(tmp_path / folder) in message
    assert "never downloads" in message and "python version" in message


def test_cifar_missing_one_batch(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        cifar("train", root=str(tmp_path))
    assert len(cifar("test", root=str(tmp_path))) == 8


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_mnist_splits(tmp_path: Path, gz: bool, layout: str) -> None:
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    truth = write_mnist(folder, gz=gz)
    train = mnist("train", root=str(tmp_path), val_size=4)
    val = mnist("val", root=str(tmp_path), val_size=4)
    test = mnist("test", root=str(tmp_path))

    assert train.images.shape == (20, 28, 28) and train.images.dtype == np.uint8
    assert train.targets.dtype == np.int64
    assert train.classes == [str(d) for d in range(10)]
    for split, records in (("train", train), ("val", val)):
        chosen = holdout_split(24, split, val_size=4, seed=0)
        np.testing.assert_array_equal(records.images, truth["train_images"][chosen])
        np.testing.assert_array_equal(records.targets, truth["train_labels"][chosen])
    train_sources = {train.source(i) for i in range(len(train))}
    val_sources = {val.source(i) for i in range(len(val))}
    assert not train_sources & val_sources and len(train_sources | val_sources) == 24

    np.testing.assert_array_equal(test.images, truth["test_images"])
    np.testing.assert_array_equal(test.targets, truth["test_labels"])
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    assert test.source(2) == f"{folder / name}, record 2"


def test_fashion_mnist_names(tmp_path: Path) -> None:
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    write_mnist(tmp_path / "MNIST" / "raw", gz=False)  # must not be picked up
    test = mnist("test", root=str(tmp_path), variant="fashion_mnist")
    assert test.classes == FASHION_NAMES
    assert "FashionMNIST" in test.source(0)


def test_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        mnist("train", root=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message
    assert "never downloads" in message


def test_mnist_bad_magic_names_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.zeros((8, 28, 28), np.uint8))  # an images file where labels belong
    with pytest.raises(ValueError, match="magic number") as info:
        mnist("test", root=str(tmp_path))
    assert str(labels) in str(info.value)


def test_mnist_truncated_names_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(payload[:-100]))
    with pytest.raises(ValueError, match="truncated") as info:
        mnist("train", root=str(tmp_path))
    assert str(images) in str(info.value)


# ---------------------------------------------------------------- image folders


def test_imagefolder_train(tmp_path: Path) -> None:
    write_imagefolder(tmp_path)
    train = imagefolder("train", root=str(tmp_path))
    assert train.classes == ["cat", "dog", "zebra"]
    assert [Path(train.source(i)).name for i in range(len(train))] == [
        "a.jpg",
        "b.png",
        "c.PNG",
        "x.png",
        "z.jpeg",
    ]
    assert train.targets.tolist() == [0, 0, 0, 1, 2] and train.targets.dtype == np.int64
    jpeg, png, gray, rgba = (train.load(i) for i in range(4))
    assert jpeg.shape == (30, 40, 3) and jpeg.dtype == np.uint8
    expected = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(png, expected)  # PNG is lossless
    assert gray.shape == (30, 40) and gray.dtype == np.uint8
    assert rgba.shape == (30, 40, 3)


def test_imagefolder_eval_splits_share_train_classes(tmp_path: Path) -> None:
    write_imagefolder(tmp_path)
    for split in ("val", "test"):
        records = imagefolder(split, root=str(tmp_path))
        assert records.classes == ["cat", "dog", "zebra"]
        assert records.targets.tolist() == [0, 1, 1]
        assert records.source(1) == str(tmp_path / split / "dog" / "2.jpg")


def test_imagefolder_unknown_class(tmp_path: Path) -> None:
    write_imagefolder(tmp_path)
    write_image(tmp_path / "val/lion/1.png", "RGB")
    with pytest.raises(ValueError, match="lion"):
        imagefolder("val", root=str(tmp_path))


def test_imagefolder_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        imagefolder("train", root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / "train") in str(info.value)
    write_imagefolder(tmp_path)
    (tmp_path / "test" / "cat" / "1.png").unlink()
    (tmp_path / "test" / "cat").rmdir()
    assert imagefolder("test", root=str(tmp_path)).targets.tolist() == [1, 1]
    (tmp_path / "val").rename(tmp_path / "validation")
    with pytest.raises(FileNotFoundError) as info:
        imagefolder("val", root=str(tmp_path))
    assert str(tmp_path / "val") in str(info.value)


def test_imagefolder_corrupt_image_names_file(tmp_path: Path) -> None:
    write_imagefolder(tmp_path)
    bad = tmp_path / "train" / "cat" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    train = imagefolder("train", root=str(tmp_path))
    with pytest.raises(ValueError, match="b.png") as info:
        train.load(1)
    assert str(bad) in str(info.value)
    assert info.value.__cause__ is not None

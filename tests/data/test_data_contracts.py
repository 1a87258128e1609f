"""Every data YAML yields valid batches of the type its ``contract:`` declares.

The data YAMLs are found by globbing ``cvbench/conf/data``: a new one is tested without an edit
here, and fails :func:`test_data_yaml_declares_a_contract` until it says how to make its files
(see ``tests/data_contracts.py``). Each YAML is composed for real (``make_cfg``) on tiny files
written in its real on-disk layout, built with ``build_datamodule`` and batched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from conftest import options
from data_contracts import data_config, fake_writer
from omegaconf import DictConfig
from torch import Tensor
from torch.utils.data import default_collate

from cvbench.data import batches, records
from cvbench.data.datamodule import collate_classification
from cvbench.run.build import build_datamodule

DATA = options("data")


def _samples(field: Tensor | list[Tensor]) -> list[Tensor]:
    return list(field) if isinstance(field, Tensor) else field


def _check_indices(indices: Tensor, num_records: int, size: int) -> None:
    assert indices.dtype == torch.int64 and indices.shape == (size,)
    assert ((indices >= 0) & (indices < num_records)).all()


def _check_classification(batch: batches.ClassificationBatch, dm, split: str) -> None:
    images, targets, indices = batch
    assert images.dtype == torch.float32 and images.ndim == 4 and torch.isfinite(images).all()
    assert targets.dtype == torch.int64 and targets.shape == (len(images),)
    assert ((targets >= 0) & (targets < dm.num_classes)).all()
    _check_indices(indices, len(dm.split(split).records), len(images))


def _check_detection(batch: batches.DetectionBatch, dm, split: str) -> None:
    images, targets, indices = batch
    assert isinstance(images, list) and len(images) == len(targets)
    for image, target in zip(images, targets, strict=True):
        assert image.dtype == torch.float32 and image.shape[0] == 3
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        boxes, labels = target["boxes"].numpy(), target["labels"].numpy()
        assert boxes.shape == (len(labels), 4) and labels.dtype == np.int64
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        assert np.all((labels >= 1) & (labels <= dm.num_classes))
        assert np.all(boxes[:, 2] <= image.shape[2]) and np.all(boxes[:, 3] <= image.shape[1])
        if dm.masks:
            assert target["masks"].shape == (len(labels), *image.shape[1:])
    _check_indices(indices, len(dm.split(split).records), len(images))


def _check_masks(batch: batches.MaskBatch, dm, split: str) -> None:
    images, masks, indices = batch
    split_records = dm.split(split).records
    for image, mask, index in zip(_samples(images), _samples(masks), indices.tolist(), strict=True):
        assert image.dtype == torch.float32 and image.shape == (3, *mask.shape)
        assert mask.dtype == torch.int64
        assert (((mask >= 0) & (mask < dm.num_classes)) | (mask == dm.ignore_index)).all()
        if split != "train":  # evaluation: the record's own label map, whole
            np.testing.assert_array_equal(mask.numpy(), split_records.load_mask(index))
    _check_indices(indices, len(split_records), len(indices))
    assert len(dm.class_names) == dm.num_classes


def _check_pairs(batch: batches.PairBatch, dm, split: str) -> None:
    inputs, targets, images = _samples(batch.input), _samples(batch.target), _samples(batch.image)
    assert len(inputs) == len(targets) == len(images)
    for lr, target, hr in zip(inputs, targets, images, strict=True):
        assert lr.dtype == target.dtype == hr.dtype == torch.float32
        assert hr.shape[0] == 3 and float(hr.min()) >= 0.0 and float(hr.max()) <= 1.0
        assert tuple(hr.shape[1:]) == (dm.scale * lr.shape[1], dm.scale * lr.shape[2])
        assert target.shape[1:] == hr.shape[1:]
    _check_indices(batch.index, len(dm.split(split).records), len(images))


def _check_style(batch: batches.StyleBatch, dm, split: str) -> None:
    samples = dm.split(split)
    num_content, num_styles = len(samples.content_records), len(samples.style_records)
    size = len(batch.index)
    for images in (batch.content, batch.style):
        assert images.dtype == torch.float32 and images.shape[:2] == (size, 3)
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    _check_indices(batch.content_index, num_content, size)
    _check_indices(batch.style_index, num_styles, size)
    assert batch.index.tolist() == (batch.content_index * num_styles + batch.style_index).tolist()
    if split != "train":  # evaluation: the grid in order, content at data.eval_size
        assert batch.index.tolist() == list(range(size))
        assert batch.content.shape[2:] == (dm.eval_size, dm.eval_size)


def _check_unit_images(images: Tensor, size: int) -> None:
    assert images.dtype == torch.float32 and images.shape[:2] == (size, 3)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0


def _check_images(batch: batches.ImageBatch, dm, split: str) -> None:
    size = len(batch.indices)
    _check_unit_images(batch.images, size)
    assert batch.images.shape[2:] == (dm.image_size, dm.image_size)
    labels = batch.labels
    assert labels.dtype == torch.int64 and labels.shape == (size,)
    if dm.num_classes is None:
        assert (labels == -1).all()
    else:
        assert ((labels >= 0) & (labels < dm.num_classes)).all()
        assert len(dm.class_names) == dm.num_classes
    _check_indices(batch.indices, len(dm.split(split).records), size)
    if split != "train":  # evaluation: in index order
        assert batch.indices.tolist() == list(range(size))


def _check_translation(batch: batches.TranslationBatch, dm, split: str) -> None:
    size = len(batch.index)
    for images in (batch.source, batch.target):
        _check_unit_images(images, size)
        assert images.shape[2:] == (dm.crop_size, dm.crop_size)
    labels = batch.label_map
    assert labels.dtype == torch.int64 and labels.shape == (size, dm.crop_size, dm.crop_size)
    if dm.num_classes is None:
        assert (labels == -1).all()
    else:
        assert ((labels >= -1) & (labels < dm.num_classes)).all() and (labels >= 0).any()
    _check_indices(batch.index, len(dm.split(split).records), size)
    if split != "train":
        assert batch.index.tolist() == list(range(size))


def _check_unpaired(batch: batches.UnpairedBatch, dm, split: str) -> None:
    size = len(batch.indices_a)
    for images in (batch.images_a, batch.images_b):
        _check_unit_images(images, size)
        assert images.shape[2:] == (dm.crop_size, dm.crop_size)
    records = dm.split(split).records
    _check_indices(batch.indices_a, len(records.a), size)
    _check_indices(batch.indices_b, len(records.b), size)
    if split != "train":  # evaluation: sample k is (k % nA, k % nB)
        k = torch.arange(size)
        assert batch.indices_a.tolist() == (k % len(records.a)).tolist()
        assert batch.indices_b.tolist() == (k % len(records.b)).tolist()


def _check_text(batch: batches.TextBatch, dm, split: str) -> None:
    size = len(batch.indices)
    images = batch.images
    assert images.dtype == torch.float32 and images.ndim == 4 and len(images) == size
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert batch.widths.dtype == torch.int64 and batch.widths.shape == (size,)
    assert (batch.widths >= 1).all() and int(batch.widths.max()) == images.shape[3]
    assert len(batch.texts) == len(batch.names) == size
    lengths, targets = batch.lengths, batch.targets
    assert targets.dtype == lengths.dtype == torch.int64 and targets.shape[0] == size
    for text, row, length in zip(batch.texts, targets, lengths.tolist(), strict=True):
        assert dm.charset.decode(row[:length].tolist()) == text  # codes 1..V, then 0 (blank)
        assert (row[:length] >= 1).all() and (row[length:] == 0).all()
    _check_indices(batch.indices, len(dm.split(split).records), size)
    if split != "train":
        assert batch.indices.tolist() == list(range(size))


def _check_text_detection(batch: batches.TextDetectionBatch, dm, split: str) -> None:
    size = len(batch.indices)
    _check_unit_images(batch.images, size)
    assert len(batch.polygons) == len(batch.ignore) == len(batch.texts) == len(batch.names) == size
    height, width = batch.images.shape[2:]
    for polygons, ignore, texts in zip(batch.polygons, batch.ignore, batch.texts, strict=True):
        assert polygons.dtype == torch.float32 and polygons.shape[1:] == (4, 2)
        assert ignore.dtype == torch.bool and ignore.shape == (len(polygons),) == (len(texts),)
        assert [t == "###" for t in texts] == ignore.tolist()
        if split != "train":  # evaluation: nothing is cropped away
            assert (polygons[..., 0] >= -1).all() and (polygons[..., 0] <= width + 1).all()
            assert (polygons[..., 1] >= -1).all() and (polygons[..., 1] <= height + 1).all()
    assert batch.scales.dtype == torch.float32 and batch.scales.shape == (size, 2)
    _check_indices(batch.indices, len(dm.split(split).records), size)
    if split != "train":
        assert batch.indices.tolist() == list(range(size))


CHECKS: dict[type, Callable[..., None]] = {
    batches.ClassificationBatch: _check_classification,
    batches.DetectionBatch: _check_detection,
    batches.MaskBatch: _check_masks,
    batches.PairBatch: _check_pairs,
    batches.StyleBatch: _check_style,
    batches.ImageBatch: _check_images,
    batches.TranslationBatch: _check_translation,
    batches.UnpairedBatch: _check_unpaired,
    batches.TextBatch: _check_text,
    batches.TextDetectionBatch: _check_text_detection,
}
"""What a valid batch of each type is; a contract may name only these types."""


def _check_shapes(batch: tuple, shapes: DictConfig) -> None:
    """Each field's per-sample shape is the declared one (None: any size on that axis)."""
    for field, declared in shapes.items():
        for sample in _samples(getattr(batch, field)):
            assert len(sample.shape) == len(declared), (field, tuple(sample.shape), declared)
            for got, want in zip(sample.shape, declared, strict=True):
                assert want is None or got == want, (field, tuple(sample.shape), list(declared))


@pytest.mark.parametrize("option", DATA)
def test_data_yaml_declares_a_contract(make_cfg, option: str) -> None:
    """The guard: a data YAML whose contract the tests cannot use fails here, by name."""
    where = f"cvbench/conf/data/{option}.yaml"
    contract = make_cfg(f"data={option}").data.get("contract")
    assert contract is not None, f"{where} has no contract: node (see tests/data_contracts.py)"
    batch_type = getattr(batches, str(contract.get("batch")), None)
    assert batch_type in CHECKS, (
        f"{where}: contract.batch must be one of {[t.__name__ for t in CHECKS]}"
    )
    protocol = getattr(records, str(contract.get("records")), None)
    assert protocol is not None and getattr(protocol, "_is_protocol", False), (
        f"{where}: contract.records must name a Protocol of cvbench.data.records"
    )
    shapes = contract.get("shapes")
    assert shapes and set(shapes) <= set(batch_type._fields), (
        f"{where}: contract.shapes must give per-sample shapes of fields of {batch_type.__name__}"
    )
    embedded, fakes = contract.get("embedded", False), contract.get("fake")
    assert (embedded is True) != bool(fakes), (
        f"{where}: the contract needs either fake (writers of its files) or embedded: true"
    )
    for call in fakes or ():
        assert "root" in call, f"{where}: every contract.fake call needs root"
        fake_writer(call.writer)


@pytest.mark.parametrize("option", DATA)
def test_data_yaml_gives_batches(make_cfg, option: str) -> None:
    cfg = data_config(make_cfg, option)
    contract = cfg.data.contract
    batch_type = getattr(batches, contract.batch)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    assert isinstance(datamodule.split("train").records, getattr(records, contract.records))
    for split, loader in (
        ("train", datamodule.train_dataloader()),
        ("val", datamodule.val_dataloader()),
    ):
        batch = next(iter(loader))
        assert type(batch) is batch_type, (split, type(batch))
        CHECKS[batch_type](batch, datamodule, split)
        if split == "train":
            _check_shapes(batch, contract.shapes)


def test_classification_batch_is_torchs_default_collation() -> None:
    """The named batch holds what torch's default collation gave before, and unpacks as it."""
    samples = [(torch.rand(1, 4, 4), 3, 0), (torch.rand(1, 4, 4), 7, 5)]
    batch = collate_classification(samples)
    assert isinstance(batch, batches.ClassificationBatch)
    for ours, torchs in zip(batch, default_collate(samples), strict=True):
        assert ours.dtype == torchs.dtype
        torch.testing.assert_close(ours, torchs, rtol=0, atol=0)
    images, targets, indices = batch
    assert targets.tolist() == [3, 7] and indices.dtype == torch.int64

"""Label-map files and value checks: PIL writes the PNGs in each mode datasets publish them in."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvbench.data import label_maps
from cvbench.data.label_maps import (
    check_binary_trap,
    check_label_values,
    label_values,
    read_label_map,
    reduce_zero_label,
)

LABELS = np.array([[0, 1, 2, 3], [20, 255, 0, 7]], dtype=np.uint8)


def test_doctests() -> None:
    result = doctest.testmod(label_maps)
    assert result.attempted >= 2 and result.failed == 0


def test_index_png(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray(LABELS, mode="L").save(path)
    values = read_label_map(path)
    assert values.dtype == np.int64 and values.shape == (2, 4)
    np.testing.assert_array_equal(values, LABELS)


def test_palette_png_reads_indices_not_colours(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    image = Image.fromarray(LABELS, mode="P")
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1] = (128, 0, 0)  # VOC's colour of class 1, aeroplane
    palette[255] = (224, 224, 192)  # VOC's void colour
    image.putpalette(palette.ravel().tolist())
    image.save(path)
    with Image.open(path) as check:
        assert check.mode == "P"  # what is on disk really is a palette image
        assert check.convert("RGB").getpixel((1, 0)) == (128, 0, 0)
    np.testing.assert_array_equal(read_label_map(path), LABELS)


def test_16bit_png(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    wide = np.array([[0, 300], [1000, 65535]], dtype=np.uint16)
    Image.fromarray(wide).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I;16")
    values = read_label_map(path)
    assert values.dtype == np.int64
    np.testing.assert_array_equal(values, wide.astype(np.int64))


def test_one_bit_png(tmp_path: Path) -> None:
    path = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False], [False, True]])).save(path)
    np.testing.assert_array_equal(read_label_map(path), [[1, 0], [0, 1]])


def test_rgb_rejected_naming_the_file(tmp_path: Path) -> None:
    colour = tmp_path / "colour.png"
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    pixels[0, 0] = (128, 0, 0)
    Image.fromarray(pixels).save(colour)
    with pytest.raises(ValueError, match="RGB image") as info:
        read_label_map(colour)
    assert str(colour) in str(info.value) and "colour-coded" in str(info.value)
    gray_as_rgb = tmp_path / "gray_rgb.png"
    Image.fromarray(np.repeat(LABELS[..., None], 3, axis=2)).save(gray_as_rgb)
    with pytest.raises(ValueError, match="8-bit gray PNG") as info:
        read_label_map(gray_as_rgb)
    assert str(gray_as_rgb) in str(info.value)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    with pytest.raises(ValueError, match="cannot read label map") as info:
        read_label_map(broken)
    assert str(broken) in str(info.value)
    with pytest.raises(FileNotFoundError, match="gone.png"):
        read_label_map(tmp_path / "gone.png")


def test_reduce_zero_label_known_answer() -> None:
    mask = np.array([[0, 1, 2], [150, 255, 0]], dtype=np.uint8)
    out = reduce_zero_label(mask)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[255, 0, 1], [149, 255, 255]])
    np.testing.assert_array_equal(reduce_zero_label(np.array([0, 5, 9]), 9), [9, 4, 9])


def test_label_values() -> None:
    np.testing.assert_array_equal(label_values(LABELS), [0, 1, 2, 3, 7, 20, 255])
    np.testing.assert_array_equal(label_values(np.array([-3, 70000, -3])), [-3, 70000])
    assert label_values(np.zeros((0, 3), dtype=np.int64)).shape == (0,)


def test_check_label_values() -> None:
    check_label_values([0, 4, 255], num_classes=5, ignore_index=255, where="x")
    with pytest.raises(ValueError) as info:
        check_label_values([0, 5, 255, 7], num_classes=5, ignore_index=255, where="masks/a.png")
    message = str(info.value)
    assert message.startswith("masks/a.png: label value 5 is outside [0, 5)")
    assert "bad values: 5, 7" in message and "data.num_classes" in message
    with pytest.raises(ValueError, match="label value -1"):
        check_label_values(np.array([-1, 0]), num_classes=5, ignore_index=255, where="x")
    with pytest.raises(ValueError, match="label value 255"):
        check_label_values([255], num_classes=5, ignore_index=-1, where="x")


def test_binary_trap_message_contains_the_fix() -> None:
    with pytest.raises(ValueError) as info:
        check_binary_trap({0, 255}, num_classes=2, ignore_index=255, where="data 'cells' train")
    message = str(info.value)
    assert message.startswith("data 'cells' train: ")
    assert "0/255 binary-mask trap" in message and "value_map={255: 1}" in message
    for fine in ({0, 1}, {0, 1, 255}, {0}, set()):
        check_binary_trap(fine, num_classes=2, ignore_index=255, where="x")
    check_binary_trap({0, 255}, num_classes=3, ignore_index=255, where="x")  # not binary
    check_binary_trap({0, 255}, num_classes=2, ignore_index=-1, where="x")  # 255 is no void

"""Text recognition data: the charset, the gt.txt and LMDB readers on real files the tests write
(and each bad input as one line naming the file and the line or key), the embedded word
generator (deterministic; the held-out font family never in train/val/test) and the
datamodule's batches (resize, right padding, widths, codes, extra test splits)."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF
from fakes_ocr import fake_word, lmdb_entries, write_lmdb, write_lmdb_entries, write_text_lines
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from cvbench.data.charset import Charset, charset_from_file
from cvbench.data.embedded import words
from cvbench.data.formats.lmdb_text import lmdb_text
from cvbench.data.formats.text_lines import text_lines
from cvbench.data.text import TextRecognitionDataModule, resize_to_height

LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)
    return message


# --- charset -------------------------------------------------------------------------------


def test_charset_codes_start_at_one_and_decode_skips_the_blank() -> None:
    charset = Charset("0123456789", name="digits")
    assert charset.encode("907") == [10, 1, 8]
    assert charset.decode([0, 10, 0, 1, 1, 8, 0]) == "9007"  # no CTC merging here
    assert len(charset) == 10 and charset.num_classes == 11 and charset.name == "digits"


def test_encode_error_names_character_position_and_charset() -> None:
    with pytest.raises(ValueError) as err:
        Charset(LOWER, name="lower_alnum").encode("abC1")
    _one_line(err, "'C'", "position 2", "'abC1'", "lower_alnum", "36 characters")


@pytest.mark.parametrize(
    ("chars", "num_classes", "message"),
    [("abca", None, "'a' appears twice"), ("abc", 3, "num_classes=4"), ("", None, "no characters")],
)
def test_charset_refuses_bad_definitions(chars: str, num_classes: int | None, message: str) -> None:
    with pytest.raises(ValueError) as err:
        Charset(chars, name="mine", num_classes=num_classes)
    _one_line(err, "mine", message)


def test_decode_refuses_a_code_outside_the_charset() -> None:
    with pytest.raises(ValueError, match="code 4 is outside 0..3"):
        Charset("abc").decode([1, 4])


@pytest.mark.parametrize(
    ("option", "chars"),
    [
        ("digits", string.digits),
        ("lower_alnum", string.digits + string.ascii_lowercase),
        ("cased_alnum", string.digits + string.ascii_lowercase + string.ascii_uppercase),
        ("printable", "".join(c for c in string.printable if not c.isspace())),
    ],
)
def test_charset_yamls(option: str, chars: str) -> None:
    charset = instantiate(OmegaConf.load(CONF / "charset" / f"{option}.yaml"))
    assert charset.chars == chars and charset.num_classes == len(chars) + 1
    assert charset.name == option


def test_charset_from_file(tmp_path: Path) -> None:
    one_line, per_line = tmp_path / "one.txt", tmp_path / "lines.txt"
    one_line.write_text("aé€\n", encoding="utf-8")
    per_line.write_bytes("\ufeffa\r\n \r\n€\n\n".encode())  # BOM, CRLF, a space, blank lines
    assert charset_from_file(str(one_line), num_classes=4).chars == "aé€"
    assert charset_from_file(str(per_line), num_classes=4).chars == "a €"
    with pytest.raises(ValueError) as err:
        charset_from_file(str(one_line), num_classes=10)
    _one_line(err, str(one_line), "num_classes=10", "3 characters")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("abé".encode("latin-1"))
    with pytest.raises(ValueError) as err:
        charset_from_file(str(bad), num_classes=4)
    _one_line(err, str(bad), "not UTF-8")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("a\nbc\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        charset_from_file(str(mixed), num_classes=4)
    _one_line(err, str(mixed), "line 2", "'bc'")


# --- gt.txt folders ------------------------------------------------------------------------


def test_text_lines_reads_what_was_written(tmp_path: Path) -> None:
    written = write_text_lines(tmp_path, 4, split="test", texts=["Hi", "a b", "x\ty", "42"])
    records = text_lines("test", root=str(tmp_path))
    assert len(records) == 4
    for i, (name, (image, text)) in enumerate(written.items()):
        assert records.name(i) == name and records.text(i) == text
        rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        np.testing.assert_array_equal(records.load(i), rgb)
        assert name in records.source(i)


def test_text_lines_with_a_configured_gt_file_and_image_dir(tmp_path: Path) -> None:
    Image.fromarray(fake_word(1)).save(tmp_path / "w.png")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "iiit5k.txt").write_text("w.png\tcvbench\n", encoding="utf-8")
    records = text_lines("iiit5k", root=str(tmp_path), gt_file="labels/{split}.txt", image_dir="")
    assert records.text(0) == "cvbench" and records.load(0).shape == (20, 40, 3)


@pytest.mark.parametrize(
    ("content", "parts"),
    [
        (b"a.png\tok\nb.png only a space\n", ("line 2", "no tab")),
        (b"a.png\tok\n\nb.png\t \n", ("line 3", "empty transcription")),
        ("a.png\tok\nb.png\tcaf\u00e9\n".encode("latin-1"), ("line 2", "not UTF-8")),
        (b"a.png\tok\nc.png\tgone\n", ("'c.png'", "does not exist")),
    ],
)
def test_text_lines_bad_input_is_one_line(tmp_path: Path, content: bytes, parts: tuple) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(fake_word(0)).save(folder / name)
    (folder / "gt.txt").write_bytes(content)
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        text_lines("train", root=str(tmp_path))
    _one_line(err, str(folder / "gt.txt"), *parts)


# --- LMDB ----------------------------------------------------------------------------------


def test_lmdb_reads_what_was_written(tmp_path: Path) -> None:
    written = write_lmdb(tmp_path, 3, split="evaluation/IIIT5k", texts=["Hello", "wörld", "7"])
    records = lmdb_text("evaluation/IIIT5k", root=str(tmp_path))
    assert len(records) == 3
    for i, (key, (image, text)) in enumerate(written.items()):
        assert records.name(i) == key == f"image-{i + 1:09d}"
        assert records.text(i) == text
        rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        np.testing.assert_array_equal(records.load(i), rgb)  # PNG: lossless


def test_lmdb_jpeg_images(tmp_path: Path) -> None:
    image = np.full((16, 30, 3), 90, np.uint8)
    write_lmdb_entries(tmp_path / "db", lmdb_entries([(image, "ok")], kind="JPEG"))
    loaded = lmdb_text("db", root=str(tmp_path)).load(0)
    assert loaded.shape == (16, 30, 3) and np.abs(loaded.astype(int) - 90).max() <= 2


def _entries(*, drop: bytes = b"", **replace: bytes) -> dict[bytes, bytes]:
    entries = lmdb_entries([(fake_word(k), text) for k, text in enumerate(["ab", "cd"])])
    entries.pop(drop, None)
    entries.update({key.replace("_", "-").encode(): value for key, value in replace.items()})
    return entries


@pytest.mark.parametrize(
    ("entries", "parts"),
    [
        (_entries(drop=b"num-samples"), ("no key 'num-samples'",)),
        (_entries(num_samples=b"two"), ("'num-samples'", "ASCII integer")),
        (_entries(drop=b"label-000000002"), ("'label-000000002' is missing",)),
        (_entries(**{"label-000000001": b"caf\xe9"}), ("'label-000000001'", "not UTF-8")),
        (_entries(**{"label-000000002": b""}), ("'label-000000002'", "empty label")),
    ],
)
def test_lmdb_bad_labels_are_one_line(tmp_path: Path, entries: dict, parts: tuple) -> None:
    write_lmdb_entries(tmp_path / "train", entries)
    with pytest.raises(ValueError) as err:
        lmdb_text("train", root=str(tmp_path))
    _one_line(err, str(tmp_path / "train"), *parts)


@pytest.mark.parametrize(
    ("entries", "part"),
    [
        (_entries(drop=b"image-000000002"), "'image-000000002' is missing"),
        (_entries(**{"image-000000002": b"\x89PNG not really"}), "cannot decode the image"),
    ],
)
def test_lmdb_bad_images_are_one_line(tmp_path: Path, entries: dict, part: str) -> None:
    write_lmdb_entries(tmp_path / "train", entries)
    records = lmdb_text("train", root=str(tmp_path))
    assert records.load(0).shape == (20, 40, 3)
    with pytest.raises(ValueError) as err:
        records.load(1)
    _one_line(err, str(tmp_path / "train"), "image-000000002", part)


def test_lmdb_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        lmdb_text("nowhere", root=str(tmp_path))
    _one_line(err, str(tmp_path / "nowhere"), "data.mdb")


# --- embedded words ------------------------------------------------------------------------

TINY = {"train": 6, "val": 3, "test": 3, "test_unseen_font": 4}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_words_are_deterministic_real_files(tmp_path: Path) -> None:
    one = words.words_folder(root=str(tmp_path / "a"), num_images=TINY, seed=3)
    two = words.words_folder(root=str(tmp_path / "b"), num_images=TINY, seed=3)
    other = words.words_folder(root=str(tmp_path / "c"), num_images=TINY, seed=4)
    assert one.name == two.name != other.name  # the folder is named by the parameters
    files = _files(one)
    assert files == _files(two) and files != _files(other)
    assert sum(name.endswith(".png") for name in files) == sum(TINY.values())
    charset = Charset(LOWER)
    for split, count in TINY.items():
        records = words.synth_words(split, root=str(tmp_path / "a"), num_images=TINY, seed=3)
        assert len(records) == count
        for i in range(count):
            image, text = records.load(i), records.text(i)
            assert image.shape[0] == 32 and image.shape[1] >= 4
            assert 1 <= len(text) <= words.MAX_LENGTH and charset.unknown(text) is None


def test_the_unseen_font_family_is_only_in_its_split(monkeypatch, tmp_path: Path) -> None:
    """Every image is rendered by render_word with the font it names: record them in the
    generator's split order."""
    used: list[str] = []
    real = words.render_word

    def recording(text: str, font_name: str, rng: np.random.Generator, height: int = 32):
        used.append(font_name)
        return real(text, font_name, rng, height)

    monkeypatch.setattr(words, "render_word", recording)
    counts = {"train": 40, "val": 5, "test": 5, "test_unseen_font": 10}
    words.words_folder(root=str(tmp_path), num_images=counts)
    ends = np.cumsum([counts[split] for split in words.SPLITS])
    seen, unseen = used[: ends[2]], used[ends[2] :]
    assert len(used) == ends[-1] and all(font.startswith("STIX") for font in unseen)
    assert not any(font.startswith("STIX") for font in seen)
    assert {f.split("-")[0].removesuffix(".ttf") for f in seen} == {
        "DejaVuSans",
        "DejaVuSansMono",
        "DejaVuSerif",
    }
    for font in set(used):
        assert (words.font_dir() / font).is_file()


def test_mixed_letters_render_capitals() -> None:
    rng = np.random.default_rng(0)
    texts = [words.random_text(rng, "mixed") for _ in range(300)]
    assert any(c.isupper() for t in texts for c in t)
    rng = np.random.default_rng(0)
    assert all(t == t.lower() for t in (words.random_text(rng) for _ in range(300)))


# --- datamodule ----------------------------------------------------------------------------


def _datamodule(root: Path, **kwargs) -> TextRecognitionDataModule:
    defaults = {
        "name": "fake",
        "records": lambda split: text_lines(split, root=str(root)),
        "charset": Charset(LOWER, name="lower_alnum"),
        "batch_size": 8,
        "max_width": 64,
    }
    return TextRecognitionDataModule(**{**defaults, **kwargs})


def test_batches_resize_pad_right_and_encode(tmp_path: Path) -> None:
    # heights 20, widths 24, 38, 52, 66 -> 32 rows: widths 38, 61, 83 -> 64, 106 -> 64
    written = write_text_lines(tmp_path, 4, split="val", texts=["ab", "Zz", "9", "hello"])
    dm = _datamodule(tmp_path, lowercase=True)
    batch = next(iter(dm.val_dataloader()))
    assert batch.widths.tolist() == [38, 61, 64, 64]
    assert batch.images.shape == (4, 1, 32, 64) and batch.images.dtype == torch.float32
    assert batch.texts == ["ab", "zz", "9", "hello"] and batch.lengths.tolist() == [2, 2, 1, 5]
    assert batch.targets.tolist()[:2] == [[11, 12, 0, 0, 0], [36, 36, 0, 0, 0]]
    assert batch.names == list(written) and batch.indices.tolist() == [0, 1, 2, 3]
    for image, width in zip(batch.images, batch.widths.tolist(), strict=True):
        padding = image[:, :, width:]
        assert torch.equal(padding, image[:, :, width - 1 : width].expand_as(padding))
    # the first crop, made gray (ITU-R 601 luma) and resized by hand
    first = next(iter(written.values()))[0]
    luma = np.round(first.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]))
    expected = resize_to_height(luma.astype(np.uint8)[:, :, None], 32, 64)[:, :, 0] / 255.0
    np.testing.assert_allclose(batch.images[0, 0, :, :38].numpy(), expected, atol=1e-6)


def test_rgb_batches(tmp_path: Path) -> None:
    write_text_lines(tmp_path, 2, split="val", texts=["a", "b"])
    batch = next(iter(_datamodule(tmp_path, channels=3).val_dataloader()))
    assert batch.images.shape[:3] == (2, 3, 32)


def test_a_label_outside_the_charset_names_file_and_character(tmp_path: Path) -> None:
    write_text_lines(tmp_path, 3, split="train", texts=["ok", "fine", "caf\u00e9!"])
    with pytest.raises(ValueError) as err:
        _datamodule(tmp_path).setup("fit")
    _one_line(err, "split 'train'", "gt.txt", "word_3.png", "'é'", "position 3", "lower_alnum")


def test_unknown_skip_drops_and_logs(tmp_path: Path, caplog) -> None:
    write_text_lines(tmp_path, 3, split="val", texts=["ok", "No!", "42"])
    dm = _datamodule(tmp_path, unknown="skip", lowercase=True)
    with caplog.at_level(logging.WARNING, logger="cvbench.data.text"):
        samples = dm.split("val")
    assert "dropped 1 of 3 samples" in caplog.text
    assert len(samples.records) == 2
    batch = next(iter(dm.val_dataloader()))
    assert batch.texts == ["ok", "42"] and batch.names == ["img/word_1.png", "img/word_3.png"]
    assert batch.indices.tolist() == [0, 1]


def test_extra_test_splits(tmp_path: Path) -> None:
    write_text_lines(tmp_path, 2, split="test", texts=["a", "b"])
    write_text_lines(tmp_path, 3, split="svt", texts=["c", "d", "e"])
    dm = _datamodule(tmp_path, extra_test_splits=["svt"])
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert dm.test_split_names == ["test", "svt"] and isinstance(loaders, list)
    assert [next(iter(loader)).texts for loader in loaders] == [["a", "b"], ["c", "d", "e"]]
    plain = _datamodule(tmp_path)
    assert plain.test_split_names == ["test"]
    assert next(iter(plain.test_dataloader())).texts == ["a", "b"]
    with pytest.raises(ValueError, match="extra_test_splits"):
        _datamodule(tmp_path, extra_test_splits=["test"])


def test_lmdb_through_the_datamodule(tmp_path: Path) -> None:
    write_lmdb(tmp_path, 3, split="train", texts=["Ab", "cd", "E"])
    dm = _datamodule(tmp_path, records=lambda split: lmdb_text(split, root=str(tmp_path)))
    with pytest.raises(ValueError) as err:
        dm.split("train")
    _one_line(err, str(tmp_path / "train"), "key 'image-000000001'", "'A'", "position 0")
    dm = _datamodule(
        tmp_path, records=lambda split: lmdb_text(split, root=str(tmp_path)), lowercase=True
    )
    batch = next(iter(dm._loader("train", shuffle=False)))
    assert batch.texts == ["ab", "cd", "e"] and batch.names[0] == "image-000000001"


def test_the_unseen_font_split_defaults_to_the_test_count(tmp_path: Path) -> None:
    """Overrides naming only train/val/test (the experiments' tiny data) still give all four."""
    three = words.words_folder(root=str(tmp_path), num_images={"train": 2, "val": 1, "test": 2})
    counts = {"train": 2, "val": 1, "test": 2, "test_unseen_font": 2}
    four = words.words_folder(root=str(tmp_path), num_images=counts)
    assert three == four and len(text_lines("test_unseen_font", root=str(three))) == 2
    with pytest.raises(ValueError, match="test_unseen_font"):
        words.words_folder(root=str(tmp_path), num_images={"train": 2, "val": 1})


def test_lmdb_in_worker_processes_after_the_main_process_read_it(tmp_path: Path) -> None:
    """A forked DataLoader worker opens its own environment (py-lmdb refuses a second open of
    the files the parent's inherited one holds); the parent's keeps working."""
    written = write_lmdb(tmp_path, 4, split="train", texts=["ab", "cd", "ef", "gh"])
    dm = _datamodule(
        tmp_path,
        records=lambda split: lmdb_text(split, root=str(tmp_path)),
        num_workers=2,
        batch_size=2,
    )
    records = dm.split("train").records
    first = records.load(0)
    texts = sorted(t for batch in dm.train_dataloader() for t in batch.texts)
    assert texts == ["ab", "cd", "ef", "gh"]
    np.testing.assert_array_equal(records.load(0), first)
    assert first.shape[:2] == next(iter(written.values()))[0].shape[:2]

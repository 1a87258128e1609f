"""Word images rendered with the fonts matplotlib ships: the embedded data of text recognition,
in the manner of MJSynth (Jaderberg et al., 2014), small enough to train a CRNN on a CPU.
Nothing is downloaded and no system font is needed.

Each image is one string, 32 px high (variable width, aspect kept): half of them common English
words (:data:`WORDS`), half random strings of 1-10 characters from 0-9 and a-z. Rendered with
PIL in a font file of matplotlib (``matplotlib/mpl-data/fonts/ttf``), then, baked into the
files: a random size and horizontal stretch, margins, a small rotation (+-3 degrees), a
background level and gradient, a text level at a random contrast, light text on a dark ground
for a third of them, a Gaussian blur for half, Gaussian noise.

Splits: ``train``, ``val`` and ``test`` use the seen families, DejaVu Sans, DejaVu Sans Mono and
DejaVu Serif in their regular, bold and oblique/italic styles (12 files); ``test_unseen_font``
uses STIXGeneral (regular, italic, bold, bold italic), a family no other split uses: a
Times-like serif design unlike any DejaVu, with a standard Unicode character map and four
styles (cmr10, the other candidate, has one style and TeX's own encoding). Its number says how
a recognizer generalises to a new typeface.

By default the labels are lowercase (``letters: lower``), so they fit the 36-character
``lower_alnum`` charset the benchmarks score with; ``letters: mixed`` also renders Title and
UPPER words and capitals in random strings (labels as rendered: use the ``cased_alnum``
charset, or ``lowercase: true`` in the datamodule to read them as the lowercase protocol does).

Written once as PNG files and ``gt.txt`` per split under ``<root>/ocr_words-<hash>/<split>/``
(the hash of the parameters), seeded (the same parameters give byte-identical files) and
atomic, and read back by :func:`~cvbench.data.formats.text_lines.text_lines`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cvbench.data.embedded.shapes import write_atomically
from cvbench.data.formats.text_lines import TextLines, text_lines
from cvbench.data.formats.transcriptions import write_transcriptions

VERSION = 1  # bump when the generator's output changes: the folder name changes with it
SPLITS = ("train", "val", "test", "test_unseen_font")
NUM_IMAGES = MappingProxyType({"train": 10000, "val": 500, "test": 1000, "test_unseen_font": 1000})
SEEN_FONTS = tuple(
    f"{family}{style}.ttf"
    for family, styles in (
        ("DejaVuSans", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("DejaVuSansMono", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("DejaVuSerif", ("", "-Bold", "-Italic", "-BoldItalic")),
    )
    for style in styles
)
UNSEEN_FONTS = ("STIXGeneral.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBol.ttf",
                "STIXGeneralBolIta.ttf")  # fmt: skip
LETTERS = ("lower", "mixed")
DIGITS, LOWER, UPPER = "0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_LENGTH = 10  # characters of a random string

_WORD_LIST = """
    the and for are but not you all any can had her was one our out day get has him his how man
    new now old see two way who boy did its let put say she too use about after again air also
    animal answer back because before below between big book both came change city close come
    could country different does down each earth end even every eye face family far father few
    find first follow food form found four from give good great group hand hard have head help
    here high home house idea important into just keep kind know land large last learn leave
    left life light line little live long look made make many mark may mean might more most
    mother mountain move much must name near need never next night number often only open other
    over page paper part people picture place plant play point press read right river road
    room round same school sea second seem sentence set should show side small something sound
    spell stand start state still stop story study such sun take tell than that their them then
    there these they thing think this those thought three through time together took tree try
    turn under until upon very walk want watch water well went were what when where which while
    white why will with word work world would write year young window garden market station
    street bridge coffee hotel music ticket doctor police office museum kitchen bottle letter
    summer winter spring autumn yellow orange purple silver golden green black brown blue red
    north south east west pizza bread apple banana cheese butter sugar salt pepper dinner
    breakfast lunch open closed exit entrance parking stop slow danger private public free sale
    price total cash card phone email online video camera screen button table chair door floor
    wall bed lamp clock radio train plane boat bike truck taxi bus car engine wheel speed fast
    quick happy simple strong bright dark clean fresh warm cold hot heavy empty full quiet loud
    rich poor early late easy safe true false left right center corner square circle heart star
    moon cloud rain snow wind storm fire stone metal glass wood gold iron steel paint brush
    pencil notebook library science history language computer network system program data model
    vision image pixel text reader letter digit benchmark
    """
WORDS = tuple(dict.fromkeys(_WORD_LIST.split()))
"""Common English words (lowercase, at most 10 letters): the dictionary-like half."""


@cache
def font_dir() -> Path:
    """matplotlib's TrueType fonts."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_dir() / name), size)


def random_text(rng: np.random.Generator, letters: str = "lower") -> str:
    """A dictionary word or a random string of 1-10 characters (see the module docstring)."""
    mixed = letters == "mixed"
    if rng.random() < 0.5:
        word = WORDS[int(rng.integers(len(WORDS)))]
        case = rng.random() if mixed else 0.0
        return word if case < 0.5 else word.title() if case < 0.8 else word.upper()
    alphabet = DIGITS + LOWER + (UPPER if mixed else "")
    if rng.random() < 0.2:  # a number
        alphabet = DIGITS
    length = int(rng.integers(1, MAX_LENGTH + 1))
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=length))


def _coverage(text: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 in [0, 1]: the text's ink, framed as a word crop (the font's "Hg" band
    vertically, the text's extent horizontally, random margins), rotated +-3 degrees."""
    left, _, right, _ = font.getbbox(text)
    _, top, _, bottom = font.getbbox("Hg")
    band = bottom - top
    margin = rng.uniform(0.0, 0.15, 2) * band
    side = rng.uniform(0.02, 0.25, 2) * band
    width = int(math.ceil(right - left + side.sum())) + 1
    height = int(math.ceil(band + margin.sum())) + 1
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).text((side[0] - left, margin[0] - top), text, font=font, fill=255)
    angle = float(rng.uniform(-3.0, 3.0))
    canvas = canvas.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def render_word(
    text: str, font_name: str, rng: np.random.Generator, height: int = 32
) -> np.ndarray:
    """One word image: (height, W) uint8 gray, W from the text's extent and a random stretch.

    Args:
        text: what to write.
        font_name: a file of :func:`font_dir`.
        rng: the sample's generator (every random choice is drawn from it).
        height: image height in pixels.
    """
    ink = _coverage(text, _font(font_name, int(rng.integers(28, 44))), rng)
    stretch = rng.uniform(0.8, 1.25)
    width = max(1, round(ink.shape[1] * height / ink.shape[0] * stretch))
    ink = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA)
    ground = rng.uniform(100.0, 255.0)
    ink_level = ground - rng.uniform(70.0, min(ground, 220.0))  # contrast 70-220 levels
    if rng.random() < 1 / 3:  # light text on a dark ground
        ground, ink_level = 255.0 - ground, 255.0 - ink_level
    slope = rng.normal(0.0, 15.0, 2)  # a light gradient across the image
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = ground + slope[0] * (xx / max(width, 1) - 0.5) + slope[1] * (yy / height - 0.5)
    image = background * (1.0 - ink) + ink_level * ink
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=float(rng.uniform(0.3, 1.0)))
    image += rng.normal(0.0, rng.uniform(0.0, 10.0), image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _params(num_images: Mapping[str, int], height: int, letters: str, seed: int) -> dict:
    counts = {k: int(v) for k, v in sorted(dict(num_images).items())}
    if "test" in counts:  # the held-out font's test set: as large as test unless given
        counts.setdefault("test_unseen_font", counts["test"])
    if set(counts) != set(SPLITS) or any(n < 1 for n in counts.values()):
        raise ValueError(
            f"num_images={counts}: expected a count >= 1 for each of {SPLITS} "
            "(test_unseen_font: test's count when left out)"
        )
    if height < 8:
        raise ValueError(f"height={height}: expected at least 8 pixels")
    if letters not in LETTERS:
        raise ValueError(f"letters={letters!r}: expected one of {LETTERS}")
    return {"version": VERSION, "num_images": counts, "height": int(height),
            "letters": letters, "seed": int(seed)}  # fmt: skip


def _write(tmp: Path, p: dict) -> None:
    for split_index, split in enumerate(SPLITS):
        fonts = UNSEEN_FONTS if split == "test_unseen_font" else SEEN_FONTS
        rows = []
        (tmp / split).mkdir()
        for k in range(p["num_images"][split]):
            rng = np.random.default_rng([p["seed"], split_index, k])
            text = random_text(rng, p["letters"])
            font = fonts[int(rng.integers(len(fonts)))]
            name = f"word_{k + 1:06d}.png"
            image = render_word(text, font, rng, p["height"])
            Image.fromarray(image).save(tmp / split / name, compress_level=1)
            rows.append((name, text))
        write_transcriptions(tmp / split / "gt.txt", rows)
        (tmp / split / "fonts.txt").write_text("".join(f"{f}\n" for f in fonts))


def words_folder(
    *,
    root: str,
    num_images: Mapping[str, int] = NUM_IMAGES,
    height: int = 32,
    letters: str = "lower",
    seed: int = 0,
) -> Path:
    """The dataset's folder, generated (about 3 ms an image) unless it is there."""
    params = _params(num_images, height, letters, seed)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root).expanduser() / f"ocr_words-{digest}"
    if not folder.is_dir():
        write_atomically(folder, lambda tmp: _write(tmp, params))
    return folder


def synth_words(
    split: str,
    *,
    root: str,
    num_images: Mapping[str, int] = NUM_IMAGES,
    height: int = 32,
    letters: str = "lower",
    seed: int = 0,
) -> TextLines:
    """One split of the rendered words, generated on first use.

    Args:
        split: "train", "val", "test" or "test_unseen_font".
        root: folder that holds (or will hold) ``ocr_words-<hash>/``.
        num_images: images per split: train, val, test and test_unseen_font (test's count
            when left out).
        height: image height, pixels.
        letters: "lower" (labels in 0-9a-z) or "mixed" (capitals too).
        seed: seed of everything; the same parameters give byte-identical files.

    Returns:
        the split's ``gt.txt`` records.
    """
    if split not in SPLITS:
        raise ValueError(f"synth_words: split {split!r}; expected one of {SPLITS}")
    folder = words_folder(
        root=root, num_images=num_images, height=height, letters=letters, seed=seed
    )
    return text_lines(split, root=str(folder))

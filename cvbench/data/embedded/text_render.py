"""Words drawn onto an image as scene text, each annotated with its rotated quadrilateral (the
drawing half of :mod:`cvbench.data.embedded.text_scenes`).

Words are pseudo-words made of syllables, numbers (``1,250`` holds a comma, as real ground truth
does) and alphanumeric codes, in lower, title and upper case, drawn with the TrueType fonts that
matplotlib ships (DejaVu Sans, Sans Mono, Serif and STIX General, upright, bold and italic: no
system font is needed) at 14-40 px per 320 px of image, rotated by a small random angle, in a
colour whose luma differs from the local background's by at least 100 (of 255), 4 px apart at
least. A word's quadrilateral is its ink's bounding box plus a margin of ~8% of the font size,
rotated with it, corners clockwise from the top-left corner of the word as read (ICDAR 2015's
order). A "don't care" word is drawn illegible (tiny, blurred or faint) and annotated ``###``.
"""

from __future__ import annotations

import colorsys
import functools
import math
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import Polygon

from cvbench.data.formats.icdar2015 import DONT_CARE

FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
    "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
)  # fmt: skip
REFERENCE_SIZE = 320  # font sizes below are pixels of a 320 px image, scaled with image_size
FONT_SIZES = (14.0, 40.0)
TINY_SIZES = (6.0, 9.0)  # "###": too small to read
DONT_CARE_KINDS = ("tiny", "blurred", "faint")
MIN_CONTRAST = 100.0  # luma difference (0-255) of a legible word from its background
MARGIN = 4.0  # pixels kept free at the image border
GAP = 4.0  # pixels between two words' quadrilaterals
PLACEMENT_TRIES = 30
ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
          "br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "sp", "st", "th", "tr")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "y", "ai", "ea", "ee", "io", "oo", "ou")
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "st", "ck", "ng", "rt")
ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def random_word(rng: np.random.Generator) -> str:
    """A pseudo-word (1-3 syllables), a number (``2024``, ``12.50``, ``1,250``) or a code
    (``A7X2``); pseudo-words in lower, title or upper case, sometimes with a final ``.!:?``."""
    kind = rng.random()
    if kind < 0.62:
        syllables = int(rng.integers(1, 4))
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)
        )
        case = rng.random()
        word = word.title() if case < 0.3 else word.upper() if case < 0.5 else word
        return word + rng.choice(list(".!:?")) if rng.random() < 0.08 else word
    if kind < 0.82:
        style = rng.random()
        if style < 0.4:
            return str(int(rng.integers(0, 10000)))
        if style < 0.7:
            return f"{int(rng.integers(0, 100))}.{int(rng.integers(0, 100)):02d}"
        return f"{int(rng.integers(1, 100))},{int(rng.integers(0, 1000)):03d}"
    return "".join(rng.choice(list(ALNUM), int(rng.integers(2, 7))))


@functools.lru_cache(maxsize=512)
def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file), size)


def word_patch(text: str, font_file: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``text`` drawn alone: (alpha (h, w) float32 in [0, 1], its box (4, 2) xy pixels of the
    patch), the box being the ink's bounding box plus a margin of ~8% of the font size,
    corners clockwise from the top-left."""
    font = _font(font_file, size)
    left, top, right, bottom = font.getbbox(text)
    pad = 2 + size // 4
    patch = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(patch).text((pad - left, pad - top), text, font=font, fill=255)
    alpha = np.asarray(patch, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(alpha > 0)
    margin = max(1, round(0.08 * size))  # <= pad: the box stays inside the patch
    x0, y0, x1, y1 = (
        xs.min() - margin,
        ys.min() - margin,
        xs.max() + 1 + margin,
        ys.max() + 1 + margin,
    )
    return alpha, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def render_words(
    rng: np.random.Generator,
    image: np.ndarray,
    count: int,
    *,
    max_angle: float,
    dont_care_fraction: float,
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """Draw up to ``count`` words on ``image`` (S, S, 3) float32 in [0, 255] (a copy is
    returned), each where it fits without touching the border or another word (a word without
    room after 30 tries is left out).

    Returns:
        the image and each drawn word's ``(quad (4, 2) float64 xy, transcription or "###")``.
    """
    image = image.copy()
    size = image.shape[0]
    placed: list[Polygon] = []
    words: list[tuple[np.ndarray, str]] = []
    for _ in range(count):
        kind = str(rng.choice(DONT_CARE_KINDS)) if rng.random() < dont_care_fraction else None
        text = random_word(rng)
        font_file = str(rng.choice(FONT_FILES))
        sizes = TINY_SIZES if kind == "tiny" else FONT_SIZES
        font_size = round(rng.uniform(*sizes) * size / REFERENCE_SIZE)
        angle = float(rng.uniform(-max_angle, max_angle))
        alpha, box = word_patch(text, font_file, font_size)
        matrix, quad = _fit(alpha.shape, box, angle, size)
        if quad is None:  # too wide: the largest font size that fits
            extent = np.ptp(quad_rotated(alpha.shape, box, angle), axis=0).max()
            font_size = math.floor(font_size * (size - 2 * MARGIN) / extent) - 1
            if font_size < sizes[0] * size / REFERENCE_SIZE:
                continue
            alpha, box = word_patch(text, font_file, font_size)
            matrix, quad = _fit(alpha.shape, box, angle, size)
            if quad is None:
                continue
        found = _place(rng, matrix, quad, size, placed)
        if found is None:
            continue
        matrix, quad = found
        cover = cv2.warpAffine(alpha, matrix, (size, size), flags=cv2.INTER_LINEAR)
        if kind == "blurred":
            sigma = rng.uniform(1.5, 2.5) * font_size / 20
            cover = cv2.GaussianBlur(cover, (0, 0), sigma) * 0.7
        colour = _colour(rng, image, cover, faint=kind == "faint")
        cover = cover[:, :, None]
        image = image * (1.0 - cover) + colour * cover
        words.append((quad, DONT_CARE if kind else text))
    return image, words


def quad_rotated(shape: tuple[int, int], box: np.ndarray, angle: float) -> np.ndarray:
    """``box`` (4, 2) of a patch of ``shape`` (h, w) rotated by ``angle`` degrees about the
    patch's centre (counter-clockwise as seen), coordinates relative to that centre."""
    h, w = shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return box @ matrix[:, :2].T + matrix[:, 2] - (w / 2, h / 2)


def _fit(
    shape: tuple[int, int], box: np.ndarray, angle: float, size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the patch's rotation matrix (2, 3) about its centre, the rotated box relative to the
    centre), the box None when it cannot fit within the image's margins."""
    h, w = shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    quad = quad_rotated(shape, box, angle)
    fits = np.ptp(quad, axis=0).max() <= size - 2 * MARGIN
    matrix[:, 2] -= (w / 2, h / 2)
    return matrix, quad if fits else None


def _place(
    rng: np.random.Generator,
    matrix: np.ndarray,
    quad: np.ndarray,
    size: int,
    placed: list[Polygon],
) -> tuple[np.ndarray, np.ndarray] | None:
    """(patch -> image matrix (2, 3), quad (4, 2) in image pixels) at the first of 30 random
    centres where the quad keeps MARGIN from the border and GAP from every placed quad; None
    if none does. Appends the quad to ``placed``."""
    low, high = MARGIN - quad.min(0), size - MARGIN - quad.max(0)
    for _ in range(PLACEMENT_TRIES):
        centre = rng.uniform(low, high)
        candidate = quad + centre
        polygon = Polygon(candidate)
        if all(polygon.distance(other) >= GAP for other in placed):
            placed.append(polygon)
            moved = matrix.copy()
            moved[:, 2] += centre
            return moved, candidate
    return None


def _luma(rgb: np.ndarray) -> float:
    return float(np.dot(rgb, (0.299, 0.587, 0.114)))


def _colour(
    rng: np.random.Generator, image: np.ndarray, cover: np.ndarray, *, faint: bool
) -> np.ndarray:
    """A text colour (3,) float in [0, 255] of random hue whose luma differs from the mean of
    ``image`` under ``cover`` by >= MIN_CONTRAST; faint: that mean, 10-22 lighter or darker."""
    under = image[cover > 0.2]
    mean = under.mean(0) if len(under) else np.full(3, 128.0)
    behind = _luma(mean)
    if faint:  # the background's own colour, a little lighter or darker
        step = rng.uniform(10.0, 22.0)
        return np.clip(mean + (step if behind < 128 else -step), 0.0, 255.0)
    if behind >= 128:
        target = rng.uniform(0.0, behind - MIN_CONTRAST)
    else:
        target = rng.uniform(behind + MIN_CONTRAST, 255.0)
    hue = 255.0 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.9), 1.0))
    luma = _luma(hue)
    if target <= luma:  # mixed with black, or with white, to the target luma exactly
        return hue * (target / luma)
    return 255.0 - (255.0 - hue) * ((255.0 - target) / (255.0 - luma))

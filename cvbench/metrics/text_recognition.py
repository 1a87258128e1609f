"""Text recognition scores under a named protocol: word accuracy, 1 - N.E.D., CER and WER.

Protocols (:func:`normalize`, applied to prediction and reference alike before any score):

- ``lower_alnum`` (default): lowercase, then delete every character outside 0-9a-z, as
  clovaai's deep-text-recognition-benchmark ``test.py`` does for its case-insensitive numbers
  (and MMOCR's ``WordMetric(mode='ignore_case_symbol')``, which keeps CJK characters as well;
  here they are deleted, as clovaai does);
- ``ignore_case``: lowercase only (MMOCR ``ignore_case``);
- ``exact``: the strings as they are (MMOCR ``exact``).

Scores, over N words (one word per dataset index):

- ``word_acc``: 100 x share of words whose normalised prediction equals the normalised
  reference;
- ``one_minus_ned`` (ICDAR 2019 ReCTS / MMOCR ``OneMinusNEDMetric``): the mean over words of
  1 - ED(p, g) / max(len(p), len(g)), a word with both strings empty scoring 1 (0/0 counted as
  distance 0, as rapidfuzz's ``normalized_distance`` and MMOCR do; clovaai scores it 0);
- ``cer``: 100 x total character edits / total reference characters over the corpus (Levenshtein
  distance, as torchmetrics' ``CharErrorRate`` and jiwer), not the mean of per-word rates;
- ``wer``: the same over whitespace-separated words (torchmetrics' ``WordErrorRate``); under
  ``lower_alnum`` spaces are deleted, so each string is one word (or none).

A reference that is empty after normalisation (``"!!"`` under ``lower_alnum``) is still a word:
it is right only if the normalised prediction is empty too, scores 1 - N.E.D. 1 if so and 0
otherwise, and adds the prediction's length to the CER edits and nothing to its denominator
(MMOCR's behaviour; clovaai's data filtering drops such words before scoring). Levenshtein
distances come from rapidfuzz.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from rapidfuzz.distance import Levenshtein
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric

__all__ = [
    "PROTOCOLS",
    "TextRecognitionMetric",
    "WordScores",
    "normalize",
    "protocol_line",
    "score_words",
]

Protocol = Literal["lower_alnum", "ignore_case", "exact"]
PROTOCOLS: dict[str, str] = {
    "lower_alnum": "lowercase, characters outside 0-9a-z deleted (clovaai deep-text-recognition-"
    "benchmark, MMOCR ignore_case_symbol)",
    "ignore_case": "lowercase (MMOCR ignore_case)",
    "exact": "case and symbols as written (MMOCR exact)",
}
OUTSIDE_LOWER_ALNUM = re.compile(r"[^0-9a-z]")


def normalize(text: str, protocol: Protocol) -> str:
    """``text`` as the protocol compares it.

    >>> normalize("Hello, World!", "lower_alnum"), normalize("Hello, World!", "ignore_case")
    ('helloworld', 'hello, world!')
    >>> normalize("Café-42", "lower_alnum"), normalize("Café-42", "exact")
    ('caf42', 'Café-42')
    """
    if protocol == "exact":
        return text
    if protocol == "ignore_case":
        return text.lower()
    if protocol == "lower_alnum":
        return OUTSIDE_LOWER_ALNUM.sub("", text.lower())
    raise ValueError(f"protocol={protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def protocol_line(protocol: Protocol) -> str:
    """One line naming the protocol, for ``metrics.json``.

    >>> protocol_line("exact")
    'exact: case and symbols as written (MMOCR exact); cer/wer corpus-level (torchmetrics)'
    """
    normalize("", protocol)  # checks the name
    return f"{protocol}: {PROTOCOLS[protocol]}; cer/wer corpus-level (torchmetrics)"


@dataclass(frozen=True)
class WordScores:
    """Per-word results of :func:`score_words` (normalised strings).

    Attributes:
        correct: (N,) bool, the normalised strings are equal.
        one_minus_ned: (N,) float64 in [0, 1].
        char_edits: (N,) int64 Levenshtein distance between the strings.
        ref_chars: (N,) int64 normalised reference length.
        word_edits: (N,) int64 Levenshtein distance between the whitespace-split word lists.
        ref_words: (N,) int64 whitespace-separated words in the normalised reference.
    """

    correct: Tensor
    one_minus_ned: Tensor
    char_edits: Tensor
    ref_chars: Tensor
    word_edits: Tensor
    ref_words: Tensor

    def summary(self) -> dict[str, float | int | None]:
        """``word_acc`` (%), ``one_minus_ned``, ``cer`` (%), ``wer`` (%), ``num_words``.

        Means are None without words; CER (WER) is corpus-level: total edits / total
        reference characters (words), 0/0 = 0 and k/0 = inf for k > 0.
        """
        n = len(self.correct)
        return {
            "word_acc": 100.0 * float(self.correct.double().mean()) if n else None,
            "one_minus_ned": float(self.one_minus_ned.mean()) if n else None,
            "cer": _rate(self.char_edits, self.ref_chars) if n else None,
            "wer": _rate(self.word_edits, self.ref_words) if n else None,
            "num_words": n,
        }


def _rate(edits: Tensor, total: Tensor) -> float:
    """100 x sum(edits) / sum(total); 0 when both are 0, inf when only the total is."""
    e, t = int(edits.sum()), int(total.sum())
    if t == 0:
        return 0.0 if e == 0 else float("inf")
    return 100.0 * e / t


def score_words(preds: Sequence[str], targets: Sequence[str], protocol: Protocol) -> WordScores:
    """Score each (prediction, reference) pair after normalising both.

    Args:
        preds: N predicted strings (may be empty).
        targets: N reference strings.
        protocol: ``lower_alnum``, ``ignore_case`` or ``exact`` (see the module).

    >>> scores = score_words(["Hello, World!", "kils", ""], ["helloworld", "kills", "?"],
    ...                      "lower_alnum")
    >>> scores.correct.tolist(), scores.one_minus_ned.tolist()
    ([True, False, True], [1.0, 0.8, 1.0])
    >>> round(scores.summary()["cer"], 4), round(scores.summary()["word_acc"], 4)
    (6.6667, 66.6667)
    """
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} references")
    rows = []
    for pred, target in zip(preds, targets, strict=True):
        p, g = normalize(pred, protocol), normalize(target, protocol)
        edits = Levenshtein.distance(p, g)
        longest = max(len(p), len(g))
        p_words, g_words = p.split(), g.split()
        rows.append(
            (
                p == g,
                1.0 - edits / longest if longest else 1.0,
                edits,
                len(g),
                Levenshtein.distance(p_words, g_words),
                len(g_words),
            )
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    dtypes = (torch.bool, torch.float64, *(torch.int64,) * 4)
    return WordScores(*(torch.tensor(c, dtype=d) for c, d in zip(columns, dtypes, strict=True)))


def _codes(texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Concatenated code points (R,) int64 and the (B,) length of each string."""
    codes = [ord(c) for text in texts for c in text]
    return torch.tensor(codes, dtype=torch.int64), torch.tensor([len(t) for t in texts])


def _texts(codes: Tensor, lengths: Tensor) -> list[str]:
    """The strings back from :func:`_codes`' output."""
    chars = "".join(map(chr, codes.tolist()))
    ends = torch.cumsum(lengths, 0).tolist()
    return [chars[end - n : end] for end, n in zip(ends, lengths.tolist(), strict=True)]


class TextRecognitionMetric(PerImageMetric):
    """Word accuracy, 1 - N.E.D., CER and WER of a split under ``protocol`` (see the module).

    One word per dataset index; both strings are kept as int64 code points in ragged rows, so
    they gather across processes, and each index is counted once
    (``cvbench.metrics.per_image``). After ``compute``, ``last_per_image`` holds one dict per
    word, sorted by index: ``index``, ``prediction``, ``target`` (as given), ``correct``,
    ``one_minus_ned``, ``char_edits``, ``ref_chars`` (under the protocol).

    Args:
        protocol: ``lower_alnum`` (default), ``ignore_case`` or ``exact``.
        prefix: put before each key of ``compute`` (``unseen_font_``).

    >>> metric = TextRecognitionMetric()
    >>> metric.update(["Hello!", "wrld"], ["hello", "World"], torch.tensor([0, 1]))
    >>> result = metric.compute()
    >>> result["word_acc"], result["cer"], result["num_words"]
    (50.0, 10.0, 2)
    """

    higher_is_better = True

    def __init__(self, protocol: Protocol = "lower_alnum", prefix: str = "") -> None:
        super().__init__()
        self.protocol = protocol
        self.protocol_line = protocol_line(protocol)
        self.prefix = prefix
        self.last_per_image: list[dict[str, Any]] = []
        self.add_field("pred_codes", torch.int64, rows="pred")
        self.add_field("target_codes", torch.int64, rows="target")

    def update(self, preds: Sequence[str], targets: Sequence[str], index: Tensor) -> None:
        """Keep a batch's strings.

        Args:
            preds: B predicted strings.
            targets: B reference strings.
            index: (B,) int64 dataset indices.

        Raises:
            ValueError: the three lengths disagree.
        """
        index = torch.as_tensor(index).reshape(-1)
        if not len(preds) == len(targets) == len(index):
            raise ValueError(
                f"TextRecognitionMetric: {len(preds)} predictions, {len(targets)} references, "
                f"{len(index)} dataset indices; expected one of each per word"
            )
        pred_codes, pred_rows = _codes(preds)
        target_codes, target_rows = _codes(targets)
        self.add_images(
            index,
            {"pred_codes": pred_codes, "target_codes": target_codes},
            rows={"pred": pred_rows, "target": target_rows},
        )

    def compute(self) -> dict[str, float | int | None]:
        """``word_acc`` (%), ``one_minus_ned`` ([0, 1]), ``cer`` (%), ``wer`` (%),
        ``num_words``, each key prefixed; means are None without words."""
        images = self.kept_images(device="cpu")
        preds = _texts(images["pred_codes"], images.rows["pred"])
        targets = _texts(images["target_codes"], images.rows["target"])
        scores = score_words(preds, targets, self.protocol)
        self.last_per_image = [
            {
                "index": i,
                "prediction": p,
                "target": t,
                "correct": c,
                "one_minus_ned": n,
                "char_edits": e,
                "ref_chars": r,
            }
            for i, p, t, c, n, e, r in zip(
                images.index.tolist(),
                preds,
                targets,
                scores.correct.tolist(),
                scores.one_minus_ned.tolist(),
                scores.char_edits.tolist(),
                scores.ref_chars.tolist(),
                strict=True,
            )
        ]
        return {f"{self.prefix}{k}": v for k, v in scores.summary().items()}

"""``cvbench score task=ocr``: a file of recognised words scored against its ground truth under a
named protocol, as clovaai's deep-text-recognition-benchmark and MMOCR score them.

A composition of the two bottom layers, so it lives above both: ``cvbench.data.formats.
transcriptions`` reads the ``image<TAB>transcription`` files, ``cvbench.metrics.
text_recognition`` normalises and scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from cvbench.data.formats.transcriptions import read_transcriptions
from cvbench.metrics.text_recognition import protocol_line, score_words

__all__ = ["score_transcriptions"]


def score_transcriptions(
    gt: Path,
    pred: Path,
    *,
    protocol: Literal["lower_alnum", "ignore_case", "exact"] = "lower_alnum",
) -> dict[str, Any]:
    """Word accuracy, 1 - N.E.D., CER and WER of a predictions file under a named protocol.

    Args:
        gt: ground-truth file of image<TAB>transcription lines (UTF-8; each image once, every
            transcription non-empty).
        pred: predictions file in the same layout, one line per ground-truth image (any order;
            an empty transcription is an empty prediction).
        protocol: how both strings are normalised before scoring: lower_alnum (lowercase, only
            0-9a-z kept: clovaai, MMOCR ignore_case_symbol), ignore_case (lowercase) or exact.

    Returns:
        ``word_acc`` (%), ``one_minus_ned`` ([0, 1]), ``cer`` and ``wer`` (%, corpus-level),
        ``num_words``, ``protocol``, ``text_protocol`` (one line describing it) and
        ``per_image``: ``[{image, correct, one_minus_ned, char_edits, ref_chars}]`` in the
        ground truth's order.

    Raises:
        FileNotFoundError, ValueError: a missing or malformed file (naming the file and line),
            a ground-truth image without prediction or a prediction for an image not in the
            ground truth (naming the image).
    """
    truth = read_transcriptions(gt)
    if not truth:
        raise ValueError(f"{gt}: no lines; expected image<TAB>transcription lines")
    guesses = read_transcriptions(pred, allow_empty=True)
    predicted = dict(guesses)
    known = {image for image, _ in truth}
    extra = [image for image, _ in guesses if image not in known]
    if extra:
        raise ValueError(
            f"{pred}: image {extra[0]!r} is not in the ground truth {gt} ({len(extra)} such "
            "images in all); expected the same image names in both files"
        )
    missing = [image for image, _ in truth if image not in predicted]
    if missing:
        raise ValueError(
            f"{pred}: no line for image {missing[0]!r} of the ground truth {gt} ({len(missing)} "
            "missing in all); write one line per image, an empty transcription if nothing was read"
        )
    scores = score_words([predicted[image] for image, _ in truth], [t for _, t in truth], protocol)
    per_image = [
        {"image": image, "correct": c, "one_minus_ned": n, "char_edits": e, "ref_chars": r}
        for (image, _), c, n, e, r in zip(
            truth,
            scores.correct.tolist(),
            scores.one_minus_ned.tolist(),
            scores.char_edits.tolist(),
            scores.ref_chars.tolist(),
            strict=True,
        )
    ]
    return {
        **scores.summary(),
        "protocol": protocol,
        "text_protocol": protocol_line(protocol),
        "per_image": per_image,
    }

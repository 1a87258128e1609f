"""Text recognition metrics against hand-made answers, an independent dynamic-programming edit
distance, torchmetrics' CharErrorRate / WordErrorRate, and two real gloo processes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from torch.utils.data import DistributedSampler
from torchmetrics.text import CharErrorRate, WordErrorRate

from cvbench.metrics.text_recognition import (
    TextRecognitionMetric,
    normalize,
    protocol_line,
    score_words,
)


def edit_distance(a: list | str, b: list | str) -> int:
    """Levenshtein distance by the textbook dynamic programme (independent of rapidfuzz)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def scored(preds: list[str], targets: list[str], protocol: str = "lower_alnum") -> dict:
    metric = TextRecognitionMetric(protocol=protocol)
    metric.update(preds, targets, torch.arange(len(preds)))
    return metric.compute()


def test_normalize_protocols() -> None:
    assert normalize("Hello, World!", "lower_alnum") == "helloworld"
    assert normalize("Hello, World!", "ignore_case") == "hello, world!"
    assert normalize("Hello, World!", "exact") == "Hello, World!"
    assert normalize("ÉCOLE n°5 ß", "lower_alnum") == "colen5"  # accents and symbols deleted
    with pytest.raises(ValueError, match="protocol='lower'; expected one of lower_alnum"):
        normalize("x", "lower")


@pytest.mark.parametrize(
    ("protocol", "word_acc", "ned", "cer"),
    [
        # "helloworld" == "helloworld"; "COSTA" -> "costa" == "costa"; "ab" vs "abc"
        ("lower_alnum", 200 / 3, (1 + 1 + 2 / 3) / 3, 100 * 1 / 18),
        # "hello, world!" vs "helloworld": 3 deletions over 13; "costa" == "costa"
        ("ignore_case", 100 / 3, (1 - 3 / 13 + 1 + 2 / 3) / 3, 100 * 4 / 18),
        # + H/h and W/w substituted (5 edits), "COSTA" vs "costa": 5 substitutions
        ("exact", 0.0, (1 - 5 / 13 + 0 + 2 / 3) / 3, 100 * 11 / 18),
    ],
)
def test_hand_made_protocols(protocol: str, word_acc: float, ned: float, cer: float) -> None:
    result = scored(["Hello, World!", "COSTA", "ab"], ["helloworld", "costa", "abc"], protocol)
    assert result["word_acc"] == pytest.approx(word_acc)
    assert result["one_minus_ned"] == pytest.approx(ned)
    assert result["cer"] == pytest.approx(cer)
    assert result["num_words"] == 3


def test_empty_predictions_and_references() -> None:
    """An empty prediction is all deletions; a reference emptied by the protocol is right only
    against an empty prediction (1 - N.E.D. 1 then, else 0) and adds no reference character."""
    scores = score_words(["", "", "a", "x!"], ["abc", "?!", "#", "x"], "lower_alnum")
    assert scores.correct.tolist() == [False, True, False, True]
    assert scores.one_minus_ned.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert scores.char_edits.tolist() == [3, 0, 1, 0]
    assert scores.ref_chars.tolist() == [3, 0, 0, 1]
    summary = scores.summary()
    assert summary["word_acc"] == 50.0
    assert summary["cer"] == pytest.approx(100 * 4 / 4)
    # every reference empty: no denominator
    assert score_words(["", ""], ["!", "?"], "lower_alnum").summary()["cer"] == 0.0
    assert score_words(["a"], ["?"], "lower_alnum").summary()["cer"] == float("inf")
    with pytest.warns(UserWarning, match="called before the ``update``"):
        empty = TextRecognitionMetric().compute()
    assert empty == {
        "word_acc": None,
        "one_minus_ned": None,
        "cer": None,
        "wer": None,
        "num_words": 0,
    }


def test_cer_is_corpus_level_not_a_mean_of_words() -> None:
    preds, targets = ["a", "abcdefghij"], ["b", "abcdefghij"]
    per_word_mean = (
        sum(100 * edit_distance(p, t) / len(t) for p, t in zip(preds, targets, strict=True)) / 2
    )
    result = scored(preds, targets)
    assert per_word_mean == 50.0
    assert result["cer"] == pytest.approx(100 / 11)


def random_text(rng: random.Random, empty_ok: bool) -> str:
    alphabet = "abcXYZ019 ,.!é"
    length = rng.randint(0 if empty_ok else 1, 12)
    return "".join(rng.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize("protocol", ["lower_alnum", "ignore_case", "exact"])
def test_against_torchmetrics_and_an_independent_ned(protocol: str) -> None:
    rng = random.Random(7)
    targets = [random_text(rng, empty_ok=False) for _ in range(60)]
    preds = [t if rng.random() < 0.3 else random_text(rng, empty_ok=True) for t in targets]
    result = scored(preds, targets, protocol)
    p = [normalize(x, protocol) for x in preds]
    g = [normalize(x, protocol) for x in targets]
    keep = [i for i, t in enumerate(g) if t.split()]  # torchmetrics needs reference words
    assert len(keep) > 50
    sub = scored([preds[i] for i in keep], [targets[i] for i in keep], protocol)
    assert sub["cer"] == pytest.approx(
        100 * float(CharErrorRate()([p[i] for i in keep], [g[i] for i in keep])), rel=1e-6
    )
    assert sub["wer"] == pytest.approx(
        100 * float(WordErrorRate()([p[i] for i in keep], [g[i] for i in keep])), rel=1e-6
    )
    expected_ned = sum(
        1 - edit_distance(a, b) / max(len(a), len(b)) if max(len(a), len(b)) else 1.0
        for a, b in zip(p, g, strict=True)
    ) / len(p)
    assert result["one_minus_ned"] == pytest.approx(expected_ned, abs=1e-12)
    assert result["word_acc"] == pytest.approx(
        100 * sum(a == b for a, b in zip(p, g, strict=True)) / len(p)
    )
    total = sum(map(len, g))
    assert result["cer"] == pytest.approx(100 * sum(map(edit_distance, p, g)) / total)


def test_wer_counts_whitespace_words() -> None:
    result = scored(["the cat sat", "a b"], ["the cat sat down", "a c"], "exact")
    assert result["wer"] == pytest.approx(100 * (1 + 1) / (4 + 2))
    # under lower_alnum spaces are deleted: each string is one word
    result = scored(["the cat sat", "a b"], ["the cat sat down", "a b"], "lower_alnum")
    assert result["wer"] == pytest.approx(50.0)


def test_repeated_index_counted_once_and_prefix() -> None:
    metric = TextRecognitionMetric(protocol="exact", prefix="unseen_font_")
    metric.update(["abc", "xyz"], ["abc", "xy"], torch.tensor([4, 2]))
    metric.update(["wrong"], ["abc"], torch.tensor([4]))  # a padded repeat of index 4
    result = metric.compute()
    assert result == pytest.approx(
        {
            "unseen_font_word_acc": 50.0,
            "unseen_font_one_minus_ned": (1 + 2 / 3) / 2,
            "unseen_font_cer": 100 * 1 / 5,
            "unseen_font_wer": 50.0,
            "unseen_font_num_words": 2,
        }
    )
    assert [row["index"] for row in metric.last_per_image] == [2, 4]
    assert metric.last_per_image[1]["prediction"] == "abc"
    assert metric.protocol_line == protocol_line("exact")
    assert protocol_line("lower_alnum").startswith("lower_alnum: lowercase, characters outside")
    with pytest.raises(ValueError, match="2 predictions, 1 references, 2 dataset indices"):
        metric.update(["a", "b"], ["a"], torch.tensor([0, 1]))


def test_non_ascii_code_points_survive() -> None:
    metric = TextRecognitionMetric(protocol="exact")
    metric.update(["Straße 😀", ""], ["Straße 😀", "日本"], torch.tensor([0, 1]))
    assert metric.compute()["word_acc"] == 50.0
    assert [row["target"] for row in metric.last_per_image] == ["Straße 😀", "日本"]


WORDS = [("Hello!", "hello"), ("w0rld", "World"), ("", "x"), ("ab c", "abc"), ("Q", "?")]
WORDS += [("kills", "Kills"), ("tired", "tiredness")]


def _update_all(metric: TextRecognitionMetric, order: list[int], batch: int) -> None:
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        metric.update(
            [WORDS[i][0] for i in chunk], [WORDS[i][1] for i in chunk], torch.tensor(chunk)
        )


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list | None) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sampler = DistributedSampler(range(7), num_replicas=world, rank=rank, shuffle=False)
        shard = list(sampler)
        metric = TextRecognitionMetric()
        _update_all(metric, shard, batch=2)
        result = metric.compute()
        rows = [[r["index"], r["prediction"], r["target"]] for r in metric.last_per_image]
        Path(out, f"{rank}.json").write_text(
            json.dumps({"shard": shard, "stats": result, "rows": rows})
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_two_processes_equal_one(tmp_path: Path) -> None:
    """Two gloo processes over 7 words (rank 1's shard repeats word 0, strings of different
    lengths per rank): every rank computes what one process computes."""
    results = run_two_processes(_ddp_worker, tmp_path)
    single = TextRecognitionMetric()
    _update_all(single, list(range(7)), batch=3)
    expected = single.compute()
    assert results[1]["shard"] == [1, 3, 5, 0]
    for got in results:
        assert got["stats"] == pytest.approx(expected, abs=1e-12)
        assert got["rows"] == [[i, p, t] for i, (p, t) in enumerate(WORDS)]
    # counting word 0 twice would change the numbers
    assert scored(*map(list, zip(*WORDS, WORDS[0], strict=True))) != pytest.approx(expected)

"""CTC decoding (cvbench/tasks/ctc.py) against known answers and brute-force enumeration."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from cvbench.tasks.ctc import beam_search_decode, greedy_decode, prefix_beam_search


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    """The labelling a CTC path spells: repeats merged, then blanks (0) dropped."""
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return tuple(c for c in merged if c != 0)


def labelling_probabilities(probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Every labelling's probability, summed over all K^T paths (an independent computation)."""
    steps, classes = probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(classes), repeat=steps):
        p = math.prod(float(probs[t, c]) for t, c in enumerate(path))
        totals[collapse(path)] = totals.get(collapse(path), 0.0) + p
    return totals


def test_best_path_is_not_the_most_probable_labelling() -> None:
    """Two steps, P(blank) = 0.6, P(a) = 0.4: the best path is blank blank (""), 0.36, but
    "a" is spelt by a-a, a-blank and blank-a: 0.16 + 0.24 + 0.24 = 0.64."""
    probs = torch.tensor([[[0.6, 0.4], [0.6, 0.4]]])
    assert greedy_decode(probs.log()) == [[]]
    assert beam_search_decode(probs.log(), beam_width=2) == [[1]]
    labels, logp = prefix_beam_search(probs[0].log(), beam_width=2)
    assert labels == (1,) and math.exp(logp) == pytest.approx(0.64)


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    # best path: a a - a b b - - -> "aab"
    path = [1, 1, 0, 1, 2, 2, 0, 0]
    probs = torch.full((1, len(path), 3), 0.05)
    probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.9
    assert greedy_decode(probs.log()) == [[1, 1, 2]]
    assert beam_search_decode(probs.log(), beam_width=5) == [[1, 1, 2]]


def test_decoders_respect_each_samples_valid_length() -> None:
    path = [1, 0, 2, 2, 1, 1]
    probs = torch.full((2, len(path), 3), 0.05)
    probs[:, torch.arange(len(path)), torch.tensor(path)] = 0.9
    lengths = torch.tensor([6, 3])
    assert greedy_decode(probs.log(), lengths) == [[1, 2, 1], [1, 2]]
    assert beam_search_decode(probs.log(), lengths, beam_width=4) == [[1, 2, 1], [1, 2]]


def test_beam_width_one_is_greedy_on_confident_outputs() -> None:
    """With every step's best class above 1/2 the beam of one follows the best path."""
    torch.manual_seed(0)
    for _ in range(20):
        steps, classes = 12, 5
        best = torch.randint(0, classes, (steps,))
        probs = torch.rand(steps, classes)
        probs[torch.arange(steps), best] = 0.0
        probs = 0.3 * probs / probs.sum(1, keepdim=True)
        probs[torch.arange(steps), best] = 0.7
        log_probs = probs.log()[None]
        assert beam_search_decode(log_probs, beam_width=1) == greedy_decode(log_probs)


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_exact_most_probable_labelling(seed: int) -> None:
    """T = 5, blank + 2 characters: a beam that keeps every prefix finds the labelling of
    highest total probability over all 3^5 paths, with that probability."""
    generator = torch.Generator().manual_seed(seed)
    probs = torch.rand(5, 3, generator=generator, dtype=torch.float64).pow(2)
    probs = probs / probs.sum(1, keepdim=True)
    totals = labelling_probabilities(probs)
    best = max(totals, key=totals.get)
    labels, logp = prefix_beam_search(probs.log(), beam_width=64)
    assert labels == best
    assert math.exp(logp) == pytest.approx(totals[best], rel=1e-9)


def test_beam_and_greedy_differ_on_a_brute_forced_case() -> None:
    """A case found by enumeration where the best path's labelling is not the most probable."""
    probs = torch.tensor([[0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.5, 0.1, 0.4]])
    totals = labelling_probabilities(probs)
    best = max(totals, key=totals.get)
    assert greedy_decode(probs.log()[None]) == [[]]  # blank blank blank
    assert best != () and beam_search_decode(probs.log()[None], beam_width=16) == [list(best)]


def test_beam_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="beam_width"):
        prefix_beam_search(torch.zeros(2, 3), beam_width=0)

"""Decoding CTC outputs (Graves et al., ICML 2006): per-time-step class scores, class 0 the
blank, to label sequences.

- :func:`greedy_decode`, best path: the most probable class at each step, repeats collapsed,
  blanks dropped. Fast, but the most probable path need not spell the most probable labelling
  (many paths spell one labelling, and their probabilities add up).
- :func:`beam_search_decode`, prefix beam search (Hannun et al., arXiv 1408.2873, without a
  language model): keeps the ``beam_width`` most probable prefixes, each with the probability
  of the paths spelling it that end in a blank and of those that end in its last character,
  so a labelling's probability sums over its paths. With a beam wide enough to keep every
  prefix it returns the most probable labelling exactly.

Written by hand, in log space, because torchaudio (whose ``ctc_decoder`` does this) has no
build for the installed torch; each sample is decoded over its own valid time steps only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NEG_INF = -math.inf


def _valid_lengths(log_probs: Tensor, lengths: Tensor | None) -> list[int]:
    batch, steps = log_probs.shape[:2]
    if lengths is None:
        return [steps] * batch
    if len(lengths) != batch:
        raise ValueError(f"{len(lengths)} lengths for a batch of {batch}")
    return [min(max(int(n), 0), steps) for n in lengths.tolist()]


def greedy_decode(log_probs: Tensor, lengths: Tensor | None = None) -> list[list[int]]:
    """Best-path decoding.

    Args:
        log_probs: (B, T, K) scores (log-probabilities or logits: only the argmax counts).
        lengths: (B,) valid time steps of each sample (None: all T).

    Returns:
        B lists of class codes in 1..K-1.

    >>> scores = torch.tensor([[[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.9, 0.1, 0.0],
    ...                         [0.1, 0.9, 0.0], [0.0, 0.1, 0.9]]]).log()
    >>> greedy_decode(scores)  # 1 1 - 1 2 -> 1 1 2
    [[1, 1, 2]]
    >>> greedy_decode(scores, torch.tensor([2]))
    [[1]]
    """
    best = log_probs.argmax(-1).cpu()
    decoded = []
    for path, n in zip(best, _valid_lengths(log_probs, lengths), strict=True):
        path = path[:n]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]
        decoded.append(path[keep & (path != 0)].tolist())
    return decoded


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _add(beams: dict, prefix: tuple[int, ...], blank: float, label: float) -> None:
    """Add the probabilities of more paths spelling ``prefix`` (ending in a blank / in its
    last character) to ``beams``."""
    entry = beams.setdefault(prefix, [NEG_INF, NEG_INF])
    entry[0] = _logaddexp(entry[0], blank)
    entry[1] = _logaddexp(entry[1], label)


def prefix_beam_search(log_probs: Tensor, beam_width: int) -> tuple[tuple[int, ...], float]:
    """Prefix beam search over one sample.

    At each step only the ``beam_width`` most probable classes (and the blank, and each
    prefix's last character) extend the prefixes.

    Args:
        log_probs: (T, K) log-probabilities (each row a log-softmax).
        beam_width: prefixes kept after each step (>= 1).

    Returns:
        The best labelling (codes in 1..K-1) and its log-probability: log of the summed
        probability of every path spelling it (as far as the beam kept them).

    >>> p = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()  # best path "" (0.36); "1": 0.64
    >>> labels, logp = prefix_beam_search(p, beam_width=4)
    >>> labels, round(math.exp(logp), 4)
    ((1,), 0.64)
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    steps, classes = log_probs.shape
    table = log_probs.detach().double().cpu()
    # prefix -> (log P(paths ending in a blank), log P(paths ending in its last character))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    candidates = min(beam_width, classes - 1)
    for t in range(steps):
        row = table[t].tolist()
        top = torch.topk(table[t, 1:], candidates).indices + 1 if candidates else []
        top_set = {int(c) for c in top}
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_b, p_nb) in beams.items():
            total = _logaddexp(p_b, p_nb)
            _add(nxt, prefix, total + row[0], NEG_INF)  # a blank: same prefix
            if prefix:  # its last character repeated: collapses into the same prefix
                _add(nxt, prefix, NEG_INF, p_nb + row[prefix[-1]])
            for c in top_set | ({prefix[-1]} if prefix else set()):
                if c == 0:
                    continue
                if prefix and c == prefix[-1]:
                    # a new copy of the last character needs a blank in between
                    _add(nxt, prefix + (c,), NEG_INF, p_b + row[c])
                else:
                    _add(nxt, prefix + (c,), NEG_INF, total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked[:beam_width]}
    best, (p_b, p_nb) = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))
    return best, _logaddexp(p_b, p_nb)


def beam_search_decode(
    log_probs: Tensor, lengths: Tensor | None = None, beam_width: int = 10
) -> list[list[int]]:
    """Prefix beam search of every sample (:func:`prefix_beam_search`).

    Args:
        log_probs: (B, T, K) log-probabilities (log-softmax over K).
        lengths: (B,) valid time steps of each sample (None: all T).
        beam_width: prefixes kept after each step.

    Returns:
        B lists of class codes in 1..K-1.
    """
    return [
        list(prefix_beam_search(sample[:n], beam_width)[0])
        for sample, n in zip(log_probs, _valid_lengths(log_probs, lengths), strict=True)
    ]

"""Pruned prompt: drop phrases while the whole prompt's CLIP similarity stays put.

Greedy backward elimination repeatedly removes the phrase whose removal costs the least
similarity.  Done naively that is a full-prompt encode of every remaining phrase at
every step: quadratic in the number of phrases.  ``lazy_greedy_prune`` keeps each
phrase's last measured cost (the leave-one-out costs to begin with) in a priority queue
and re-measures only the few cheapest at each step, in one batch; a step is taken when
the best freshly measured removal keeps at least the similarity of the best stale
estimate.  When removing phrases never raises a variant's similarity (stale estimates
are then upper bounds), this is exactly the greedy result; otherwise it is a close
approximation.  Either way every similarity it reports is a real measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Measures the similarity of each variant (the set of phrase indices kept) in one batch.
Oracle = Callable[[Sequence[frozenset[int]]], np.ndarray]


@dataclass(frozen=True)
class PruneSearch:
    steps: list[tuple[int, float]]  # (removed phrase, similarity after removal)
    evaluations: int  # prompt variants measured by the search


def similarity_floor(original: float, tolerance: float) -> float:
    """Lowest similarity allowed: at most ``tolerance`` relative loss."""
    return original - tolerance * abs(original)


def lazy_greedy_prune(
    phrases: Sequence[int],
    original: float,
    loo_similarity: Sequence[float],
    oracle: Oracle,
    tolerance: float = 0.01,
    batch: int = 1,
    min_keep: int = 1,
) -> PruneSearch:
    """Greedy backward elimination with lazily refreshed costs (see module docstring).

    ``loo_similarity[k]`` is the measured similarity without ``phrases[k]`` (all others
    kept).  At least ``min_keep`` phrases are kept.
    """
    floor = similarity_floor(original, tolerance)
    kept = frozenset(phrases)
    # Estimated similarity after removing each phrase, and whether it was measured
    # against the current prompt.
    estimate = {p: float(s) for p, s in zip(phrases, loo_similarity)}
    fresh = set(phrases)
    steps: list[tuple[int, float]] = []
    evaluations = 0
    while len(kept) > min_keep:
        order = sorted(kept, key=lambda p: (-estimate[p], p))
        best = order[0]
        if best not in fresh:
            stale = [p for p in order if p not in fresh][:batch]
            sims = oracle([kept - {p} for p in stale])
            evaluations += len(stale)
            for p, s in zip(stale, sims):
                estimate[p] = float(s)
                fresh.add(p)
            continue
        if estimate[best] < floor:
            break
        kept = kept - {best}
        steps.append((best, estimate[best]))
        del estimate[best]
        fresh.clear()
    return PruneSearch(steps=steps, evaluations=evaluations)


def naive_greedy_prune(
    phrases: Sequence[int],
    original: float,
    oracle: Oracle,
    tolerance: float = 0.01,
    min_keep: int = 1,
) -> PruneSearch:
    """The quadratic reference: re-measure every candidate at every step."""
    floor = similarity_floor(original, tolerance)
    kept = frozenset(phrases)
    steps: list[tuple[int, float]] = []
    evaluations = 0
    while len(kept) > min_keep:
        candidates = sorted(kept)
        sims = oracle([kept - {p} for p in candidates])
        evaluations += len(candidates)
        k = int(np.argmax(sims))
        if sims[k] < floor:
            break
        kept = kept - {candidates[k]}
        steps.append((candidates[k], float(sims[k])))
    return PruneSearch(steps=steps, evaluations=evaluations)

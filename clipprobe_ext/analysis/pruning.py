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
from dataclasses import dataclass, field

import numpy as np

# Measures the similarity of each variant (the set of phrase indices kept) in one batch.
Oracle = Callable[[Sequence[frozenset[int]]], np.ndarray]
# Why removing these phrases (those removed so far and the next one) cannot be done
# cleanly, or None when it can (``prompt.removal_blocker``).
Blocker = Callable[[frozenset[int]], "str | None"]


@dataclass(frozen=True)
class PruneSearch:
    steps: list[tuple[int, float]]  # (removed phrase, similarity after removal)
    evaluations: int  # prompt variants measured by the search
    calls: int = 0  # oracle calls (text-tower batches) that measured them
    # phrases a step would have removed but ``blocker`` refused, with its reason: they stay
    blocked: dict[int, str] = field(default_factory=dict)


def similarity_floor(original: float, tolerance: float) -> float:
    """Lowest similarity allowed: at most ``tolerance`` relative loss."""
    return original - tolerance * abs(original)


def lazy_greedy_prune(
    phrases: Sequence[int],
    original: float,
    loo_similarity: Sequence[float],
    oracle: Oracle,
    tolerance: float = 0.01,
    min_keep: int = 1,
    speculate: int = 8,
    blocker: Blocker | None = None,
) -> PruneSearch:
    """Greedy backward elimination with lazily refreshed costs (see module docstring).

    ``loo_similarity[k]`` is the measured similarity without ``phrases[k]`` (all others
    kept).  At least ``min_keep`` phrases are kept.

    Speculation: a text-tower call costs about the same for one short variant as for a
    few (loading the weights dominates), so each call measures the path the estimates
    predict (remove the best, then also the next best, ...) and takes every step of it
    that the one-at-a-time lazy rule would have taken; the first step it would not take
    ends the batch.  The result is the same as measuring one variant per call
    (``speculate=1``); the path length adapts to how often predictions hold.

    ``blocker``: asked when a step is about to be taken, with every phrase removed so far
    and that one; a phrase it refuses stays in the prompt for good (``blocked``) and the
    search goes on with the others.
    """
    floor = similarity_floor(original, tolerance)
    kept = frozenset(phrases)
    # Estimated similarity after removing each phrase, and whether it was measured
    # against the current prompt.
    estimate = {p: float(s) for p, s in zip(phrases, loo_similarity)}
    fresh = set(phrases)
    steps: list[tuple[int, float]] = []
    blocked: dict[int, str] = {}
    evaluations = calls = 0
    depth = 1
    everything = frozenset(phrases)

    def key(p: int) -> tuple[float, int]:
        return (-estimate[p], p)

    def refused(p: int) -> bool:
        reason = blocker(everything - kept | {p}) if blocker is not None else None
        if reason is not None:
            blocked[p] = reason
        return reason is not None

    while len(kept) > min_keep:
        order = sorted(kept - blocked.keys(), key=key)
        if not order:
            break
        best = order[0]
        if best in fresh:
            if estimate[best] < floor:
                break
            if refused(best):
                continue
            kept = kept - {best}
            steps.append((best, estimate[best]))
            del estimate[best]
            fresh.clear()
            continue
        path = order[: max(1, min(depth, len(kept) - min_keep, len(order)))]
        sims = oracle([kept - set(path[: j + 1]) for j in range(len(path))])
        evaluations += len(path)
        calls += 1
        taken = 0
        for j, p in enumerate(path):
            estimate[p] = float(sims[j])  # measured against the prompt as it is now
            fresh.add(p)
            rest = order[j + 1 :]
            if estimate[p] < floor or (rest and key(rest[0]) < key(p)) or refused(p):
                break  # not a step the lazy rule takes now: the main loop decides
            kept = kept - {p}
            steps.append((p, estimate[p]))
            del estimate[p]
            fresh.clear()
            taken += 1
        depth = min(speculate, 2 * depth) if taken == len(path) else max(1, taken)
    return PruneSearch(steps=steps, evaluations=evaluations, calls=calls, blocked=blocked)


def naive_greedy_prune(
    phrases: Sequence[int],
    original: float,
    oracle: Oracle,
    tolerance: float = 0.01,
    min_keep: int = 1,
    blocker: Blocker | None = None,
) -> PruneSearch:
    """The quadratic reference: re-measure every candidate at every step."""
    floor = similarity_floor(original, tolerance)
    kept = frozenset(phrases)
    steps: list[tuple[int, float]] = []
    blocked: dict[int, str] = {}
    evaluations = calls = 0
    while len(kept) > min_keep:
        candidates = sorted(kept - blocked.keys())
        if not candidates:
            break
        sims = oracle([kept - {p} for p in candidates])
        evaluations += len(candidates)
        calls += 1
        k = int(np.argmax(sims))
        if sims[k] < floor:
            break
        gone = frozenset(phrases) - kept | {candidates[k]}
        reason = blocker(gone) if blocker is not None else None
        if reason is not None:
            blocked[candidates[k]] = reason
            continue
        kept = kept - {candidates[k]}
        steps.append((candidates[k], float(sims[k])))
    return PruneSearch(steps=steps, evaluations=evaluations, calls=calls, blocked=blocked)

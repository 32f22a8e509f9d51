"""Pruned prompt: drop phrases while the whole prompt's CLIP similarity stays put.

Greedy backward elimination repeatedly removes the phrase whose removal costs the least
similarity.  Done naively that is a full-prompt encode of every remaining phrase at
every step: quadratic in the number of phrases.  ``lazy_greedy_prune`` keeps each
phrase's last measured cost (the leave-one-out costs to begin with) in a priority queue
and re-measures only the few cheapest at each step, in one batch; a step is taken when
the best freshly measured removal keeps at least the similarity of the best stale
estimate.  When removing phrases never raises a variant's similarity (stale estimates
are then upper bounds), this is exactly the greedy result; otherwise it is a close
approximation.  Either way every similarity it reports is a real measurement, and every
phrase it keeps comes back with why and its last measured cost (``HeldPhrase``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from clipprobe_ext.results import HeldPhrase

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
    # every phrase it kept, why, and its last measurement (``removed_before`` counts only
    # this search's own steps)
    held: list[HeldPhrase] = field(default_factory=list)


def similarity_floor(original: float, tolerance: float) -> float:
    """Lowest similarity allowed: at most ``tolerance`` relative loss."""
    return original - tolerance * abs(original)


class _Progress:
    """A search's steps and refusals, and what it last measured for each phrase."""

    def __init__(self, phrases: Sequence[int], original: float, tolerance: float) -> None:
        self.original = original
        self.floor = similarity_floor(original, tolerance)
        self.everything = frozenset(phrases)
        self.kept = self.everything
        self.steps: list[tuple[int, float]] = []
        self.blocked: dict[int, str] = {}
        self.measured: dict[int, tuple[int, float]] = {}  # phrase -> (steps by then, sim)
        self.evaluations = self.calls = 0
        self.below_floor = False  # stopped because every removal left fell under the floor

    def measure(self, phrase: int, similarity: float) -> None:
        self.measured[phrase] = (len(self.steps), similarity)

    def refused(self, phrase: int, blocker: Blocker | None) -> bool:
        """Asks ``blocker`` about removing ``phrase`` now; a refused phrase stays for good."""
        reason = blocker(self.everything - self.kept | {phrase}) if blocker else None
        if reason is not None:
            self.blocked[phrase] = reason
        return reason is not None

    def take(self, phrase: int, similarity: float) -> None:
        self.kept = self.kept - {phrase}
        self.steps.append((phrase, similarity))

    def result(self) -> PruneSearch:
        order = [i for i, _ in self.steps]
        similarity = [self.original, *(s for _, s in self.steps)]
        held = []
        for p in sorted(self.kept):
            k, without = self.measured.get(p, (len(self.steps), None))
            if p in self.blocked:
                code = "cannot_cut_cleanly"
            elif self.below_floor:
                code = "below_floor"
            else:  # stopped at ``min_keep``
                code, k, without = "last_phrase", len(self.steps), None
            held.append(
                HeldPhrase(
                    p,
                    code,
                    removed_before=tuple(order[:k]),
                    similarity_before=similarity[k],
                    similarity_without=without,
                    floor=self.floor,
                    blocker=self.blocked.get(p),
                )
            )
        return PruneSearch(self.steps, self.evaluations, self.calls, self.blocked, held)


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
    search = _Progress(phrases, original, tolerance)
    # Estimated similarity after removing each phrase, and whether it was measured
    # against the current prompt.
    estimate = {p: float(s) for p, s in zip(phrases, loo_similarity)}
    for p, s in estimate.items():
        search.measure(p, s)
    fresh = set(phrases)
    depth = 1

    def key(p: int) -> tuple[float, int]:
        return (-estimate[p], p)

    def take(p: int) -> None:
        search.take(p, estimate.pop(p))
        fresh.clear()

    while len(search.kept) > min_keep:
        order = sorted(search.kept - search.blocked.keys(), key=key)
        if not order:
            break
        best = order[0]
        if best in fresh:
            if estimate[best] < search.floor:
                search.below_floor = True
                break
            if not search.refused(best, blocker):
                take(best)
            continue
        path = order[: max(1, min(depth, len(search.kept) - min_keep, len(order)))]
        sims = oracle([search.kept - set(path[: j + 1]) for j in range(len(path))])
        search.evaluations += len(path)
        search.calls += 1
        taken = 0
        for j, p in enumerate(path):
            estimate[p] = float(sims[j])  # measured against the prompt as it is now
            search.measure(p, estimate[p])
            fresh.add(p)
            rest = order[j + 1 :]
            if (
                estimate[p] < search.floor
                or (rest and key(rest[0]) < key(p))
                or search.refused(p, blocker)
            ):
                break  # not a step the lazy rule takes now: the main loop decides
            take(p)
            taken += 1
        depth = min(speculate, 2 * depth) if taken == len(path) else max(1, taken)
    return search.result()


def naive_greedy_prune(
    phrases: Sequence[int],
    original: float,
    oracle: Oracle,
    tolerance: float = 0.01,
    min_keep: int = 1,
    blocker: Blocker | None = None,
) -> PruneSearch:
    """The quadratic reference: re-measure every candidate at every step."""
    search = _Progress(phrases, original, tolerance)
    while len(search.kept) > min_keep:
        candidates = sorted(search.kept - search.blocked.keys())
        if not candidates:
            break
        sims = oracle([search.kept - {p} for p in candidates])
        search.evaluations += len(candidates)
        search.calls += 1
        for p, s in zip(candidates, sims):
            search.measure(p, float(s))
        k = int(np.argmax(sims))
        if sims[k] < search.floor:
            search.below_floor = True
            break
        if not search.refused(candidates[k], blocker):
            search.take(candidates[k], float(sims[k]))
    return search.result()

"""Keep / weak / prune per phrase, aggregated over the images of a batch.

The evidence is the calibrated presence (``presence``: is the phrase seen, against fixed
references, whatever else the prompt says) and, for pruning, whether the prompt needs
the phrase (the suggested pruned prompt drops it; its leave-one-out contribution):
- keep: seen (presence at least ``SEEN``);
- prune: not seen (presence under ``NOT_SEEN``) and the pruned prompt drops it (removing
  it keeps the whole prompt's similarity within the tolerance, or it is clearly not seen:
  ``cosine_z`` under the model's ``absent_z``, where the similarity guard yields);
- weak: in between, or not seen but the prompt's similarity needs it.
The elimination probabilities stay in the report (the ranking table) but no longer
decide: in a later round, among absent phrases, one still wins with a high probability.
``SEEN`` and ``NOT_SEEN`` are on the presence scale, the same for every model; where
they fall in cosine terms is the model's calibration (``calibration``), fitted on the
benchmark world (bench/bench_advice.py, bench/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN
from clipprobe_ext.results import ImageAnalysis, PhraseInfo, PhraseVerdict

__all__ = ["NOT_SEEN", "SEEN", "phrase_verdicts"]


def phrase_verdicts(
    phrases: Sequence[PhraseInfo],
    images: Sequence[ImageAnalysis],
    pruned: set[int] | None,
    threshold: float,
    clearly: dict[int, tuple[float, float]] | None = None,
    blocked: set[int] | None = None,
) -> list[PhraseVerdict]:
    """``clearly``: the phrases the pruned prompt dropped without the similarity guard,
    with their ``cosine_z`` and the model's ``absent_z`` (named in the reason);
    ``blocked``: phrases the pruned prompt keeps because their cut would not be clean
    (the report adds the reason), not because the similarity needs them."""
    verdicts = []
    full = [a.contribution.full_similarity for a in images if a.contribution is not None]
    full_similarity = float(np.mean(full)) if full else None
    for phrase in phrases:
        if not phrase.measurable:
            continue
        best = np.array([a.ranking.max_probability(phrase.index) for a in images])
        contribs = [
            a.contribution.contributions[phrase.index] for a in images if a.contribution is not None
        ]
        c = np.array([x for x in contribs if x is not None], dtype=np.float64)
        contribution = float(c.mean()) if c.size else None
        scores = [
            a.presence[phrase.index]
            for a in images
            if a.presence is not None and a.presence[phrase.index] is not None
        ]
        p = np.array(scores, dtype=np.float64)
        presence = float(p.mean()) if p.size else None
        dropped = pruned is not None and phrase.index in pruned
        verdict, reason = _decide(presence, float(best.mean()), threshold, dropped, pruned)
        if blocked and phrase.index in blocked and presence is not None and not dropped:
            reason = (
                f"not seen: {presence:.2f} (under {NOT_SEEN:.2f}), but it cannot be cut cleanly"
            )
        if clearly and phrase.index in clearly and verdict == "prune":
            z, point = clearly[phrase.index]
            reason = (
                f"not seen: {presence:.2f} (under {NOT_SEEN:.2f}), clearly: cosine z {z:.2f} "
                f"(under {point:.2f}); the pruned prompt drops it whatever the similarity does"
            )
        if contribution is not None and full_similarity is not None:
            reason += "; " + _without_it(contribution, full_similarity)
        verdicts.append(
            PhraseVerdict(
                index=phrase.index,
                text=phrase.text,
                verdict=verdict,
                max_probability=float(best.mean()),
                max_probability_std=float(best.std()),
                contribution=contribution,
                contribution_std=float(c.std()) if c.size else None,
                pruned=dropped,
                reason=reason,
                presence=presence,
                presence_std=float(p.std()) if p.size else None,
            )
        )
    return verdicts


#: Under this whole-prompt similarity, or for a change larger than the similarity itself,
#: a share means little ("loses 2370 %"): the change is given as a difference instead.
RELATIVE_FROM = 0.05


def _without_it(contribution: float, full_similarity: float) -> str:
    """What the whole prompt's similarity does without the phrase, in words."""
    change = "loses" if contribution >= 0 else "gains"
    if abs(full_similarity) >= RELATIVE_FROM and abs(contribution) <= abs(full_similarity):
        return f"the prompt {change} {abs(contribution / full_similarity):.1%} without it"
    return f"the prompt {change} {abs(contribution):.4f} of similarity without it"


def _decide(
    presence: float | None, best: float, threshold: float, dropped: bool, pruned: set | None
) -> tuple[str, str]:
    if presence is None:  # no calibration: the ranking alone, never a prune
        seen = best > threshold
        return ("keep" if seen else "weak"), (
            f"best round probability {best:.1%} (no calibrated presence)"
        )
    if presence >= SEEN:
        return "keep", f"seen: {presence:.2f} (seen from {SEEN:.2f})"
    if presence < NOT_SEEN:
        if dropped:
            return (
                "prune",
                f"not seen: {presence:.2f} (under {NOT_SEEN:.2f}); the pruned prompt drops it",
            )
        if pruned is None:
            return "weak", f"not seen: {presence:.2f} (under {NOT_SEEN:.2f}); no pruning was run"
        return "weak", (
            f"not seen: {presence:.2f} (under {NOT_SEEN:.2f}), but the prompt's similarity needs it"
        )
    return "weak", f"unsure: {presence:.2f} (seen from {SEEN:.2f}, not seen under {NOT_SEEN:.2f})"

"""Keep / weak / prune / cannot judge per phrase, aggregated over the images of a batch,
with a reason code.

A phrase that makes a claim CLIP cannot check (a position, a count, a negation, text to
be written: ``judgeable``) is ``cannot_judge`` whatever its numbers say (they stay in the
verdict).  Otherwise the evidence is the calibrated presence (``presence``, the same scale
for every model): keep from ``SEEN``; weak in between (unsure); under ``NOT_SEEN`` a
phrase is not seen and its verdict is what the pruned prompt did with it: prune when it
dropped it, weak when the search kept it, the reason naming the search's own record of
why (``HeldPhrase``).  A model without a fit has no presence: ``uncalibrated`` decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN
from clipprobe_ext.analysis.judgeable import unjudgeable
from clipprobe_ext.analysis.uncalibrated import uncalibrated_rule
from clipprobe_ext.results import (
    HoldCode,
    ImageAnalysis,
    PhraseInfo,
    PhraseVerdict,
    PruneResult,
    Verdict,
    VerdictCode,
    VerdictReason,
)

__all__ = ["NOT_SEEN", "SEEN", "mean_presence", "phrase_verdicts"]

_HELD: dict[HoldCode, VerdictCode] = {
    "below_floor": "not_seen_needed",
    "last_phrase": "not_seen_last",
    "cannot_cut_cleanly": "cannot_cut_cleanly",
}


def mean_presence(scores: Sequence[float]) -> float:
    """The batch's presence of a phrase; the pruning's candidates use this same mean, so a
    phrase is "not seen" for both or for neither."""
    return float(np.array(scores, dtype=np.float64).mean())


def phrase_verdicts(
    phrases: Sequence[PhraseInfo],
    images: Sequence[ImageAnalysis],
    pruning: PruneResult | None,
    threshold: float,
    clearly: Mapping[int, float] | None = None,
) -> list[PhraseVerdict]:
    """``clearly``: the ``cosine_z`` of the phrases the pruned prompt dropped as clearly
    not seen (named by the reason)."""
    verdicts = []
    for phrase in phrases:
        if not phrase.measurable:
            continue
        best = np.array([a.ranking.max_probability(phrase.index) for a in images])
        contribs = [
            a.contribution.contributions[phrase.index] for a in images if a.contribution is not None
        ]
        c = np.array([x for x in contribs if x is not None], dtype=np.float64)
        scores = [
            a.presence[phrase.index]
            for a in images
            if a.presence is not None and a.presence[phrase.index] is not None
        ]
        p = np.array(scores, dtype=np.float64)
        presence = mean_presence(scores) if scores else None
        claim = unjudgeable(phrase.text)
        if claim is not None:  # never pruned on CLIP's word: it cannot check the claim
            verdict, why = (
                "cannot_judge",
                VerdictReason("cannot_judge", kind=claim.kind, cue=claim.cue),
            )
        else:
            verdict, why = _decide(phrase.index, presence, float(best.mean()), threshold, pruning)
        if why.code == "not_seen_clearly" and clearly and phrase.index in clearly:
            why = VerdictReason(why.code, cosine_z=float(clearly[phrase.index]))
        verdicts.append(
            PhraseVerdict(
                index=phrase.index,
                text=phrase.text,
                verdict=verdict,
                max_probability=float(best.mean()),
                max_probability_std=float(best.std()),
                contribution=float(c.mean()) if c.size else None,
                contribution_std=float(c.std()) if c.size else None,
                pruned=pruning is not None and phrase.index in pruning.removed,
                why=why,
                presence=presence,
                presence_std=float(p.std()) if p.size else None,
            )
        )
    return verdicts


def _decide(
    index: int, presence: float | None, best: float, threshold: float, pruning: PruneResult | None
) -> tuple[Verdict, VerdictReason]:
    if presence is None:  # uncalibrated: the ranking alone; never a prune on presence
        decision = uncalibrated_rule(best, threshold)
        dropped = pruning is not None and index in pruning.removed
        return ("prune" if dropped else decision.verdict), VerdictReason("uncalibrated")
    if presence >= SEEN:
        return "keep", VerdictReason("seen")
    if presence >= NOT_SEEN:
        return "weak", VerdictReason("unsure")
    if pruning is None:
        return "weak", VerdictReason("no_pruning")
    if index in pruning.removed:
        clear = index in pruning.clearly_absent
        return "prune", VerdictReason("not_seen_clearly" if clear else "not_seen_dropped")
    held = next((h for h in pruning.held if h.index == index), None)
    if held is None:  # not a candidate of this search (it ran on other evidence)
        return "weak", VerdictReason("no_pruning")
    return "weak", VerdictReason(_HELD[held.code], held=held)

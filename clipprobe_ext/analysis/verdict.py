"""Keep / weak / prune per phrase, aggregated over the images of a batch.

A verdict rests on two independent signals, so it is not the accident of one view:
- visibility: did the phrase ever rise above the threshold in the elimination ranking
  (mean over images of its best round)?
- weight in context: does the suggested pruned prompt drop it, and does removing it
  lower the whole prompt's similarity (mean leave-one-out contribution)?
"prune" needs both to say it carries no weight; "weak" is one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.results import ImageAnalysis, PhraseInfo, PhraseVerdict


def phrase_verdicts(
    phrases: Sequence[PhraseInfo],
    images: Sequence[ImageAnalysis],
    pruned: set[int] | None,
    threshold: float,
) -> list[PhraseVerdict]:
    verdicts = []
    for phrase in phrases:
        if not phrase.measurable:
            continue
        best = np.array([a.ranking.max_probability(phrase.index) for a in images])
        contribs = [
            a.contribution.contributions[phrase.index] for a in images if a.contribution is not None
        ]
        c = np.array([x for x in contribs if x is not None], dtype=np.float64)
        contribution = float(c.mean()) if c.size else None
        visible = float(best.mean()) > threshold
        dropped = pruned is not None and phrase.index in pruned
        no_gain = contribution is not None and contribution <= 0
        reasons = []
        if not visible:
            reasons.append(f"never above {threshold:.0%} in the ranking")
        if dropped:
            reasons.append("the pruned prompt keeps the CLIP score without it")
        if no_gain:
            reasons.append("removing it does not lower the prompt's similarity")
        if pruned is None and contribution is None:
            verdict = "keep" if visible else "weak"
        elif not visible and (dropped or no_gain):
            verdict = "prune"
        elif not visible or dropped or no_gain:
            verdict = "weak"
        else:
            verdict = "keep"
        if not reasons:
            reasons.append("visible in the ranking and adds to the prompt's similarity")
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
                reason="; ".join(reasons),
            )
        )
    return verdicts

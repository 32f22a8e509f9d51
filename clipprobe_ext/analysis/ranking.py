"""Elimination ranking: the method ClipProbe is built on.

Rank the phrases against the image with ``softmax(logit_scale * cos(image, phrase))``,
report those above the threshold, remove the top phrase and repeat for k rounds, so
that a dominant phrase (an artist, a style) stops hiding the weaker ones.  The original
script ran the whole model every round; a phrase's embedding does not depend on the
other phrases, so one encode of every phrase gives exactly the same probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.results import RankingResult, RankingRound, SynonymGroupResult


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def elimination_ranking(
    similarities: Sequence[float] | np.ndarray,
    logit_scale: float,
    rounds: int = 5,
    threshold: float = 0.01,
    indices: Sequence[int] | None = None,
) -> RankingResult:
    """Rank by cosine ``similarities`` (one per phrase), removing the top phrase each round.

    ``indices`` names the phrases (defaults to 0..n-1); at most ``len(similarities)``
    rounds are run.  Ties go to the earlier phrase, like ``np.argmax`` in the original.
    """
    sims = np.asarray(similarities, dtype=np.float64)
    names = list(range(len(sims))) if indices is None else list(indices)
    if len(names) != len(sims):
        raise ValueError("indices and similarities differ in length")
    remaining = list(range(len(sims)))
    result: list[RankingRound] = []
    for number in range(1, min(rounds, len(sims)) + 1):
        probs = softmax(logit_scale * sims[remaining])
        best = int(np.argmax(probs))
        result.append(
            RankingRound(
                round=number,
                candidates=[names[i] for i in remaining],
                probabilities=[float(p) for p in probs],
                top=names[remaining[best]],
            )
        )
        del remaining[best]
    return RankingResult(threshold=threshold, rounds=result)


def rank_group(
    texts: Sequence[str], similarities: Sequence[float] | np.ndarray, logit_scale: float
) -> SynonymGroupResult:
    """Near-synonyms ("girl | woman") ranked against each other only."""
    sims = np.asarray(similarities, dtype=np.float64)
    probs = softmax(logit_scale * sims)
    return SynonymGroupResult(
        texts=list(texts),
        similarities=[float(s) for s in sims],
        probabilities=[float(p) for p in probs],
    )

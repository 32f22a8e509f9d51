"""In-context contribution: what each phrase adds to the prompt as written.

The isolated ranking scores a phrase alone; a phrase can rank low alone and still
matter in context (or rank high and add nothing the rest does not already say).
Leave-one-out measures the drop in similarity between the image and the whole prompt
when that one phrase is removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipprobe_ext.results import ContributionResult


def leave_one_out(
    full_similarity: float,
    similarity_without: Sequence[float],
    phrases: Sequence[int],
    phrase_count: int,
) -> ContributionResult:
    """Contribution of ``phrases[k]`` = full similarity - similarity without it.

    Phrases not listed (extra-network tags) get ``None``.
    """
    without: list[float | None] = [None] * phrase_count
    contributions: list[float | None] = [None] * phrase_count
    for index, sim in zip(phrases, np.asarray(similarity_without, dtype=np.float64)):
        without[index] = float(sim)
        contributions[index] = float(full_similarity - sim)
    return ContributionResult(
        full_similarity=float(full_similarity),
        similarity_without=without,
        contributions=contributions,
    )

"""What one picture says about each phrase of its own prompt, and whether it is "seen".

The audit asks one yes/no question per picture and phrase.  The default answer is the
calibrated presence score of the single-image verdicts (``analysis.presence``, against
the model's reference banks): seen when the presence reaches ``verdict.SEEN``, not
seen under ``verdict.NOT_SEEN``.  Which signal answers is a single function,
``SeenFunction``, so another score can replace it without touching the pipeline or the
aggregation: pass it as ``AuditOptions.seen``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from clipprobe_ext.analysis.presence import presence
from clipprobe_ext.analysis.ranking import elimination_ranking
from clipprobe_ext.analysis.references import ReferenceBanks
from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN

__all__ = ["NOT_SEEN", "SEEN", "PhraseEvidence", "SeenFunction", "gather", "seen_by_presence"]


@dataclass(frozen=True)
class PhraseEvidence:
    """One picture against its prompt's measurable phrases; arrays are per phrase."""

    presence: np.ndarray | None  # calibrated presence in [0, 1]; None: uncalibrated
    best: np.ndarray  # highest probability over the elimination rounds (at most n - 1)
    contribution: np.ndarray | None  # leave-one-out (only with ``--contribution``)


#: Returns a bool per phrase: is it seen in this picture?  None: it cannot tell.
SeenFunction = Callable[[PhraseEvidence], "np.ndarray | None"]


def seen_by_presence(evidence: PhraseEvidence) -> np.ndarray | None:
    """Seen = calibrated presence at least ``SEEN``: the single-image "keep" threshold;
    None for an uncalibrated model.

    The presence compares the phrase with fixed references, so it means the same in a
    prompt of two phrases and of thirty; the ranking and the leave-one-out do not.
    """
    return None if evidence.presence is None else evidence.presence >= SEEN


def gather(
    image_embedding: np.ndarray,
    phrase_embeddings: np.ndarray,
    banks: ReferenceBanks,
    full_embedding: np.ndarray | None,
    without_embeddings: np.ndarray | None,
    logit_scale: float,
    rounds: int,
    threshold: float,
) -> PhraseEvidence:
    """All the per-phrase numbers of one picture, from embeddings only (no model call)."""
    sims = phrase_embeddings @ image_embedding
    scores = presence(image_embedding[None, :], phrase_embeddings, banks)
    scores = None if scores is None else scores[0]
    # The last candidate left always has probability 1 (and the last two share it), so the
    # audit never ranks the final lone phrase: at most n - 1 rounds.
    ranking = elimination_ranking(sims, logit_scale, max(1, min(rounds, len(sims) - 1)), threshold)
    best = np.array([ranking.max_probability(i) for i in range(len(sims))])
    contribution = None
    if full_embedding is not None and without_embeddings is not None:
        contribution = (
            float(full_embedding @ image_embedding) - without_embeddings @ image_embedding
        )
    return PhraseEvidence(scores, best, contribution)

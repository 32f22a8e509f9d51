"""Does writing a word change what CLIP sees?  Pictures that asked for it against those that did not.

For each phrase of a folder, its cosine with every picture whose prompt contains it is
compared with its cosine with pictures whose prompts do not (AUROC: the chance that a
picture that asked for it scores higher than one that did not; 0.5 means writing it
changed nothing CLIP can see).  A rank statistic of the raw cosine: no calibration, no
threshold, the same on any model.  Confounded where a phrase nearly always comes with
another one: then the effect is that of writing both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Two phrases whose prompt sets overlap this much (Jaccard) are read as written together.
CONFOUNDED_FROM = 0.9
#: Each side needs at least this many pictures for an AUROC.
MIN_PICTURES = 3


@dataclass(frozen=True)
class WritingEffect:
    phrase: str
    auroc: float | None  # None when one side has fewer than MIN_PICTURES pictures
    with_count: int  # pictures whose prompt contains the phrase
    without_count: int  # pictures whose prompt does not
    confounded_with: tuple[str, ...] = ()  # phrases written (nearly) always with it


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half (each value ranked at its ties' mean)."""
    values = np.concatenate([positive, negative]).astype(np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def writing_effects(
    phrases: Sequence[str],
    cosines: np.ndarray,
    asked: np.ndarray,
) -> list[WritingEffect]:
    """``cosines`` [pictures, phrases]; ``asked`` [pictures, phrases] bool: the picture's
    prompt contains the phrase.  One effect per phrase, in order."""
    cosines = np.asarray(cosines, dtype=np.float64)
    asked = np.asarray(asked, dtype=bool)
    if cosines.shape != asked.shape or cosines.shape[1] != len(phrases):
        raise ValueError("cosines and asked must both be [pictures, phrases]")
    counts = asked.sum(0)
    overlap = asked.T.astype(np.float64) @ asked.astype(np.float64)  # [P, P] pictures in common
    partners = [confounded_with(phrases, counts, overlap[k], k) for k in range(len(phrases))]
    return [
        writing_effect(phrase, cosines[:, k], asked[:, k], partners[k])
        for k, phrase in enumerate(phrases)
    ]


def writing_effect(
    phrase: str, cosines: np.ndarray, asked: np.ndarray, partners: tuple[str, ...] = ()
) -> WritingEffect:
    """One phrase: its cosine on every picture, and which pictures asked for it."""
    asked = np.asarray(asked, dtype=bool)
    yes, no = cosines[asked], cosines[~asked]
    enough = len(yes) >= MIN_PICTURES and len(no) >= MIN_PICTURES
    return WritingEffect(
        phrase, auroc(yes, no) if enough else None, int(len(yes)), int(len(no)), partners
    )


def confounded_with(
    phrases: Sequence[str], counts: np.ndarray, overlap: np.ndarray, k: int
) -> tuple[str, ...]:
    """The phrases written (nearly) always with phrase ``k``: ``counts`` [P] pictures that
    asked for each phrase, ``overlap`` [P] pictures that asked for both it and ``k``."""
    union = counts[k] + counts - overlap
    jaccard = np.divide(overlap, union, out=np.zeros(len(counts)), where=union > 0)
    return tuple(phrases[j] for j in np.flatnonzero(jaccard >= CONFOUNDED_FROM) if j != k)

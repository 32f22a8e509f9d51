"""Calibrated presence: is this phrase seen in this picture, whatever else the prompt says?

The elimination softmax is relative to the prompt: among phrases that are all absent, one
still wins.  Presence compares a phrase with fixed references instead (``references``), so
it means the same in any prompt and after any number of rounds.  The score was chosen
among other candidates by ``bench/bench_advice.py`` (they live in ``bench/signals.py``).
"""

from __future__ import annotations

import numpy as np

from clipprobe_ext.analysis.references import ReferenceBanks


def cosine_z(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """[M, P]: the cosine in units of the model's unrelated pairs (bank pictures x bank
    phrases): how far above an unrelated pair this phrase is on this picture."""
    reference = banks.images @ banks.phrases.T
    return (images @ phrases.T - reference.mean()) / (reference.std() + 1e-6)


def presence(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray | None:
    """Calibrated presence in [0, 1], [len(images), len(phrases)], from unit embeddings;
    ``None`` for an uncalibrated model (no fit of its own: ``calibration``).

    ``cosine_z`` (the best prompt-independent order on the benchmark world) mapped to 0-1
    by the model's calibration; when the fit has a pair for ``phrase_z`` too, the smaller
    of the two."""
    fit = banks.calibration
    if fit is None:
        return None
    own = phrase_z(images, phrases, banks) if fit.uses_phrase_level else None
    return fit.presence(cosine_z(images, phrases, banks), own)


def phrase_z(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """[M, P]: the cosine against the phrase's own cosines on the pictures of nothing (a
    phrase that matches every picture, like a quality tag, is high there too)."""
    s_jp = banks.images @ phrases.T  # [J, P]
    return (images @ phrases.T - s_jp.mean(0)) / (s_jp.std(0) + 1e-6)

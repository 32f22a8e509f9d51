"""Calibrated presence: is this phrase seen in this picture, whatever else the prompt says?

The elimination softmax is relative to the prompt: among phrases that are all absent,
one still wins.  A presence score compares a phrase with fixed references instead (see
``references``), so it means the same in any prompt and after any number of rounds.

Candidates (all measured by ``bench/bench_advice.py``; ``presence`` is the one chosen):
- ``cosine``: the raw similarity (no reference);
- ``phrase_z``: the phrase's similarity to this picture against its similarities to the
  pictures of nothing (z-score): removes the phrase's own level;
- ``image_z``: against the everyday phrases' similarities to this picture: removes the
  picture's own level;
- ``null``: minus the similarity of the empty prompt;
- ``background``: a softmax of the phrase against the everyday phrases alone;
- ``cosine_z``: the cosine in units of the model's unrelated pairs (one standardisation
  per model, the same for every phrase and picture);
- ``double_z``: both levels removed (the phrase's and the picture's), in units of the
  everyday phrases' spread on this picture; ``double_median`` the same with medians.
"""

from __future__ import annotations

import numpy as np

from clipprobe_ext.analysis.references import ReferenceBanks


def signals(
    images: np.ndarray,
    phrases: np.ndarray,
    banks: ReferenceBanks,
    logit_scale: float,
    null: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every candidate score, each [len(images), len(phrases)], from unit embeddings."""
    s = images @ phrases.T  # [M, P]
    s_jp = banks.images @ phrases.T  # [J, P]: the phrases on pictures of nothing
    s_ik = images @ banks.phrases.T  # [M, K]: everyday phrases on the pictures
    s_jk = banks.images @ banks.phrases.T  # [J, K]
    out = {"cosine": s}
    # One standardisation per model: the everyday phrases on the pictures of nothing give
    # the level and spread of an unrelated pair.
    out["cosine_z"] = (s - s_jk.mean()) / (s_jk.std() + 1e-6)
    out["phrase_z"] = (s - s_jp.mean(0)) / (s_jp.std(0) + 1e-6)
    out["image_z"] = (s - s_ik.mean(1, keepdims=True)) / (s_ik.std(1, keepdims=True) + 1e-6)
    if null is not None:
        out["null"] = s - (images @ null)[:, None]
    logits = logit_scale * s  # [M, P]
    bank = logit_scale * s_ik  # [M, K]
    bank_max = bank.max(1, keepdims=True)
    bank_sum = np.exp(bank - bank_max).sum(1, keepdims=True)  # relative to bank_max
    top = np.maximum(logits, bank_max)
    mine = np.exp(logits - top)
    out["background"] = mine / (mine + bank_sum * np.exp(bank_max - top))
    r = s - s_jp.mean(0)  # the phrase's own level removed
    r_k = s_ik - s_jk.mean(0)  # the same for the everyday phrases
    out["double_z"] = (r - r_k.mean(1, keepdims=True)) / (r_k.std(1, keepdims=True) + 1e-6)
    # The same with medians: robust to a reference that happens to show the phrase.
    r = s - np.median(s_jp, 0)
    r_k = s_ik - np.median(s_jk, 0)
    spread = np.median(np.abs(r_k - np.median(r_k, 1, keepdims=True)), 1, keepdims=True) * 1.4826
    out["double_median"] = (r - np.median(r_k, 1, keepdims=True)) / (spread + 1e-6)
    return out


def cosine_z(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """[M, P]: the cosine in units of the model's unrelated pairs (bank pictures x bank
    phrases): how far above an unrelated pair this phrase is on this picture."""
    reference = banks.images @ banks.phrases.T
    return (images @ phrases.T - reference.mean()) / (reference.std() + 1e-6)


def double_z(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """[M, P]: similarity minus the phrase's level on pictures of nothing, minus the same
    for the everyday phrases on this picture, in units of their spread."""
    r = images @ phrases.T - (banks.images @ phrases.T).mean(0)
    r_k = images @ banks.phrases.T - (banks.images @ banks.phrases.T).mean(0)
    return (r - r_k.mean(1, keepdims=True)) / (r_k.std(1, keepdims=True) + 1e-6)


def presence(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """Calibrated presence in [0, 1], [len(images), len(phrases)], from unit embeddings.

    ``cosine_z`` (the best prompt-independent order on the benchmark world) mapped to 0-1
    by the model's calibration (``calibration``: its own fit, or the default); when the
    fit has a pair for ``phrase_z`` too, the smaller of the two."""
    fit = banks.calibration
    own = phrase_z(images, phrases, banks) if fit.uses_phrase_level else None
    return fit.presence(cosine_z(images, phrases, banks), own)


def phrase_z(images: np.ndarray, phrases: np.ndarray, banks: ReferenceBanks) -> np.ndarray:
    """[M, P]: the cosine against the phrase's own cosines on the pictures of nothing (a
    phrase that matches every picture, like a quality tag, is high there too)."""
    s_jp = banks.images @ phrases.T  # [J, P]
    return (images @ phrases.T - s_jp.mean(0)) / (s_jp.std(0) + 1e-6)

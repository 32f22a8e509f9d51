"""Every candidate presence signal, for the benchmark that compares them.

The engine keeps only the chosen score and its parts (``clipprobe_ext.analysis.presence``:
``cosine_z``, ``phrase_z``, ``presence``); ``bench_advice.py`` measures them against the
others listed in that module's docstring, computed here from the same reference banks.
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

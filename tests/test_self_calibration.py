"""The label-free estimator's parts, on folders drawn from a known mixture: the absent part
against a plain per-phrase computation, and the resamples that keep a small folder from
calibrating on luck."""

from __future__ import annotations

import numpy as np
import pytest

from clipprobe_ext.analysis import self_calibration
from clipprobe_ext.analysis.self_calibration import (
    AbsentPart,
    CalibrationRefused,
    FolderEvidence,
    absent_shares,
    fit_from_folder,
)


def mixture_folder(pictures: int, gap: float, seed: int, phrases: int = 40, per: int = 4):
    """Each picture asks for ``per`` phrases; half the asked pairs are present and score
    N(gap, 1), every other pair N(0, 1).  Returns the evidence and which pairs are present."""
    rng = np.random.default_rng(seed)
    asked = np.zeros((pictures, phrases), dtype=bool)
    for row in asked:
        row[rng.choice(phrases, per, replace=False)] = True
    present = asked & (rng.random(asked.shape) < 0.5)
    scores = (rng.normal(0, 1, asked.shape) + gap * present).astype(np.float32)
    names = tuple(f"phrase {k}" for k in range(phrases))
    return FolderEvidence(scores, scores, scores, asked, names), present


def test_the_absent_part_is_each_phrase_weighted_by_its_absent_pairs():
    """``below`` and ``quantile`` against a loop over the phrases and a full sort (scores
    rounded so that ties occur)."""
    evidence, _ = mixture_folder(120, 1.0, seed=3)
    scores = np.round(np.asarray(evidence.cosine_z, dtype=np.float64), 1)
    asked = evidence.asked
    shares, _ = absent_shares(evidence)
    part = AbsentPart.of(scores, asked, shares)
    grid = np.linspace(-3, 3, 41)
    below = np.zeros(len(grid))
    values, weights = [], []
    for k in np.flatnonzero(asked.any(0)):
        others = scores[~asked[:, k], k]
        count = shares[k] * asked[:, k].sum()
        below += count * np.array([(others < g).sum() for g in grid]) / len(others)
        values += list(others)
        weights += [count / len(others)] * len(others)
    np.testing.assert_allclose(part.below(grid), below, atol=1e-9)
    assert part.total == pytest.approx(sum(weights))
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.array(weights)[order])
    for q in (0.05, 0.5, 0.95):
        expected = np.array(values)[order][np.searchsorted(cumulative, q * cumulative[-1])]
        assert part.quantile(q) == pytest.approx(expected)


def test_the_same_folder_gives_the_same_fit():
    evidence, _ = mixture_folder(200, 1.5, seed=1)
    first, second = fit_from_folder(evidence), fit_from_folder(evidence)
    assert first.fit.to_dict() == second.fit.to_dict()
    assert first.diagnostics["resamples"] == self_calibration.RESAMPLES


def test_a_small_folder_the_resamples_cannot_vouch_for_is_refused(monkeypatch):
    """A weak model (present pairs 0.6 above absent ones): 60 pictures separate well enough
    by the folder's own figure (0.88), not in a tenth of its resamples; without resamples
    the same folder would calibrate, and 2,000 pictures of the same model do."""
    small, _ = mixture_folder(60, 0.6, seed=2)
    with pytest.raises(CalibrationRefused, match="resamples of the pictures"):
        fit_from_folder(small)
    monkeypatch.setattr(self_calibration, "RESAMPLES", 0)
    assert fit_from_folder(small).diagnostics["separation"] >= self_calibration.MIN_SEPARATION
    monkeypatch.undo()
    big, present = mixture_folder(2000, 0.6, seed=2)
    run = fit_from_folder(big)
    scores = np.asarray(big.cosine_z)
    assert run.diagnostics["separation_cautious"] >= self_calibration.MIN_SEPARATION
    assert np.mean(scores[present] < run.fit.not_seen_z) <= 0.02


def test_the_cuts_are_the_cautious_side_of_the_resamples():
    """ "Not seen" is never above the folder's own cut, and the present pairs of the mixture
    stay above it; "seen" is never below the folder's own."""
    evidence, present = mixture_folder(300, 1.5, seed=4)
    run = fit_from_folder(evidence)
    point = run.diagnostics["not_seen_point"]
    assert run.fit.not_seen_z <= point
    scores = np.asarray(evidence.cosine_z)
    assert np.mean(scores[present] < run.fit.not_seen_z) <= 0.02
    assert run.fit.seen_z > run.fit.not_seen_z

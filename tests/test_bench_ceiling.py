"""The ceiling of bench/bench_ceiling.py: the most absent rows any cut can put under "not
seen" at a bound on present ones, checked where the answer is known in closed form."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_ceiling import ceiling, tail_needed, under  # noqa: E402


def _two_normals(gap: float, n: int = 40000, seed: int = 0):
    rng = np.random.default_rng(seed)
    present = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    cz = np.r_[rng.normal(gap, 1, n), rng.normal(0, 1, n)]
    return cz, present


def test_one_score_reaches_the_normal_answer():
    """Present N(gap, 1), absent N(0, 1): with 2 % of present under the cut, the cut is
    gap + z(0.02) and the absent share under it Phi(gap + z(0.02))."""
    for gap in (2.0, 3.0):
        cz, present = _two_normals(gap)
        pz = np.zeros_like(cz)  # never under a phrase-level cut below 0
        best, cut, _ = ceiling(cz, pz, present, ~present, 0.02)
        expected = norm.cdf(gap + norm.ppf(0.02))
        assert abs(best - expected) < 0.02
        assert abs(cut - (gap + norm.ppf(0.02))) < 0.05
        assert under(cz, pz, cut, None)[present].mean() <= 0.02


def test_a_second_score_only_adds():
    """A phrase-level score that separates too can only raise the ceiling, and the bound
    on present rows holds for the pair of cuts."""
    cz, present = _two_normals(2.0)
    rng = np.random.default_rng(1)
    pz = np.where(present, rng.normal(2.0, 1, len(cz)), rng.normal(0, 1, len(cz)))
    alone, _, _ = ceiling(cz, np.full_like(cz, 9.0), present, ~present, 0.02)
    both, c, p = ceiling(cz, pz, present, ~present, 0.02)
    assert p is not None and both > alone + 0.05
    assert under(cz, pz, c, p)[present].mean() <= 0.02


def test_tail_needed_of_a_normal():
    """A normal's 0.5 % quantile lies z(0.995) / (2 z(0.75)) = 1.91 IQR under its median."""
    cz, present = _two_normals(0.0, n=200000)
    expected = norm.ppf(0.995) / (2 * norm.ppf(0.75))
    assert abs(tail_needed(cz, present) - expected) < 0.03

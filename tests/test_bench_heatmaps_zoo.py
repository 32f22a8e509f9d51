"""The contrast maps bench/bench_heatmaps_zoo.py measures, against a direct computation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_heatmaps_zoo import contrasted  # noqa: E402


def test_contrast_against_a_direct_computation():
    rng = np.random.default_rng(3)
    grids = [rng.random((4, 4)) for _ in range(3)]
    grids[1][2, 2] = grids[2][2, 2] = 5.0  # two maps share their hottest patch
    grids[0][0, 0] = 5.0
    out = contrasted(grids)
    for k, grid in enumerate(grids):
        own = grid / grid.max()
        others = np.mean([g / g.max() for j, g in enumerate(grids) if j != k], axis=0)
        want = np.clip(own - others, 0, None)
        np.testing.assert_allclose(out[k], want / want.max(), rtol=1e-5, atol=1e-7)
    # a phrase whose map is everyone's peak loses it; the particular place wins
    assert np.argmax(out[0]) == 0

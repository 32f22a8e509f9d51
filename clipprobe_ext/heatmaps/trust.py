"""When a phrase's map can be trusted.

A map that peaks on the same patch as another phrase's map of the same picture says
"where CLIP looks", not "where this phrase is": on the benchmark zoo such maps miss their
object far more often (``bench/bench_heatmaps_zoo.py``, which also measured subtracting
the other phrases' maps: no better, so not used).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def peak_patches(grids: Sequence[np.ndarray]) -> list[int]:
    """Per map, its hottest patch (flat index); -1 for a map of zeros, which has none."""
    return [int(np.argmax(g)) if np.max(g) > 0 else -1 for g in grids]


def shared_peaks(grids: Sequence[np.ndarray]) -> list[bool]:
    """Per map, whether another map of the same picture has its hottest patch there too."""
    peaks = peak_patches(grids)
    return [p >= 0 and peaks.count(p) > 1 for p in peaks]

"""When a phrase's map can be trusted, and maps that tell phrases apart.

A map that peaks on the same patch as another phrase's map of the same picture says
"where CLIP looks", not "where this phrase is": on the benchmark zoo such maps miss their
object far more often (``bench/bench_heatmaps_zoo.py``).  Subtracting the other phrases'
mean map (each normalised to its peak) keeps what is particular to the phrase; it is
arithmetic on maps already computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _normalised(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float32)
    peak = float(grid.max()) if grid.size else 0.0
    return grid / peak if peak > 0 else np.zeros_like(grid)


def peak_patches(grids: Sequence[np.ndarray]) -> list[int]:
    """Per map, its hottest patch (flat index); -1 for a map of zeros, which has none."""
    return [int(np.argmax(g)) if np.max(g) > 0 else -1 for g in grids]


def shared_peaks(grids: Sequence[np.ndarray]) -> list[bool]:
    """Per map, whether another map of the same picture has its hottest patch there too."""
    peaks = peak_patches(grids)
    return [p >= 0 and peaks.count(p) > 1 for p in peaks]


def contrasted(grids: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each map less the mean of the others (all normalised to their peak), clipped at 0
    and normalised again; a single map is returned as it is."""
    normal = [_normalised(g) for g in grids]
    if len(normal) < 2:
        return normal
    total = np.sum(normal, axis=0)
    out = []
    for grid in normal:
        others = (total - grid) / (len(normal) - 1)
        out.append(_normalised(np.clip(grid - others, 0, None)))
    return out

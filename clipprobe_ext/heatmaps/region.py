"""Which phrases made this region?  A ranking read off maps already computed.

Each phrase's map is normalised on its own (its hottest patch is 1), so values of two maps
do not compare.  What does compare is how much of a phrase's own relevance falls inside
the region: its *share* (0-1), and its *lift*, the share over the region's share of the
picture CLIP saw (1: no more than anywhere else; 3: three times as concentrated here).
Phrases are ranked by lift.  No model runs: this is arithmetic on the maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clipprobe_ext.errors import ClipProbeError
from clipprobe_ext.heatmaps.compute import Box, Heatmap

#: A clicked point stands for a square this many patches wide around it.
POINT_PATCHES = 1


@dataclass(frozen=True)
class RegionScore:
    phrase: str
    share: float  # of the phrase's relevance, inside the region
    lift: float  # share / the region's share of the area CLIP saw


def region_box(region: Sequence[float], heatmap: Heatmap) -> tuple[float, float, float, float]:
    """``[x, y]`` (a point) or ``[x0, y0, x1, y1]`` (a box) in picture pixels, as a box
    clipped to the square CLIP saw; ``ClipProbeError`` when nothing of it is inside."""
    try:
        values = [float(v) for v in region]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (2, 4) or not all(np.isfinite(values)):
        raise ClipProbeError("A region is a point [x, y] or a box [x0, y0, x1, y1] in pixels.")
    left, top, right, bottom = heatmap.crop_box
    if len(values) == 2:
        half = POINT_PATCHES * (right - left) / heatmap.grid.shape[0] / 2
        x, y = values
        values = [x - half, y - half, x + half, y + half]
    x0, x1 = sorted(values[0::2])
    y0, y1 = sorted(values[1::2])
    box = max(x0, left), max(y0, top), min(x1, right), min(y1, bottom)
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ClipProbeError(
            f"The region lies outside the centre square CLIP saw ({left}, {top}, {right}, "
            f"{bottom}): choose a point inside it."
        )
    return box


def cell_weights(
    grid_size: int, crop_box: Box, box: tuple[float, float, float, float]
) -> np.ndarray:
    """[g, g]: the share of each patch cell that the box covers."""
    left, top, right, bottom = crop_box
    edges_x = np.linspace(left, right, grid_size + 1)
    edges_y = np.linspace(top, bottom, grid_size + 1)
    cover_x = np.clip(np.minimum(edges_x[1:], box[2]) - np.maximum(edges_x[:-1], box[0]), 0, None)
    cover_y = np.clip(np.minimum(edges_y[1:], box[3]) - np.maximum(edges_y[:-1], box[1]), 0, None)
    cover_x /= edges_x[1] - edges_x[0]
    cover_y /= edges_y[1] - edges_y[0]
    return np.outer(cover_y, cover_x)


def rank_region(heatmaps: Sequence[Heatmap], region: Sequence[float]) -> list[RegionScore]:
    """The phrases of ``heatmaps`` (maps of one picture) ranked by their lift in ``region``."""
    if not heatmaps:
        return []
    first = heatmaps[0]
    weights = cell_weights(first.grid.shape[0], first.crop_box, region_box(region, first))
    area = float(weights.sum() / weights.size)
    out = []
    for heatmap in heatmaps:
        grid = np.asarray(heatmap.grid, dtype=np.float64)
        total = float(grid.sum())
        share = float((grid * weights).sum() / total) if total > 0 else 0.0
        out.append(RegionScore(heatmap.phrase, share, share / area))
    return sorted(out, key=lambda s: -s.lift)

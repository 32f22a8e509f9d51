"""Words for "which phrases made this region" and for a map that may not be trusted."""

from __future__ import annotations

from collections.abc import Sequence

from clipprobe_ext.heatmaps.region import RegionScore
from clipprobe_ext.report.numbers import fixed, percent

#: Phrases listed for a region, at most.
SHOWN = 5

LIFT_MEANING = "times as concentrated there as over the whole picture (1: no more than elsewhere)"


def region_name(region: Sequence[float]) -> str:
    values = [round(float(v)) for v in region]
    if len(values) == 2:
        return f"around ({values[0]}, {values[1]})"
    return f"in ({values[0]}, {values[1]})–({values[2]}, {values[3]})"


def region_lines(scores: Sequence[RegionScore], limit: int = SHOWN) -> list[str]:
    """One line per phrase, most concentrated first: lift and share with their meaning."""
    return [
        f"{n}. “{s.phrase}”: {fixed(s.lift, 1)}× ({percent(s.share, 0)} of its map)"
        for n, s in enumerate(scores[:limit], start=1)
    ]


def region_text(region: Sequence[float], scores: Sequence[RegionScore], label: str = "") -> str:
    """The ranking as one paragraph for notes and the command line."""
    where = f"{label} " if label else ""
    head = f"Which phrases made the region {where}{region_name(region)}: "
    if not scores:
        return head + "no phrase has a map."
    return head + "; ".join(region_lines(scores)) + f" (×: {LIFT_MEANING})."


def shared_peak_warning(phrase: str, others: Sequence[str]) -> str:
    """A map whose hottest point is also another phrase's: say what it may show."""
    names = ", ".join(f"“{o}”" for o in others[:3])
    return (
        f"The map of “{phrase}” peaks where the map of {names} peaks too: it may show where "
        "CLIP looks rather than where this phrase is; trust it less."
    )

"""The one-line summaries a generation's infotexts carry (probe after generation): one per
picture, and one for the batch's grid, which the WebUI shows first after a batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from clipprobe_ext.results import ProbeReport

#: Verdicts named in a summary, in this order (any other verdict after them).
NAMED = ("weak", "prune")


def verdict_groups(report: ProbeReport) -> dict[str, list[str]]:
    """Verdict -> the texts of its phrases (one line each), in prompt order."""
    groups: dict[str, list[str]] = {"keep": [], "weak": [], "prune": []}
    for v in report.verdicts:
        groups.setdefault(v.verdict, []).append(" ".join(v.text.split()))
    return groups


def _shown(names: Sequence[str], limit: int) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def summary_text(report: ProbeReport, limit: int = 8) -> str:
    """One plain line, e.g. ``3 keep, 2 weak (umbrella, red), 1 prune (blue)``."""
    groups = verdict_groups(report)
    parts = [f"{len(groups['keep'])} keep"]
    for kind in (*NAMED, *sorted(set(groups) - {"keep", *NAMED})):
        names = groups.get(kind, [])
        label = kind.replace("_", " ")
        parts.append(f"{len(names)} {label} ({_shown(names, limit)})" if names else f"0 {label}")
    return ", ".join(parts)


def batch_summary_text(pictures: Sequence[Mapping[str, Sequence[str]]], limit: int = 8) -> str:
    """One plain line for a batch from each picture's ``verdict_groups``, e.g.
    ``4 images: 2 keep in all; weak: red (2 of 4); prune: blue (4 of 4), hat (1 of 4)``.

    A phrase is counted once per picture under each verdict it got there; "keep in all":
    phrases kept in every picture of the batch."""
    n = len(pictures)
    counts: dict[str, Counter[str]] = {}
    order: dict[str, None] = {}  # first appearance: prompt order of the first picture
    for groups in pictures:
        for kind, names in groups.items():
            counter = counts.setdefault(kind, Counter())
            for name in dict.fromkeys(names):
                counter[name] += 1
                order.setdefault(name, None)
    kept = counts.get("keep", Counter())
    everywhere = [name for name in order if kept[name] == n]
    parts = [f"{n} image{'s' if n != 1 else ''}: {len(everywhere)} keep in all"]
    for kind in (*NAMED, *sorted(set(counts) - {"keep", *NAMED})):
        counter = counts.get(kind)
        if not counter:
            continue
        names = sorted(counter, key=lambda name: (-counter[name], list(order).index(name)))
        shown = [f"{name} ({counter[name]} of {n})" for name in names]
        parts.append(f"{kind.replace('_', ' ')}: {_shown(shown, limit)}")
    return "; ".join(parts)

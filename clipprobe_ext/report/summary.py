"""The one-line summary a generation's infotext carries (probe after generation)."""

from __future__ import annotations

from clipprobe_ext.results import ProbeReport


def summary_text(report: ProbeReport, limit: int = 8) -> str:
    """One plain line, e.g. ``3 keep, 2 weak (umbrella, red), 1 prune (blue)``."""
    groups: dict[str, list[str]] = {"keep": [], "weak": [], "prune": [], "cannot_judge": []}
    for v in report.verdicts:
        groups.setdefault(v.verdict, []).append(" ".join(v.text.split()))
    parts = [f"{len(groups['keep'])} keep"]
    for kind in ("weak", "prune", "cannot_judge"):
        names = groups[kind]
        word = kind.replace("_", " ")
        if names:
            shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
            parts.append(f"{len(names)} {word} ({shown})")
        elif kind != "cannot_judge":
            parts.append(f"0 {word}")
    return ", ".join(parts)

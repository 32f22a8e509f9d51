"""The audit as a terminal table, JSON and CSV (the HTML report is in ``html``)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from clipprobe_ext.audit.results import AuditReport

CSV_COLUMNS = [
    "phrase",
    "prompts",
    "pictures",
    "seen",
    "seen_rate",
    "seen_rate_std",
    "seen_rate_min",
    "seen_rate_max",
    "not_seen",
    "not_seen_rate",
    "mean_presence",
    "presence_std",
    "mean_probability",
    "probability_std",
    "mean_contribution",
    "tokens_per_prompt",
    "verdict",
    "habit",
]
_WIDTH = 34


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def to_json(report: AuditReport, indent: int | None = 2) -> str:
    return json.dumps(_clean(report.to_dict()), indent=indent, ensure_ascii=False)


def to_csv(report: AuditReport) -> str:
    """One row per normalised phrase."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in report.phrases:
        row = [getattr(p, c) for c in CSV_COLUMNS]
        writer.writerow(
            ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row]
        )
    return out.getvalue()


def _short(text: str, width: int = _WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _bar(rate: float, width: int = 10) -> str:
    filled = round(min(max(rate, 0.0), 1.0) * width)
    return "█" * filled + "·" * (width - filled)


def format_table(report: AuditReport, top: int = 40) -> str:
    """A readable summary: counts, habit words, phrase table, worst prompts, skipped files."""
    s = report.stats
    lines = [
        f"Audit of {', '.join(report.folders)} with {report.model_id}",
        f"  {s.pictures} pictures, {report.prompts} distinct prompts, {s.files} files "
        f"({s.encoded} encoded, {s.from_store} from the store, {s.seconds:.1f} s)",
    ]
    skipped = [
        (len(report.no_parameters), "without generation parameters"),
        (len(report.unreadable), "unreadable"),
        (len(report.vanished), "vanished during the run"),
        (len(report.unmeasurable), "with nothing CLIP can measure"),
        (len(report.grids), "WebUI grids of pictures audited on their own"),
    ]
    listed = [f"{n} {what}" for n, what in skipped if n]
    if listed:
        lines.append("  skipped: " + ", ".join(listed))
    if report.interrupted:
        lines.append("  INTERRUPTED: the figures cover the files read so far.")
    for note in report.notes:
        lines.append(f"  note: {note}")
    if report.reference:
        lines.append(f"  seen: {report.reference}")
    lines.append("")
    if report.habit_words:
        lines.append("Habit words (frequent, rarely seen):")
        for key in report.habit_words:
            p = report.phrase(key)
            assert p is not None
            lines.append(
                f"  {_short(p.phrase):<{_WIDTH}}  in {p.prompts} prompts, seen in "
                f"{p.seen}/{p.pictures} pictures ({p.seen_rate:.0%}; presence "
                f"{p.mean_presence:.2f} ± {p.presence_std:.2f}), "
                f"{p.tokens_per_prompt:.1f} tokens each time"
            )
        lines.append("")
    if report.phrases:
        lines.append(
            f"Phrases (most frequent first{', top ' + str(top) if len(report.phrases) > top else ''}):"
        )
        header = (
            f"  {'phrase':<{_WIDTH}} {'prompts':>7} {'pictures':>8}  {'seen':<10} {'rate':>5} "
            f"{'±':>4} {'presence':>11} {'tokens':>6}  verdict"
        )
        lines.append(header)
        for p in report.phrases[:top]:
            lines.append(
                f"  {_short(p.phrase):<{_WIDTH}} {p.prompts:>7} {p.pictures:>8}  {_bar(p.seen_rate)} "
                f"{p.seen_rate:>5.0%} {p.seen_rate_std:>4.2f} "
                f"{p.mean_presence:>5.2f} ± {p.presence_std:<3.2f} {p.tokens_per_prompt:>6.1f}  "
                f"{p.verdict}{' (habit)' if p.habit else ''}"
            )
        lines.append("")
    if report.worst_prompts:
        lines.append("Prompts whose pictures miss most of what they ask for:")
        for w in report.worst_prompts:
            lines.append(
                f"  {w.seen_share:>4.0%} seen, {w.pictures} pictures: {_short(w.prompt, 70)}"
            )
            if w.missed:
                lines.append(f"        missed: {_short(', '.join(w.missed), 70)}")
        lines.append("")
    for title, items in (
        ("Without generation parameters", report.no_parameters),
        ("Unreadable", report.unreadable),
        ("Vanished during the run", report.vanished),
        ("Nothing CLIP can measure", report.unmeasurable),
        ("WebUI grids of pictures audited on their own", report.grids),
    ):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {i.path}: {i.reason}" for i in items[:20])
            if len(items) > 20:
                lines.append(f"  ... and {len(items) - 20} more (see --json)")
    return "\n".join(lines).rstrip() + "\n"

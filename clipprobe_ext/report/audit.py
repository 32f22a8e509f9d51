"""The audit as a terminal table, JSON and CSV (its HTML page is ``audit_page``)."""

from __future__ import annotations

import csv
import io

from clipprobe_ext.audit.results import AuditReport, PhraseSummary, Skipped
from clipprobe_ext.report.data import cell, dumps
from clipprobe_ext.report.numbers import (
    clip_text,
    fixed,
    percent,
    presence,
    with_spread,
)

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


def to_json(report: AuditReport, indent: int | None = 2) -> str:
    return dumps(report.to_dict(), indent)


def to_csv(report: AuditReport) -> str:
    """One row per normalised phrase."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in report.phrases:
        writer.writerow([cell(getattr(p, c)) for c in CSV_COLUMNS])
    return out.getvalue()


def skipped_groups(report: AuditReport) -> list[tuple[str, list[Skipped]]]:
    """The files the audit skipped, by why: only the reasons that skipped some."""
    groups = [
        ("without generation parameters", report.no_parameters),
        ("unreadable", report.unreadable),
        ("vanished during the run", report.vanished),
        ("with nothing CLIP can measure", report.unmeasurable),
        ("WebUI grids of pictures audited on their own", report.grids),
    ]
    return [(what, items) for what, items in groups if items]


def presence_spread(p: PhraseSummary) -> str:
    """A phrase's mean presence over its pictures, with its spread."""
    return with_spread(presence(p.mean_presence), p.presence_std, presence(p.presence_std))


def _bar(rate: float, width: int = 10) -> str:
    filled = round(min(max(rate, 0.0), 1.0) * width)
    return "█" * filled + "·" * (width - filled)


def format_table(report: AuditReport, top: int = 40) -> str:
    """A readable summary: counts, habit words, phrase table, worst prompts, skipped files."""
    s = report.stats
    lines = [
        f"Audit of {', '.join(report.folders)} with {report.model_id}",
        f"  {s.pictures} pictures, {report.prompts} distinct prompts, {s.files} files "
        f"({s.encoded} encoded, {s.from_store} from the store, {fixed(s.seconds, 1)} s)",
    ]
    listed = [f"{len(items)} {what}" for what, items in skipped_groups(report)]
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
                f"  {clip_text(p.phrase, _WIDTH):<{_WIDTH}}  in {p.prompts} prompts, seen in "
                f"{p.seen}/{p.pictures} pictures ({percent(p.seen_rate, 0)}; presence "
                f"{presence_spread(p)}), {fixed(p.tokens_per_prompt, 1)} CLIP tokens each time"
            )
        lines.append("")
    if report.phrases:
        lines.append(
            f"Phrases (most frequent first{', top ' + str(top) if len(report.phrases) > top else ''}):"
        )
        header = (
            f"  {'phrase':<{_WIDTH}} {'prompts':>7} {'pictures':>8}  {'seen':<10} {'rate':>5} "
            f"{'±':>4} {'presence':>11} {'CLIP tokens':>11}  verdict"
        )
        lines.append(header)
        for p in report.phrases[:top]:
            lines.append(
                f"  {clip_text(p.phrase, _WIDTH):<{_WIDTH}} {p.prompts:>7} {p.pictures:>8}  {_bar(p.seen_rate)} "
                f"{percent(p.seen_rate, 0):>5} {fixed(p.seen_rate_std, 2):>4} "
                f"{presence_spread(p):>11} {fixed(p.tokens_per_prompt, 1):>11}  "
                f"{p.verdict}{' (habit)' if p.habit else ''}"
            )
        lines.append("")
    if report.worst_prompts:
        lines.append("Prompts whose pictures miss most of what they ask for:")
        for w in report.worst_prompts:
            lines.append(
                f"  {percent(w.seen_share, 0):>5} seen, {w.pictures} pictures: {clip_text(w.prompt, 70)}"
            )
            if w.missed:
                lines.append(f"        missed: {clip_text(', '.join(w.missed), 70)}")
        lines.append("")
    for what, items in skipped_groups(report):
        lines.append(f"{what[0].upper()}{what[1:]} ({len(items)}):")
        lines.extend(f"  {i.path}: {i.reason}" for i in items[:20])
        if len(items) > 20:
            lines.append(f"  ... and {len(items) - 20} more (see --json)")
    return "\n".join(lines).rstrip() + "\n"

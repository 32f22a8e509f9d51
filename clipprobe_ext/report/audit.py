"""The audit as a terminal table, JSON and CSV (its HTML page is ``audit_page``).

The words for the audit's columns that every output shares are here too: the writing
effect (``writing``, ``WRITING_LEGEND``), what an uncalibrated model cannot say (``seen``
cells read "uncalibrated") and why CLIP cannot judge a phrase (``cannot_judge_reason``).
"""

from __future__ import annotations

import csv
import io
import textwrap

from clipprobe_ext.audit.results import AuditReport, PhraseSummary, Skipped
from clipprobe_ext.audit.writing_effect import MIN_PICTURES
from clipprobe_ext.report.data import cell, dumps
from clipprobe_ext.report.numbers import (
    clip_text,
    fixed,
    percent,
    presence,
    with_spread,
)
from clipprobe_ext.report.reasons import cannot_judge

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
    "writing_auroc",
    "written_in",
    "not_written_in",
    "written_with",
    "writing_note",
    "cannot_judge",
    "cannot_judge_cue",
]
_WIDTH = 34
UNCALIBRATED = "uncalibrated"
WRITING_LEGEND = (
    "writing: does writing the phrase change what CLIP sees? The chance that a picture whose "
    "prompt holds it is closer to it than a picture whose prompt does not (AUROC of the "
    "similarity; 0.50: no change, 1.00: always). No calibration needed. * written together "
    "with other phrases (the effect is theirs together); all: in every prompt, nothing to "
    f"compare with; –: fewer than {MIN_PICTURES} pictures on a side."
)


def writing(p: PhraseSummary) -> str:
    """The writing effect in a cell: ``0.91``, ``0.91*`` (confounded), ``all``, ``–``."""
    if p.writing_note == "everywhere":
        return "all"
    return fixed(p.writing_auroc, 2) + ("*" if p.writing_note == "confounded" else "")


def written_together(report: AuditReport) -> list[str]:
    """The groups of phrases always written together: ``masterpiece + best quality``."""
    groups = dict.fromkeys(
        " + ".join(sorted([p.phrase, *p.written_with])) for p in report.phrases if p.written_with
    )
    return list(groups)


def cannot_judge_reason(p: PhraseSummary) -> str:
    return cannot_judge(p.cannot_judge, p.cannot_judge_cue)


def verdict_word(p: PhraseSummary) -> str:
    return p.verdict.replace("_", " ") + (" (habit)" if p.habit else "")


def to_json(report: AuditReport, indent: int | None = 2) -> str:
    return dumps(report.to_dict(), indent)


def to_csv(report: AuditReport) -> str:
    """One row per normalised phrase."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in report.phrases:
        writer.writerow([_csv_cell(getattr(p, c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _csv_cell(value):
    return "; ".join(value) if isinstance(value, list) else cell(value)


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
    """A phrase's mean presence over its pictures, with its spread ("uncalibrated": none)."""
    if p.mean_presence is None:
        return UNCALIBRATED
    return with_spread(presence(p.mean_presence), p.presence_std, presence(p.presence_std))


def _bar(rate: float | None, width: int = 10) -> str:
    if rate is None:
        return UNCALIBRATED.ljust(width)
    filled = round(min(max(rate, 0.0), 1.0) * width)
    return "█" * filled + "·" * (width - filled)


def _wrapped(text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="  ")


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
    calibrated = report.calibration is not None
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
            f"  {'phrase':<{_WIDTH}} {'prompts':>7} {'pictures':>8}  {'seen':<12} {'rate':>5} "
            f"{'±':>4} {'presence':>12} {'CLIP tokens':>11} {'writing':>7}  verdict"
        )
        lines.append(header)
        for p in report.phrases[:top]:
            lines.append(
                f"  {clip_text(p.phrase, _WIDTH):<{_WIDTH}} {p.prompts:>7} {p.pictures:>8}  "
                f"{_bar(p.seen_rate, 12)} {percent(p.seen_rate, 0):>5} "
                f"{fixed(p.seen_rate_std, 2):>4} {presence_spread(p):>12} "
                f"{fixed(p.tokens_per_prompt, 1):>11} {writing(p):>7}  {verdict_word(p)}"
            )
        lines.extend(_wrapped(WRITING_LEGEND))
        together = written_together(report)
        if together:
            lines.append("  Written together: " + "; ".join(together))
        judged = [p for p in report.phrases if p.verdict == "cannot_judge"]
        if judged:
            lines.append("Cannot judge (never pruned, never a habit word):")
            lines.extend(
                f"  {clip_text(p.phrase, _WIDTH):<{_WIDTH}}  {cannot_judge_reason(p)}"
                for p in judged
            )
        if not calibrated:
            lines.extend(
                _wrapped(
                    "seen, rate and presence: uncalibrated (no fit for this model); the "
                    "verdicts rest on the elimination rounds and nothing is a habit word."
                )
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

"""A ``ProbeReport`` as a readable terminal table.

Per image the elimination rounds (phrases above the threshold, in %), the synonym groups
and the in-context contributions; then the verdict per phrase (presence, mean ± spread
over images when there are several) with its reason, the suggested pruned prompt (what it
removed, the similarity it keeps, the phrases kept because they cannot be cut cleanly, the
tokens it saves), the token budget, the negative prompt checked, and the notes.  Plain
text; ANSI colour only with ``color=True``.  Every number and sentence comes from the
``view``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from clipprobe_ext.report.numbers import clip_text, fraction
from clipprobe_ext.report.view import ImageSection, ReportView, build_view
from clipprobe_ext.results import ProbeReport

# -- terminal table ----------------------------------------------------------------------

_WIDTH = 78
_STYLES = {
    "bold": "1",
    "dim": "2",
    "keep": "32",
    "weak": "33",
    "prune": "31",
    "cannot_judge": "2",
    "head": "1;36",
    "bar": "36",
}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not text or not style:
            return text
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"


def _bar(p: float, width: int = 20) -> str:
    filled = fraction(p) * width
    full = int(filled)
    partial = "▏▎▍▌▋▊▉"[int((filled - full) * 7)] if full < width and filled - full >= 1 / 7 else ""
    return "█" * full + partial


def _table(rows: list[list[str]], align: str, indent: int = 2) -> list[list[str]]:
    """Pad cells to aligned columns; ``align`` has one of '<' or '>' per column."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(align))]
    if align[-1] == "<":  # nothing to align after the last column: no trailing blanks
        widths[-1] = 0
    out = []
    for row in rows:
        cells = [
            (cell.ljust(w) if a == "<" else cell.rjust(w)) for cell, w, a in zip(row, widths, align)
        ]
        out.append([" " * indent, *cells])
    return out


def _rule(title: str, paint: _Painter, char: str = "─") -> str:
    text = f"{char * 2} {title} "
    return paint(text + char * max(3, _WIDTH - len(text)), "head")


def format_table(report: ProbeReport | Sequence[ProbeReport], color: bool = False) -> str:
    """A readable multi-section text report (one block per report when given several)."""
    if isinstance(report, ProbeReport):
        return _format_one(report, _Painter(color))
    reports = list(report)
    blocks = []
    for n, rep in enumerate(reports, start=1):
        block = _format_one(rep, _Painter(color))
        if len(reports) > 1:
            labels = ", ".join(a.label for a in rep.images)
            title = f"Prompt group {n} of {len(reports)}  ({labels})"
            block = _Painter(color)(title, "bold") + "\n" + block
        blocks.append(block)
    return "\n\n".join(blocks)


def _format_one(report: ProbeReport, paint: _Painter) -> str:
    view = build_view(report)
    lines = _header(view, paint)
    for image in view.images:
        lines += ["", _rule(image.label, paint)]
        lines += _rounds(image, view.threshold, paint)
        lines += _synonyms(image, paint)
        lines += _contributions(image, paint)
    lines += _verdicts(view, paint)
    lines += _pruning(view, paint)
    lines += _tokens(view, paint)
    lines += _negative(view, paint)
    lines += _notes(view, paint)
    return "\n".join(lines) + "\n"


def _header(view: ReportView, paint: _Painter) -> list[str]:
    return [
        paint("ClipProbe", "bold") + paint(f"  ·  {view.model_id}", "dim"),
        _wrap("Prompt: ", " ".join(view.prompt.split())),
        paint(" · ".join(view.settings), "dim"),
    ]


def _line(cells: list[str]) -> str:
    """Indent, then the cells two spaces apart."""
    return (cells[0] + "  ".join(cells[1:])).rstrip()


def _rounds(image: ImageSection, threshold: str, paint: _Painter) -> list[str]:
    lines = [paint(f"Elimination rounds — phrases above {threshold}", "bold")]
    rows = [["Round", "No.", "Phrase", "Probability", ""]]
    for row in image.rounds:
        number = str(row.round) if row.first else ""
        if row.index is None:
            rows.append([number, "", "(none above the threshold)", "", ""])
        else:
            rows.append([number, str(row.index), row.label, row.percent, _bar(row.probability)])
    table = _table(rows, "><<><")
    lines.append(paint(_line(table[0]), "dim"))
    for cells, row in zip(table[1:], image.rounds):
        if row.index is None:
            lines.append(paint(_line(cells), "dim"))
            continue
        if row.top:
            cells[3] = paint(cells[3], "bold")
        cells[5] = paint(cells[5], "bar")
        lines.append(_line(cells))
    return lines


def _synonyms(image: ImageSection, paint: _Painter) -> list[str]:
    if not image.synonyms:
        return []
    lines = ["", paint("Synonym groups", "bold")]
    for group in image.synonyms:
        parts = [
            paint(f"{clip_text(item.text, 30)} {item.percent}", "bold" if item.best else "")
            for item in group
        ]
        lines.append("  " + "  >  ".join(parts))
    return lines


def _contributions(image: ImageSection, paint: _Painter) -> list[str]:
    if image.whole_similarity is None:
        return []
    lines = [
        "",
        paint("In-context contribution", "bold")
        + paint(f" — whole prompt similarity {image.whole_similarity}", "dim"),
    ]
    rows = [["No.", "Phrase", "Contribution", "Without it"]]
    rows += [[str(r.index), r.label, r.value_text, r.without] for r in image.contributions]
    for k, cells in enumerate(_table(rows, "><>>")):
        lines.append(paint(_line(cells), "dim") if k == 0 else _line(cells))
    return lines


def _verdicts(view: ReportView, paint: _Painter) -> list[str]:
    if not view.verdicts:
        return []
    n = view.image_count
    title = "Verdicts" + (f" (mean ± spread over {n} images)" if n > 1 else "")
    rows = [["No.", "Phrase", "Verdict", "Presence", "Peak prob.", "Contribution", "Why"]]
    rows += [
        [str(v.index), v.label, v.verdict, v.presence, v.peak, v.contribution, v.reason]
        for v in view.verdicts
    ]
    table = _table(rows, "><<>>><")
    lines = ["", _rule(title, paint), paint(_line(table[0]), "dim")]
    for cells, v in zip(table[1:], view.verdicts):
        cells[3] = paint(cells[3], v.verdict)
        cells[7] = paint(cells[7], "dim")
        lines.append(_line(cells))
    return lines + [paint(line, "dim") for line in _paragraphs(view.reference)]


def _pruning(view: ReportView, paint: _Painter) -> list[str]:
    pruning = view.pruning
    if pruning is None:
        return []
    lines = ["", _rule("Suggested prompt", paint)]
    if pruning.removed:
        text = pruning.pruned_prompt.strip() or "(empty)"
        lines += [paint(line, "bold") for line in _paragraphs(text)]
        lines.append("  removed: " + ", ".join(f'"{t}"' for t in pruning.removed))
    return lines + _paragraphs(pruning.outcome, *pruning.kept, pruning.saving)


def _tokens(view: ReportView, paint: _Painter) -> list[str]:
    if view.tokens is None:
        return []
    return ["", _rule("Token budget", paint), *_paragraphs(*view.tokens.lines)]


def _negative(view: ReportView, paint: _Painter) -> list[str]:
    negative = view.negative
    if negative is None:
        return []
    lines = ["", _rule("Negative prompt, checked", paint)]
    lines += _paragraphs(" ".join(negative.prompt.split()))
    if negative.rows:
        rows = [["No.", "Phrase", "Status", "Score"]]
        rows += [[str(r.index), clip_text(r.text, 32), r.status, r.score] for r in negative.rows]
        table = _table(rows, "><<>")
        lines.append(paint(_line(table[0]), "dim"))
        for cells, row in zip(table[1:], negative.rows):
            style = "prune" if row.status == "not suppressed" else "dim"
            cells[3] = paint(cells[3], style)
            lines.append(_line(cells))
        for reason in dict.fromkeys(r.reason for r in negative.rows):
            statuses = ", ".join(
                dict.fromkeys(r.status for r in negative.rows if r.reason == reason)
            )
            lines += _paragraphs(f"{statuses}: {reason}")
    method = f"Score: {negative.method}" if negative.method else ""
    return lines + _paragraphs(method, *negative.notes)


def _notes(view: ReportView, paint: _Painter) -> list[str]:
    if not view.notes:
        return []
    return ["", paint("Notes", "bold"), *(f"  • {note}" for note in view.notes)]


def _wrap(prefix: str, text: str) -> str:
    return textwrap.fill(
        text,
        width=_WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _paragraphs(*texts: str) -> list[str]:
    """Each non-empty text wrapped to the width, indented by two spaces."""
    return [line for text in texts if text for line in _wrap("  ", text).splitlines()]

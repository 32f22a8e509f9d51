"""Render a ``ProbeReport`` as JSON, CSV or a plain-text terminal table.

JSON (``to_json``)
    ``ProbeReport.to_dict()`` as one JSON document: every probability of every
    elimination round is a number, NaN and infinities become ``null`` (strict JSON).
    Several reports (the CLI's prompt groups) give a JSON array of such documents.

CSV (``to_csv``)
    One row per (image, phrase), then one ``mean`` row per phrase (the batch
    aggregate, also written for a single image), so a spreadsheet can filter by image
    or by phrase.  Columns:

    ``group``
        1-based number of the report (the CLI analyses each distinct prompt separately;
        1 when there is one prompt).
    ``image``
        The image's label (its file name in the CLI), or ``mean`` for the aggregate row.
    ``phrase_index``, ``text``, ``weight``, ``span_start``, ``span_end``
        The phrase as the analysis read it: its number in the prompt, the clean text,
        the attention weight of ``(x:1.3)``, and ``prompt[span_start:span_end]``.
    ``verdict``
        ``keep``, ``weak`` or ``prune`` (one verdict for the whole batch, repeated on
        every row of the phrase); empty for phrases CLIP cannot measure (``<lora:...>``).
    ``max_probability``
        The highest probability the phrase reached in any elimination round (0 to 1);
        on ``mean`` rows the mean over images.
    ``max_probability_std``
        Spread (standard deviation) of that over the images; only on ``mean`` rows.
    ``contribution``
        Whole-prompt similarity minus the similarity without the phrase (leave-one-out);
        on ``mean`` rows the mean over images.  Empty with ``--no-contribution``.
    ``contribution_std``
        Spread of the contribution over the images; only on ``mean`` rows.
    ``similarity_without``
        Cosine similarity of the image and the prompt with this phrase cut out; on
        ``mean`` rows the mean over images.
    ``round_1`` ... ``round_k``
        The phrase's softmax probability in each elimination round, empty when it was no
        longer a candidate (it had been the top phrase of an earlier round).  Empty on
        ``mean`` rows: candidates differ from image to image.
    ``top_round``
        The round in which the phrase was the most probable (and so removed), if any.
    ``pruned``
        ``true`` when the suggested pruned prompt drops the phrase, else ``false``.
    ``tokens``, ``chunks``, ``straddles``
        The phrase's CLIP tokens, the 75-token chunks (1-based, space separated) its
        tokens fall in, and ``true`` when a chunk boundary cuts it (``analysis.tokens``).
    ``presence``
        On a phrase's rows: its presence score (``mean`` rows: the mean over images).

    Negative prompt rows (``image`` is ``negative``): one per phrase of the negative
    prompt, ``verdict`` holding its status (``not suppressed``, ``suppressed``, ``not
    measurable``) and ``presence`` its score (the mean over images).

    Numbers are written with full precision; missing values are empty cells.

Table (``format_table``)
    A readable report for a terminal: per image the elimination rounds (phrases above
    the threshold, in %), the synonym groups and the in-context contributions; then the
    verdict per phrase (presence, mean ± spread over images when there are several), the
    suggested pruned prompt with what it removed, the similarity it keeps, the phrases kept
    because they cannot be cut cleanly and the tokens it saves, the token budget, the
    negative prompt checked, and the notes.  Plain
    text; ANSI colour only with ``color=True``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

from clipprobe_ext.report_view import (
    ImageSection,
    ReportView,
    build_view,
    clip_text,
    fraction,
)
from clipprobe_ext.results import ProbeReport

# -- JSON --------------------------------------------------------------------------------


def to_json(report: ProbeReport | Sequence[ProbeReport], indent: int | None = 2) -> str:
    """One JSON document: the report's ``to_dict()``, or an array of them for several."""
    if isinstance(report, ProbeReport):
        data: Any = report.to_dict()
    else:
        data = [r.to_dict() for r in report]
    return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)


# -- CSV ---------------------------------------------------------------------------------

FIXED_COLUMNS = [
    "group",
    "image",
    "phrase_index",
    "text",
    "weight",
    "span_start",
    "span_end",
    "verdict",
    "max_probability",
    "max_probability_std",
    "contribution",
    "contribution_std",
    "similarity_without",
]


def _num(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return repr(value) if math.isfinite(value) else ""


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))


TAIL_COLUMNS = ["top_round", "pruned", "tokens", "chunks", "straddles", "presence"]


def csv_columns(rounds: int) -> list[str]:
    return [*FIXED_COLUMNS, *(f"round_{k}" for k in range(1, rounds + 1)), *TAIL_COLUMNS]


def to_csv(report: ProbeReport | Sequence[ProbeReport]) -> str:
    """The reports as CSV text (header + rows); see the module docstring for the columns."""
    reports = [report] if isinstance(report, ProbeReport) else list(report)
    rounds = max((len(a.ranking.rounds) for r in reports for a in r.images), default=0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(rounds))
    for group, rep in enumerate(reports, start=1):
        for row in _csv_rows(rep, group, rounds):
            writer.writerow(row)
    return out.getvalue()


def _csv_rows(report: ProbeReport, group: int, rounds: int) -> list[list[Any]]:
    verdicts = {v.index: v for v in report.verdicts}
    pruned = set(report.pruning.removed) if report.pruning is not None else set()
    budget = _budget_cells(report)
    rows: list[list[Any]] = []

    def head(label: str, phrase: Any) -> list[Any]:
        verdict = verdicts.get(phrase.index)
        return [
            group,
            label,
            phrase.index,
            phrase.text,
            _num(phrase.weight),
            phrase.start,
            phrase.end,
            verdict.verdict if verdict is not None else "",
        ]

    for analysis in report.images:
        contrib = analysis.contribution
        for phrase in report.phrases:
            per_round = [""] * rounds
            top = ""
            for r in analysis.ranking.rounds:
                for i, p in zip(r.candidates, r.probabilities):
                    if i == phrase.index:
                        per_round[r.round - 1] = _num(p)
                if r.top == phrase.index:
                    top = r.round
            best = analysis.ranking.max_probability(phrase.index) if phrase.measurable else None
            c = contrib.contributions[phrase.index] if contrib is not None else None
            w = contrib.similarity_without[phrase.index] if contrib is not None else None
            rows.append(
                [
                    *head(analysis.label, phrase),
                    _num(best),
                    "",
                    _num(c),
                    "",
                    _num(w),
                    *per_round,
                    top,
                    "true" if phrase.index in pruned else "false",
                    *budget.get(phrase.index, ["", "", ""]),
                    _num(_presence(analysis, phrase.index)),
                ]
            )
    for phrase in report.phrases:
        if phrase.measurable:
            best, best_std = _mean_std(
                [a.ranking.max_probability(phrase.index) for a in report.images]
            )
        else:
            best, best_std = None, None
        contribs = [a.contribution for a in report.images if a.contribution is not None]
        c, c_std = _mean_std([x.contributions[phrase.index] for x in contribs])
        w, _ = _mean_std([x.similarity_without[phrase.index] for x in contribs])
        rows.append(
            [
                *head("mean", phrase),
                _num(best),
                _num(best_std),
                _num(c),
                _num(c_std),
                _num(w),
                *([""] * rounds),
                "",
                "true" if phrase.index in pruned else "false",
                *budget.get(phrase.index, ["", "", ""]),
                _num(_mean_std([_presence(a, phrase.index) for a in report.images])[0]),
            ]
        )
    if report.negative is not None:
        blank = [""] * (len(FIXED_COLUMNS) - 8 + rounds + len(TAIL_COLUMNS) - 1)
        for p in report.negative.phrases:
            rows.append(
                [group, "negative", p.index, p.text, _num(p.weight), "", "", p.status, *blank,
                 _num(p.score)]
            )  # fmt: skip
    return rows


def _presence(analysis: Any, index: int) -> float | None:
    scores = getattr(analysis, "presence", None)
    return scores[index] if scores is not None and index < len(scores) else None


def _budget_cells(report: ProbeReport) -> dict[int, list[Any]]:
    """Phrase index -> [tokens, chunks, straddles], matched to the token budget by span
    (the budget reads phrases; a word-by-word analysis gets the cells of whole phrases)."""
    if report.tokens is None:
        return {}
    from clipprobe_ext.prompt import parse_prompt

    spans = parse_prompt(report.prompt).phrases
    by_span = {}
    for p in report.tokens.phrases:
        if p.index < len(spans):
            chunks = " ".join(str(c + 1) for c in p.chunks)
            cells = [p.tokens, chunks, "true" if p.straddles else "false"]
            by_span[(spans[p.index].start, spans[p.index].end)] = cells
    return {
        ph.index: by_span[(ph.start, ph.end)]
        for ph in report.phrases
        if (ph.start, ph.end) in by_span
    }


# -- terminal table ----------------------------------------------------------------------

_WIDTH = 78
_STYLES = {
    "bold": "1",
    "dim": "2",
    "keep": "32",
    "weak": "33",
    "prune": "31",
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
    if view.reference:
        lines += [paint(line, "dim") for line in _wrap("  ", view.reference).splitlines()]
    return lines


def _pruning(view: ReportView, paint: _Painter) -> list[str]:
    pruning = view.pruning
    if pruning is None:
        return []
    lines = ["", _rule("Suggested prompt", paint)]
    if pruning.removed:
        text = pruning.pruned_prompt.strip() or "(empty)"
        lines += [paint(line, "bold") for line in _wrap("  ", text).splitlines()]
        lines.append("  removed: " + ", ".join(f'"{t}"' for t in pruning.removed))
    lines += _wrap("  ", pruning.outcome).splitlines()
    for text in pruning.kept:
        lines += _wrap("  ", text).splitlines()
    if pruning.saving:
        lines += _wrap("  ", pruning.saving).splitlines()
    return lines


def _tokens(view: ReportView, paint: _Painter) -> list[str]:
    if view.tokens is None:
        return []
    lines = ["", _rule("Token budget", paint)]
    for text in view.tokens.lines:
        lines += _wrap("  ", text).splitlines()
    return lines


def _negative(view: ReportView, paint: _Painter) -> list[str]:
    negative = view.negative
    if negative is None:
        return []
    lines = ["", _rule("Negative prompt, checked", paint)]
    lines += _wrap("  ", " ".join(negative.prompt.split())).splitlines()
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
            lines += _wrap("  ", f"{statuses}: {reason}").splitlines()
    if negative.method:
        lines += _wrap("  ", f"Score: {negative.method}").splitlines()
    for note in negative.notes:
        lines += _wrap("  ", note).splitlines()
    return lines


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

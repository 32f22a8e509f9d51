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

    Numbers are written with full precision; missing values are empty cells.

Table (``format_table``)
    A readable report for a terminal: per image the elimination rounds (phrases above
    the threshold, in %), the synonym groups and the in-context contributions; then the
    verdict per phrase (mean ± spread over images when there are several), the suggested
    pruned prompt with what it removed and the similarity it keeps, and the notes.  Plain
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

from clipprobe_ext.results import ProbeReport

# -- JSON --------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars and tuples -> Python types."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalars
        return _clean(value.item())
    return str(value)


def to_json(report: ProbeReport | Sequence[ProbeReport], indent: int | None = 2) -> str:
    """One JSON document: the report's ``to_dict()``, or an array of them for several."""
    if isinstance(report, ProbeReport):
        data: Any = report.to_dict()
    else:
        data = [r.to_dict() for r in report]
    return json.dumps(_clean(data), indent=indent, ensure_ascii=False, allow_nan=False)


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


def csv_columns(rounds: int) -> list[str]:
    return [*FIXED_COLUMNS, *(f"round_{k}" for k in range(1, rounds + 1)), "top_round", "pruned"]


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
            ]
        )
    return rows


# -- terminal table ----------------------------------------------------------------------

_WIDTH = 78
_TEXT_WIDTH = 40
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
        if not self.color or not text:
            return text
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"


def _clip_text(text: str, width: int = _TEXT_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    if 0 < p < 0.001:
        return "<0.1 %"
    return f"{100 * p:.1f} %"


def _signed(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}"


def _sim(x: float | None) -> str:
    return f"{x:.4f}" if x is not None and math.isfinite(x) else "–"


def _bar(p: float, width: int = 20) -> str:
    if not math.isfinite(p):
        return ""
    p = min(max(p, 0.0), 1.0)
    filled = p * width
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
    opts = report.options
    threshold = float(opts.get("threshold", 0.0) or 0.0)
    lines: list[str] = []
    add = lines.append
    phrases = {p.index: p for p in report.phrases}
    n_images = len(report.images)

    add(paint("ClipProbe", "bold") + paint(f"  ·  {report.model_id}", "dim"))
    add(_wrap("Prompt: ", " ".join(report.prompt.split())))
    settings = [
        f"{n_images} image{'s' if n_images != 1 else ''}",
        f"{len(report.measurable)} phrases",
        f"{opts.get('rounds', '?')} rounds",
        f"threshold {_pct(threshold)}",
    ]
    if opts.get("prune", True):
        settings.append(f"tolerance {_pct(float(opts.get('tolerance', 0.0) or 0.0))}")
    if opts.get("granularity") == "word":
        settings.append("word by word")
    add(paint(" · ".join(settings), "dim"))

    for analysis in report.images:
        add("")
        add(_rule(analysis.label, paint))
        add(paint(f"Elimination rounds — phrases above {_pct(threshold)}", "bold"))
        rows = [["Round", "No.", "Phrase", "Probability", ""]]
        styles: list[str | None] = [None]
        for r in analysis.ranking.rounds:
            above = sorted(r.above(threshold), key=lambda ip: -ip[1])
            if not above:
                rows.append([str(r.round), "", "(none above the threshold)", "", ""])
                styles.append("dim")
                continue
            for k, (i, p) in enumerate(above):
                rows.append(
                    [
                        str(r.round) if k == 0 else "",
                        str(i),
                        _label(phrases[i]),
                        _pct(p),
                        _bar(p),
                    ]
                )
                styles.append("top" if i == r.top else None)
        for cells, style in zip(_table(rows, "><<><"), styles):
            if style is None and cells is not None and cells[1].strip() == "Round":
                add(paint("".join(_join(cells)).rstrip(), "dim"))
            elif style == "top":
                cells[3] = paint(cells[3], "bold")
                cells[5] = paint(cells[5], "bar")
                add("".join(_join(cells)).rstrip())
            elif style == "dim":
                add(paint("".join(_join(cells)).rstrip(), "dim"))
            else:
                cells[5] = paint(cells[5], "bar")
                add("".join(_join(cells)).rstrip())

        if analysis.synonyms:
            add("")
            add(paint("Synonym groups", "bold"))
            for group in analysis.synonyms:
                order = sorted(range(len(group.texts)), key=lambda j: -group.probabilities[j])
                parts = [
                    (paint if j == order[0] else _plain)(
                        f"{_clip_text(group.texts[j], 30)} {_pct(group.probabilities[j])}",
                        "bold",
                    )
                    for j in order
                ]
                add("  " + "  >  ".join(parts))

        contrib = analysis.contribution
        if contrib is not None:
            add("")
            add(
                paint("In-context contribution", "bold")
                + paint(f" — whole prompt similarity {_sim(contrib.full_similarity)}", "dim")
            )
            items = [
                (i, c, contrib.similarity_without[i])
                for i, c in enumerate(contrib.contributions)
                if c is not None and i in phrases
            ]
            items.sort(key=lambda t: -t[1])
            rows = [["No.", "Phrase", "Contribution", "Without it"]]
            for i, c, w in items:
                rows.append([str(i), _label(phrases[i]), _signed(c), _sim(w)])
            for k, cells in enumerate(_table(rows, "><>>")):
                line = "".join(_join(cells)).rstrip()
                add(paint(line, "dim") if k == 0 else line)

    if report.verdicts:
        add("")
        title = "Verdicts" + (f" (mean ± spread over {n_images} images)" if n_images > 1 else "")
        add(_rule(title, paint))
        rows = [["No.", "Phrase", "Verdict", "Peak prob.", "Contribution", "Why"]]
        kinds = [""]
        for v in report.verdicts:
            best = _pct(v.max_probability)
            contribution = _signed(v.contribution)
            if n_images > 1:
                best += f" ± {100 * v.max_probability_std:.1f}"
                if v.contribution_std is not None:
                    contribution += f" ± {v.contribution_std:.4f}"
            rows.append(
                [
                    str(v.index),
                    _label(phrases[v.index], 32) if v.index in phrases else _clip_text(v.text, 32),
                    v.verdict,
                    best,
                    contribution,
                    v.reason,
                ]
            )
            kinds.append(v.verdict)
        for k, (cells, kind) in enumerate(zip(_table(rows, "><<>><"), kinds)):
            if k == 0:
                add(paint("".join(_join(cells)).rstrip(), "dim"))
                continue
            cells[3] = paint(cells[3], kind)
            cells[6] = paint(cells[6], "dim")
            add("".join(_join(cells)).rstrip())

    pruning = report.pruning
    if pruning is not None:
        add("")
        add(_rule("Suggested prompt", paint))
        if pruning.steps:
            kept = (
                pruning.final_similarity / pruning.original_similarity
                if pruning.original_similarity
                else float("nan")
            )
            for line in _wrap("  ", pruning.pruned_prompt.strip() or "(empty)").splitlines():
                add(paint(line, "bold"))
            removed = ", ".join(f'"{phrases[i].text}"' for i in pruning.removed if i in phrases)
            add(f"  removed: {removed}")
            add(
                f"  similarity {_sim(pruning.original_similarity)} → "
                f"{_sim(pruning.final_similarity)} (keeps {_pct(kept)}; "
                f"allowed loss {_pct(pruning.tolerance)})"
            )
        else:
            add(
                f"  Nothing can go: every phrase removal costs more than "
                f"{_pct(pruning.tolerance)} of the similarity "
                f"({_sim(pruning.original_similarity)})."
            )

    if report.notes:
        add("")
        add(paint("Notes", "bold"))
        for note in report.notes:
            add(f"  • {note}")
    return "\n".join(lines) + "\n"


def _wrap(prefix: str, text: str) -> str:
    return textwrap.fill(
        text,
        width=_WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _label(phrase: Any, width: int = _TEXT_WIDTH) -> str:
    """The phrase's text, with its attention weight when it is not 1."""
    suffix = f" ×{phrase.weight:g}" if phrase.weight != 1 else ""
    return _clip_text(phrase.text, width - len(suffix)) + suffix


def _plain(text: str, _style: str) -> str:
    return text


def _join(cells: list[str]) -> list[str]:
    """Indent then cells separated by two spaces."""
    return [cells[0], "  ".join(cells[1:])]

"""A ``ProbeReport`` as the HTML fragments of the WebUI tab: pure functions, no gradio.

Everything taken from the user (prompt, phrase texts, labels, notes, messages) goes
through ``html.escape``, so a prompt holding ``<lora:x:1>`` or ``<script>`` shows as text
and never becomes markup.  Classes are prefixed ``cp-`` and styled by ``style.css``; the
markup also reads without it.  Sections and their numbers come from ``view.build_view``;
this module only lays them out (each ``render_*`` also takes a ``ReportView``).
"""

from __future__ import annotations

import html

from clipprobe_ext.report.messages import message_box
from clipprobe_ext.report.numbers import count, fraction
from clipprobe_ext.report.view import ChunkBreak, ReportView, build_view
from clipprobe_ext.results import ProbeReport

render_message = message_box


def render_error(message: str) -> str:
    return message_box(message, "error")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _view(report: ProbeReport | ReportView) -> ReportView:
    return report if isinstance(report, ReportView) else build_view(report)


def _section(name: str, title: str, body: str, small: str = "") -> str:
    """One section of the report: ``<div class="cp-section cp-NAME">`` with its heading
    (``small``: plain text after the title)."""
    aside = f"<small>{_e(small)}</small>" if small else ""
    return f'<div class="cp-section cp-{name}"><h3>{_e(title)}{aside}</h3>{body}</div>'


def _hints(*texts: str) -> str:
    return "".join(f'<p class="cp-hint">{_e(t)}</p>' for t in texts if t)


#: The legend's words per verdict class, in the order shown.
LEGEND = (
    ("keep", "keep: seen"),
    ("weak", "weak: unsure, or not seen but needed"),
    ("prune", "prune: not seen, cut"),
    ("cannot_judge", "cannot judge"),
    ("unmeasurable", "not measured (tag)"),
)
ALWAYS_IN_LEGEND = ("keep", "weak", "prune")
#: An uncalibrated model's verdicts rank the phrases; nothing is seen or cut.
UNCALIBRATED_LEGEND = (
    ("keep", "keep: ranks above the threshold"),
    ("weak", "weak: never above it"),
    *LEGEND[3:],
)


def render_prompt(
    report: ProbeReport | ReportView,
    selected: int | None = None,
    hint: str = "hover a phrase for its numbers",
) -> str:
    """``selected``: the phrase marked ``cp-selected`` (the one whose heatmap is shown);
    ``hint``: what the heading says a phrase does."""
    view = _view(report)
    prompt = view.prompt
    out: list[str] = []
    pos = 0
    breaks = {b.position: b for b in view.tokens.breaks} if view.tokens else {}
    for span in view.spans:
        out.append(_e(prompt[pos : span.start]))
        if span.start in breaks:  # a new 75-token chunk begins with this phrase
            out.append(_chunk_break(breaks[span.start]))
        mark = " cp-selected" if span.index == selected else ""
        cut = f' cp-straddles" style="{_STRADDLE_STYLE}' if span.straddles else ""
        out.append(
            f'<span class="cp-phrase cp-{span.kind}{mark}{cut}" data-index="{span.index}" '
            f'title="{_e(span.title)}">{_e(prompt[span.start : span.end])}</span>'
        )
        pos = span.end
    out.append(_e(prompt[pos:]))
    kinds = {span.kind for span in view.spans}
    legend = "".join(
        f'<span class="cp-phrase cp-{kind}">{_e(words)}</span> '
        for kind, words in (LEGEND if view.calibrated else UNCALIBRATED_LEGEND)
        if kind in ALWAYS_IN_LEGEND or kind in kinds
    )
    return _section(
        "prompt-section",
        "Your prompt, phrase by phrase",
        f'<div class="cp-prompt">{"".join(out)}</div><div class="cp-legend">{legend}</div>',
        hint,
    )


def _chunk_break(chunk_break: ChunkBreak) -> str:
    """An empty mark (no text, so the prompt's characters stay exactly as written)."""
    return (
        f'<span class="cp-chunk-break" data-chunk="{chunk_break.chunk}" '
        f'title="{_e(chunk_break.title)}" style="{_BREAK_STYLE}"></span>'
    )


_BREAK_STYLE = "border-left:2px dashed currentColor;margin:0 2px;opacity:0.6"
_STRADDLE_STYLE = "text-decoration:underline wavy"


def render_tokens(report: ProbeReport | ReportView) -> str:
    """The token budget: total against 75/150/225, chunk sizes, straddling phrases."""
    tokens = _view(report).tokens
    if tokens is None:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in tokens.lines)
    saving = f"<p>{_e(tokens.saving)}</p>" if tokens.saving else ""
    hint = (
        "Dashed marks in the prompt: where a new 75-token chunk begins; an underlined phrase "
        "is cut between two chunks."
    )
    return _section("tokens", "Token budget", f"<ul>{items}</ul>{saving}{_hints(hint)}")


def render_negative(report: ProbeReport | ReportView) -> str:
    """The negative prompt's phrases, checked against the picture."""
    negative = _view(report).negative
    if negative is None:
        return ""
    rows = "".join(
        f'<tr class="cp-neg-{r.status.replace(" ", "-")}"><td>{_e(r.text)}</td>'
        f'<td>{_e(r.status)}</td><td class="cp-num">{_e(r.score)}</td>'
        f"<td>{_e(r.reason)}</td></tr>"
        for r in negative.rows
    )
    table = (
        '<table class="cp-table"><thead><tr><th>Phrase</th><th>Status</th><th>Score</th>'
        f"<th>What it means</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    method = f"Score: {negative.method}" if negative.method else ""
    prompt = f'<pre class="cp-negative-prompt">{_e(negative.prompt)}</pre>'
    return _section(
        "negative", "Negative prompt, checked", prompt + table + _hints(method, *negative.notes)
    )


def render_verdicts(report: ProbeReport | ReportView) -> str:
    """Per phrase: verdict, calibrated presence (what it is compared with below), why."""
    view = _view(report)
    if not view.verdicts:
        return ""
    spread = " (mean ± spread over the images)" if view.image_count > 1 else ""
    rows = "".join(
        f'<tr><td>{_e(v.label)}</td><td><span class="cp-phrase cp-{_e(v.verdict)}">'
        f'{_e(v.verdict.replace("_", " "))}</span></td><td class="cp-num">{_e(v.presence)}</td>'
        f'<td class="cp-num">{_e(v.peak)}</td><td class="cp-num">{_e(v.contribution)}</td>'
        f"<td>{_e(v.reason)}</td></tr>"
        for v in view.verdicts
    )
    table = (
        '<div class="cp-table-wrap"><table class="cp-table"><thead><tr><th>Phrase</th>'
        "<th>Verdict</th><th>Presence</th><th>Peak prob.</th><th>Contribution</th><th>Why</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )
    return _section("verdicts", "Verdicts", table + _hints(view.reference), spread)


def render_contribution(report: ProbeReport | ReportView) -> str:
    view = _view(report)
    items = view.mean_contributions
    if not items:
        return ""
    scale = max(abs(r.value) for r in items) or 1.0
    rows = []
    for r in items:
        width = 50.0 * abs(r.value) / scale  # % of the chart: half of it on each side
        side = "cp-pos" if r.value >= 0 else "cp-neg"
        left = 50.0 if r.value >= 0 else 50.0 - width
        rows.append(
            f'<div class="cp-bar-row" title="{_e(r.text)}: {_e(r.value_text)}">'
            f'<span class="cp-bar-label">{_e(r.text)}</span>'
            f'<span class="cp-bar-track"><span class="cp-bar-axis"></span>'
            f'<span class="cp-bar {side}" data-index="{r.index}" data-value="{r.value:.6g}" '
            f'style="left:{left:.3f}%;width:{width:.3f}%"></span></span>'
            f'<span class="cp-bar-value">{_e(r.value_text)}</span></div>'
        )
    whole = ""
    if view.mean_whole_similarity is not None:
        whole = f" — whole prompt similarity {view.mean_whole_similarity}"
    hint = (
        "How much the prompt's CLIP similarity drops when the phrase is left out (negative: "
        "the prompt matches better without it)."
    )
    bars = f'<div class="cp-bars">{"".join(rows)}</div>'
    return _section("contribution", "In-context contribution", bars + _hints(hint), whole)


def render_rounds(report: ProbeReport | ReportView) -> str:
    view = _view(report)
    blocks = []
    for image in view.images:
        rows = []
        for r in image.rounds:
            if r.index is None:
                rows.append(
                    f'<tr class="cp-empty"><td>{r.round}</td>'
                    '<td colspan="2">(none above the threshold)</td></tr>'
                )
                continue
            top = ' class="cp-top"' if r.top else ""
            rows.append(
                f"<tr{top}><td>{r.round if r.first else ''}</td>"
                f'<td class="cp-round-phrase">{_e(r.text)}</td>'
                f'<td class="cp-num"><span class="cp-pbar" style="width:'
                f'{100 * fraction(r.probability):.2f}%"></span>{_e(r.percent)}</td></tr>'
            )
        blocks.append(
            f'<div class="cp-round-card"><h4>{_e(image.label)}</h4>'
            '<table class="cp-table"><thead><tr><th>Round</th><th>Phrase</th>'
            f"<th>Probability</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    small = f" — phrases above {view.threshold}; the top one leaves after each round"
    grid = f'<div class="cp-rounds-grid">{"".join(blocks)}</div>'
    return _section("rounds", "Elimination rounds", grid, small)


def render_synonyms(report: ProbeReport | ReportView) -> str:
    view = _view(report)
    if not any(image.synonyms for image in view.images):
        return ""
    blocks = []
    for image in view.images:
        groups = []
        for group in image.synonyms:
            items = [
                f'<span class="{"cp-syn cp-syn-best" if item.best else "cp-syn"}" '
                f'title="similarity {_e(item.similarity)}">'
                f"{_e(item.text)} <b>{_e(item.percent)}</b></span>"
                for item in group
            ]
            groups.append(f"<li>{' &gt; '.join(items)}</li>")
        label = f"<b>{_e(image.label)}</b>" if view.image_count > 1 else ""
        blocks.append(f"{label}<ul>{''.join(groups)}</ul>")
    return _section("synonyms", "Synonym groups", "".join(blocks))


def render_pruning(report: ProbeReport | ReportView) -> str:
    pruning = _view(report).pruning
    if pruning is None:
        return ""
    body = ""
    if pruning.removed:
        # ", " between the chips: selected and copied, they read as a list, not one word
        removed = ", ".join(f'<span class="cp-removed">{_e(t)}</span>' for t in pruning.removed)
        body = (
            f'<pre class="cp-pruned-prompt">{_e(pruning.pruned_prompt)}</pre>'
            f"<p>Removed: {removed}</p>"
        )
    body += f'<p class="cp-keeps">{_e(pruning.outcome)}</p>'
    body += "".join(f'<p class="cp-kept">{_e(text)}</p>' for text in pruning.kept)
    if pruning.saving:
        body += f'<p class="cp-saving">{_e(pruning.saving)}</p>'
    return _section("pruning", "Suggested prompt", body)


def render_notes(report: ProbeReport | ReportView) -> str:
    notes = _view(report).notes
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return _section("notes", "Notes", f"<ul>{items}</ul>")


def render_summary(report: ProbeReport | ReportView) -> str:
    view = _view(report)
    parts = [
        f'<span class="cp-count cp-{k}">{view.counts.get(k, 0)} {k.replace("_", " ")}</span>'
        for k in ("keep", "weak", "prune", "cannot_judge")
        if k != "cannot_judge" or view.counts.get(k)
    ]
    tail = ""
    if view.pruning is not None and view.pruning.removed:
        tail = f" · the suggested prompt drops {len(view.pruning.removed)} {view.unit}"
    what = (
        f"{view.measurable_count} measurable {view.unit} against {count(view.image_count, 'image')}"
    )
    return f'<div class="cp-summary">{_e(what)} with {_e(view.model_id)}: {", ".join(parts)}{_e(tail)}</div>'


def render_report(report: ProbeReport | ReportView) -> str:
    view = _view(report)
    sections = [
        render_summary(view),
        render_prompt(view),
        render_negative(view),
        render_pruning(view),
        render_tokens(view),
        render_verdicts(view),
        render_contribution(view),
        render_rounds(view),
        render_synonyms(view),
        render_notes(view),
    ]
    return f'<div class="clipprobe-report">{"".join(s for s in sections if s)}</div>'

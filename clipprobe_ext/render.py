"""A ``ProbeReport`` as HTML for the WebUI tab: pure functions, no gradio, no torch.

Everything taken from the user (prompt, phrase texts, labels, notes, messages) goes
through ``html.escape``, so a prompt holding ``<lora:x:1>`` or ``<script>`` shows as text
and never becomes markup.  Classes are prefixed ``cp-`` and styled by the extension's
``style.css``; the markup also reads without it.

Public API (each returns an HTML string):

- ``render_report(report)``: everything below, in one ``<div class="clipprobe-report">``.
- ``render_summary(report)``: one line: counts of keep / weak / prune, suggested cut.
- ``render_prompt(report)``: the prompt exactly as written, each phrase wrapped in a
  ``<span class="cp-phrase cp-keep|cp-weak|cp-prune|cp-unmeasurable">`` with its numbers in
  the ``title`` (hover); the characters between phrases are kept as they are.
- ``render_contribution(report)``: bar chart of the mean in-context contribution; bars
  grow right from a centre line for positive values, left for negative ones, their width
  proportional to ``|contribution| / max |contribution|`` (``data-value`` holds the number).
- ``render_rounds(report)``: per image, the elimination rounds with the phrases above the
  threshold and their probabilities in %.
- ``render_synonyms(report)``, ``render_pruning(report)``, ``render_notes(report)``.
- ``render_error(message)``, ``render_message(message)``: boxes for the tab.
- ``summary_text(report) -> str``: the one-line plain-text summary used in infotexts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from clipprobe_ext.results import PhraseInfo, PhraseVerdict, ProbeReport

VERDICT_LABELS = {"keep": "keep", "weak": "weak", "prune": "prune"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(p: float | None, digits: int = 1) -> str:
    return "–" if p is None else f"{100 * p:.{digits}f}%"


def _signed(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


def _verdicts(report: ProbeReport) -> dict[int, PhraseVerdict]:
    return {v.index: v for v in report.verdicts}


def _phrase_title(phrase: PhraseInfo, verdict: PhraseVerdict | None, n_images: int) -> str:
    if not phrase.measurable:
        return "extra-network tag: not measurable by CLIP"
    if verdict is None:
        return "no verdict"
    parts = [
        f"{verdict.verdict}: {verdict.reason}",
        f"best round probability {_pct(verdict.max_probability)}",
        f"contribution {_signed(verdict.contribution)}",
    ]
    if n_images > 1:
        parts.append(f"mean over {n_images} images")
    if phrase.weight != 1.0:
        parts.append(f"weight {phrase.weight:g}")
    if verdict.pruned:
        parts.append("removed by the suggested prompt")
    return " · ".join(parts)


def _ordered_spans(phrases: Sequence[PhraseInfo], length: int) -> list[PhraseInfo]:
    """Phrases by start, dropping any whose span is invalid or overlaps the previous one."""
    result: list[PhraseInfo] = []
    end = 0
    for phrase in sorted(phrases, key=lambda p: (p.start, p.end)):
        if phrase.start < end or not 0 <= phrase.start <= phrase.end <= length:
            continue
        result.append(phrase)
        end = phrase.end
    return result


def render_prompt(report: ProbeReport) -> str:
    prompt = report.prompt
    verdicts = _verdicts(report)
    n_images = len(report.images)
    out: list[str] = []
    pos = 0
    for phrase in _ordered_spans(report.phrases, len(prompt)):
        out.append(_e(prompt[pos : phrase.start]))
        verdict = verdicts.get(phrase.index)
        if not phrase.measurable:
            kind = "unmeasurable"
        elif verdict is not None:
            kind = verdict.verdict
        else:
            kind = "none"
        out.append(
            f'<span class="cp-phrase cp-{kind}" data-index="{phrase.index}" '
            f'title="{_e(_phrase_title(phrase, verdict, n_images))}">'
            f"{_e(prompt[phrase.start : phrase.end])}</span>"
        )
        pos = phrase.end
    out.append(_e(prompt[pos:]))
    legend = (
        '<div class="cp-legend">'
        '<span class="cp-phrase cp-keep">keep</span> '
        '<span class="cp-phrase cp-weak">weak</span> '
        '<span class="cp-phrase cp-prune">prune</span> '
        '<span class="cp-phrase cp-unmeasurable">not measurable</span>'
        "</div>"
    )
    return (
        '<div class="cp-section cp-prompt-section"><h3>Prompt</h3>'
        f'<div class="cp-prompt">{"".join(out)}</div>{legend}</div>'
    )


def render_contribution(report: ProbeReport) -> str:
    phrases = {p.index: p for p in report.phrases}
    items = [
        (v.index, v.contribution, v.contribution_std)
        for v in report.verdicts
        if v.contribution is not None
    ]
    if not items:
        return ""
    scale = max(abs(c) for _, c, _ in items) or 1.0
    full = [a.contribution.full_similarity for a in report.images if a.contribution is not None]
    rows = []
    for index, value, std in sorted(items, key=lambda t: -t[1]):
        width = 50.0 * abs(value) / scale  # % of the chart: half of it on each side
        side = "cp-pos" if value >= 0 else "cp-neg"
        left = 50.0 if value >= 0 else 50.0 - width
        label = phrases[index].text if index in phrases else str(index)
        number = _signed(value) + (f" ± {std:.4f}" if std and len(report.images) > 1 else "")
        rows.append(
            f'<div class="cp-bar-row" title="{_e(label)}: {_e(number)}">'
            f'<span class="cp-bar-label">{_e(label)}</span>'
            f'<span class="cp-bar-track"><span class="cp-bar-axis"></span>'
            f'<span class="cp-bar {side}" data-index="{index}" data-value="{value:.6g}" '
            f'style="left:{left:.3f}%;width:{width:.3f}%"></span></span>'
            f'<span class="cp-bar-value">{_e(number)}</span></div>'
        )
    whole = ""
    if full:
        whole = f" — whole prompt similarity {sum(full) / len(full):.4f}"
    return (
        '<div class="cp-section cp-contribution"><h3>In-context contribution'
        f'<small>{_e(whole)}</small></h3><div class="cp-bars">{"".join(rows)}</div>'
        '<p class="cp-hint">How much the prompt\'s CLIP similarity drops when the phrase is '
        "left out (negative: the prompt matches better without it).</p></div>"
    )


def render_rounds(report: ProbeReport) -> str:
    phrases = {p.index: p for p in report.phrases}
    threshold = float(report.options.get("threshold", 0.0) or 0.0)
    blocks = []
    for analysis in report.images:
        rows = []
        for r in analysis.ranking.rounds:
            above = sorted(r.above(threshold), key=lambda ip: -ip[1])
            if not above:
                rows.append(
                    f'<tr class="cp-empty"><td>{r.round}</td>'
                    '<td colspan="2">(none above the threshold)</td></tr>'
                )
                continue
            for k, (i, p) in enumerate(above):
                top = ' class="cp-top"' if i == r.top else ""
                text = phrases[i].text if i in phrases else str(i)
                rows.append(
                    f"<tr{top}><td>{r.round if k == 0 else ''}</td>"
                    f'<td class="cp-round-phrase">{_e(text)}</td>'
                    f'<td class="cp-num"><span class="cp-pbar" style="width:{100 * p:.2f}%">'
                    f"</span>{_pct(p)}</td></tr>"
                )
        blocks.append(
            f"<details open><summary>{_e(analysis.label)}</summary>"
            '<table class="cp-table"><thead><tr><th>Round</th><th>Phrase</th>'
            f"<th>Probability</th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
        )
    return (
        f'<div class="cp-section cp-rounds"><h3>Elimination rounds<small> — phrases above '
        f"{_pct(threshold)}; the top one leaves after each round</small></h3>"
        f"{''.join(blocks)}</div>"
    )


def render_synonyms(report: ProbeReport) -> str:
    if not any(a.synonyms for a in report.images):
        return ""
    blocks = []
    for analysis in report.images:
        groups = []
        for group in analysis.synonyms:
            order = sorted(range(len(group.texts)), key=lambda j: -group.probabilities[j])
            items = []
            for rank, j in enumerate(order):
                cls = "cp-syn cp-syn-best" if rank == 0 else "cp-syn"
                items.append(
                    f'<span class="{cls}" title="similarity {group.similarities[j]:.4f}">'
                    f"{_e(group.texts[j])} <b>{_pct(group.probabilities[j])}</b></span>"
                )
            groups.append(f"<li>{' &gt; '.join(items)}</li>")
        label = f"<b>{_e(analysis.label)}</b>" if len(report.images) > 1 else ""
        blocks.append(f"{label}<ul>{''.join(groups)}</ul>")
    return f'<div class="cp-section cp-synonyms"><h3>Synonym groups</h3>{"".join(blocks)}</div>'


def render_pruning(report: ProbeReport) -> str:
    pruning = report.pruning
    if pruning is None:
        return ""
    phrases = {p.index: p for p in report.phrases}
    if not pruning.steps:
        body = (
            f"<p>Nothing can go: every removal costs more than {_pct(pruning.tolerance)} of "
            f"the similarity ({pruning.original_similarity:.4f}).</p>"
        )
    else:
        kept = (
            pruning.final_similarity / pruning.original_similarity
            if pruning.original_similarity
            else float("nan")
        )
        removed = "".join(
            f'<span class="cp-removed">{_e(phrases[i].text if i in phrases else i)}</span>'
            for i in pruning.removed
        )
        body = (
            f'<pre class="cp-pruned-prompt">{_e(pruning.pruned_prompt)}</pre>'
            f'<p>Removed: {removed}</p><p class="cp-keeps">Similarity '
            f"{pruning.original_similarity:.4f} → {pruning.final_similarity:.4f}: keeps "
            f"<b>{_pct(kept)}</b> (allowed loss {_pct(pruning.tolerance)}).</p>"
        )
    return f'<div class="cp-section cp-pruning"><h3>Suggested prompt</h3>{body}</div>'


def render_notes(report: ProbeReport) -> str:
    if not report.notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return f'<div class="cp-section cp-notes"><h3>Notes</h3><ul>{items}</ul></div>'


def _counts(report: ProbeReport) -> dict[str, int]:
    counts = {"keep": 0, "weak": 0, "prune": 0}
    for v in report.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return counts


def render_summary(report: ProbeReport) -> str:
    counts = _counts(report)
    n = len(report.images)
    parts = [
        f'<span class="cp-count cp-{k}">{counts[k]} {VERDICT_LABELS[k]}</span>'
        for k in ("keep", "weak", "prune")
    ]
    tail = ""
    if report.pruning is not None and report.pruning.steps:
        tail = f" · the suggested prompt drops {len(report.pruning.steps)} phrase(s)"
    return (
        f'<div class="cp-summary">{len(report.measurable)} measurable phrases against '
        f"{n} image{'s' if n != 1 else ''} with {_e(report.model_id)}: "
        f"{', '.join(parts)}{_e(tail)}</div>"
    )


def summary_text(report: ProbeReport, limit: int = 8) -> str:
    """One plain line, e.g. ``3 keep, 2 weak (umbrella, red), 1 prune (blue)``."""
    groups: dict[str, list[str]] = {"keep": [], "weak": [], "prune": []}
    for v in report.verdicts:
        groups.setdefault(v.verdict, []).append(" ".join(v.text.split()))
    parts = [f"{len(groups['keep'])} keep"]
    for kind in ("weak", "prune"):
        names = groups[kind]
        if names:
            shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
            parts.append(f"{len(names)} {kind} ({shown})")
        else:
            parts.append(f"0 {kind}")
    return ", ".join(parts)


def render_report(report: ProbeReport) -> str:
    sections = [
        render_summary(report),
        render_prompt(report),
        render_pruning(report),
        render_contribution(report),
        render_rounds(report),
        render_synonyms(report),
        render_notes(report),
    ]
    return f'<div class="clipprobe-report">{"".join(s for s in sections if s)}</div>'


def render_error(message: str) -> str:
    return f'<div class="clipprobe-error cp-error" role="alert">{_e(message)}</div>'


def render_message(message: str) -> str:
    return f'<div class="clipprobe-message">{_e(message)}</div>'

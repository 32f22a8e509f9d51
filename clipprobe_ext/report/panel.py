"""The tab's results panel: the answer first, the numbers in sections opened on demand.

``render_answer`` says what a user came for in plain words: what to cut, what is missing,
what CLIP cannot tell, what the negative prompt did not remove, and the suggested prompt.
The method (presence, references, cosine z, elimination rounds) stays out of it and goes
into the detail sections (``render_*_details``), which the tab shows in accordions.
Everything is escaped; the numbers and sentences come from ``view`` and ``reasons``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from clipprobe_ext.report import fragments
from clipprobe_ext.report.view import ReportView, build_view
from clipprobe_ext.results import PhraseVerdict, ProbeReport

#: Verdict codes of a phrase CLIP does not see that the suggested prompt still keeps.
KEPT_THOUGH_NOT_SEEN = ("not_seen_needed", "not_seen_last", "cannot_cut_cleanly", "no_pruning")
CANNOT_JUDGE = "cannot_judge"

HOW_TO_READ = (
    "Presence runs from 0 (CLIP does not see the phrase in the picture) to 1 (it clearly "
    "does). It compares the phrase with this picture and with pictures of nothing, so it "
    "means the same whatever else the prompt says."
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Finding:
    """One line of the answer: a group of phrases and what it means for the prompt."""

    kind: str  # cut / missing / unsure / cannot-judge / negative
    title: str
    meaning: str
    phrases: list[tuple[int | None, str, str]]  # (phrase index or None, text, verdict class)


def _pictures(n: int) -> str:
    return "the picture" if n == 1 else f"the {n} pictures"


def findings(report: ProbeReport) -> list[Finding]:
    """The answer's groups, in the order a user acts on them; empty groups left out."""
    n = len(report.images)
    where = "the picture" if n == 1 else "the pictures"

    def items(verdicts: list[PhraseVerdict]) -> list[tuple[int | None, str, str]]:
        return [(v.index, v.text, v.verdict) for v in verdicts]

    cut = [v for v in report.verdicts if v.pruned]
    missing = [v for v in report.verdicts if not v.pruned and v.why.code in KEPT_THOUGH_NOT_SEEN]
    unsure = [v for v in report.verdicts if v.why.code == "unsure"]
    judge = [v for v in report.verdicts if v.verdict == CANNOT_JUDGE]
    out = []
    if cut:
        out.append(
            Finding(
                "cut",
                "Cut",
                f"not in {where}, and the prompt matches as well without them",
                items(cut),
            )
        )
    if missing:
        meaning = f"not in {where}"
        if report.pruning is not None:
            meaning += ", but the prompt needs them: try a stronger weight or other words"
        out.append(Finding("missing", "Missing", meaning, items(missing)))
    if unsure:
        out.append(
            Finding("unsure", "Unsure", "CLIP can neither confirm nor rule them out", items(unsure))
        )
    if judge:
        out.append(
            Finding(
                "cannot-judge",
                "Cannot judge",
                "CLIP cannot check positions, counts, negations or written text",
                items(judge),
            )
        )
    negative = report.negative.not_suppressed if report.negative is not None else []
    if negative:
        shown = [
            (None, p.text + (f" (in {p.visible_in} of {n})" if n > 1 else ""), "prune")
            for p in negative
        ]
        out.append(
            Finding(
                "negative",
                "Still visible",
                "your negative prompt asks against them, yet CLIP sees them",
                shown,
            )
        )
    return out


def _chips(phrases: list[tuple[int | None, str, str]]) -> str:
    """Phrases as chips; one with an index shows its heatmap when clicked (javascript).
    The ", " between them stays text, so a copied list reads as a list."""
    out = []
    for index, text, kind in phrases:
        data = f' data-index="{index}"' if index is not None else ""
        out.append(f'<span class="cp-chip cp-phrase cp-{_e(kind)}"{data}>{_e(text)}</span>')
    return ", ".join(out)


def _headline(report: ProbeReport, view: ReportView) -> str:
    seen = view.counts.get("keep", 0)
    unit = view.unit if view.measurable_count != 1 else view.unit.rstrip("s")
    where = _pictures(view.image_count)
    if report.bounds is None:  # no presence: the rounds rank, they do not say "seen"
        head = (
            f"Uncalibrated model: {seen} of {view.measurable_count} {unit} rank above the "
            f"threshold in {where}; calibrate it on your pictures to know what is missing"
        )
    else:
        head = f"CLIP sees {seen} of {view.measurable_count} {unit} in {where}"
    return f'<p class="cp-headline"><b>{_e(head)}.</b></p>'


def _suggestion(report: ProbeReport, view: ReportView) -> str:
    pruning = view.pruning
    if pruning is None:
        return ""
    if not pruning.removed:
        return (
            '<div class="cp-suggested cp-suggested-none"><p>No shorter prompt: nothing can be '
            "cut without the prompt matching the picture less. Keep it as it is.</p></div>"
        )
    saving = f'<p class="cp-saving">{_e(pruning.saving)}</p>' if pruning.saving else ""
    return (
        '<div class="cp-suggested"><div class="cp-label">Suggested prompt</div>'
        f'<pre class="cp-pruned-prompt">{_e(pruning.pruned_prompt)}</pre>{saving}</div>'
    )


def render_answer(report: ProbeReport, view: ReportView | None = None) -> str:
    """The summary a user reads first (``<div class="clipprobe-report cp-answer">``)."""
    view = view or build_view(report)
    found = findings(report)
    lines = "".join(
        f'<li class="cp-find cp-find-{f.kind}"><b>{_e(f.title)}</b> '
        f'<span class="cp-meaning">({_e(f.meaning)})</span>: {_chips(f.phrases)}</li>'
        for f in found
    )
    if report.bounds is not None and not any(f.kind in ("cut", "missing", "unsure") for f in found):
        lines = f'<li class="cp-find cp-find-all">Every phrase shows up.</li>{lines}'
    model = f"Measured with {view.model_id}."
    if report.bounds is None:
        model += (
            " This model has no calibrated presence: the verdicts come from the elimination "
            "rounds only, and nothing is cut for not being seen."
        )
    return (
        '<div class="clipprobe-report cp-answer">'
        f"{_headline(report, view)}"
        f'<ul class="cp-findings">{lines}</ul>'
        f"{_suggestion(report, view)}"
        f'<p class="cp-hint">{_e(model)} The numbers are in the sections below.</p>'
        "</div>"
    )


def render_prompt_card(
    report: ProbeReport | ReportView, selected: int | None = None, heatmaps: bool = False
) -> str:
    """The prompt coloured by verdict, with its legend; ``selected``: the phrase whose
    heatmap is shown; ``heatmaps``: a click on a phrase shows its heatmap."""
    hint = "hover a phrase for its numbers" + ("; click it for its heatmap" if heatmaps else "")
    return f'<div class="clipprobe-report">{fragments.render_prompt(report, selected, hint)}</div>'


def render_verdict_details(report: ProbeReport | ReportView) -> str:
    """Per phrase: verdict, presence, best round probability, contribution and why; how
    the suggested prompt was chosen; the contribution bars, synonym groups and notes."""
    view = report if isinstance(report, ReportView) else build_view(report)
    how = f'<p class="cp-how">{_e(HOW_TO_READ)}</p>' if view.reference else ""
    parts = [
        fragments.render_verdicts(view),
        _pruning_details(view),
        fragments.render_contribution(view),
        fragments.render_synonyms(view),
        fragments.render_notes(view),
    ]
    return f'<div class="clipprobe-report">{how}{"".join(p for p in parts if p)}</div>'


def _pruning_details(view: ReportView) -> str:
    pruning = view.pruning
    if pruning is None:
        return ""
    body = f"<p>{_e(pruning.outcome)}</p>"
    body += "".join(f'<p class="cp-kept">{_e(text)}</p>' for text in pruning.kept)
    return (
        '<div class="cp-section cp-pruning-details"><h3>How the suggested prompt was chosen'
        "<small>only phrases CLIP does not see may go, and only while the prompt keeps its "
        f"similarity to the picture</small></h3>{body}</div>"
    )


def render_rounds_details(report: ProbeReport | ReportView) -> str:
    """The elimination rounds, one table per picture, side by side."""
    return f'<div class="clipprobe-report">{fragments.render_rounds(report)}</div>'


def render_tokens_details(report: ProbeReport | ReportView) -> str:
    view = report if isinstance(report, ReportView) else build_view(report)
    body = fragments.render_tokens(view)
    if not body:
        body = fragments.render_message("The tokens were not counted for this model.")
    return f'<div class="clipprobe-report">{body}</div>'


def render_negative_details(report: ProbeReport | ReportView) -> str:
    view = report if isinstance(report, ReportView) else build_view(report)
    body = fragments.render_negative(view)
    if not body:
        body = fragments.render_message(
            "No negative prompt was given: type one to check whether CLIP still sees what it names."
        )
    return f'<div class="clipprobe-report">{body}</div>'

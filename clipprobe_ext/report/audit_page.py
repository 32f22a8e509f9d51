"""The audit as a self-contained HTML page: plots first, tables after, one file to keep.

The plots are matplotlib PNGs embedded as base64 (no external file, no script).  They
use ``matplotlib.figure.Figure`` directly, never pyplot, so rendering inside the WebUI
touches no global plotting state and is safe from any thread.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import TYPE_CHECKING

from clipprobe_ext.audit.aggregate import KEEP_AT, PRUNE_AT, WEAK_AT
from clipprobe_ext.audit.results import AuditReport, PhraseSummary
from clipprobe_ext.report.audit import (
    WRITING_LEGEND,
    cannot_judge_reason,
    presence_spread,
    skipped_groups,
    verdict_word,
    writing,
    written_together,
)
from clipprobe_ext.report.numbers import count, fixed, percent, presence, signed, with_spread

if TYPE_CHECKING:  # matplotlib is imported when a page is drawn, not with this module
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = {"keep": "#2e7d32", "weak": "#f9a825", "prune": "#c62828", "cannot_judge": "#9e9e9e"}
UNKNOWN = "#607d8b"  # a verdict this page has no colour for
ASKED = "#dddddd"
#: Phrases named on the writing-effect plot at most (the most written, then the extremes).
WRITING_LABELS = 24
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th{background:#f6f6f6}td.t,th.t{text-align:left}
.keep{color:#2e7d32}.weak{color:#b58100}.prune{color:#c62828}.cannot_judge{color:#777}
.habit{background:#fff3f0}.bar{display:inline-block;height:9px;background:#4a78c2}
.note{color:#666}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}
"""


def render_html(report: AuditReport, top: int = 30) -> str:
    """The whole report as one HTML document (a string)."""
    s = report.stats
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>ClipProbe audit</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>ClipProbe audit: which of your words show up?</h1>",
        f"<p>{s.pictures} pictures, {report.prompts} distinct prompts, from "
        f"{escape(', '.join(report.folders))}; model <code>{escape(report.model_id)}</code>. "
        f"{s.encoded} pictures encoded, {s.from_store} from the store, {fixed(s.seconds, 1)} s.</p>",
    ]
    if report.interrupted:
        parts.append("<p><b>Interrupted:</b> the figures cover the files read so far.</p>")
    parts.extend(f"<p class='note'>{escape(n)}</p>" for n in report.notes)
    parts.append(_method(report))
    if report.phrases:
        parts.append("<h2>Frequency and seen rate</h2>")
        parts.append(_img(_frequency_chart(report.phrases[:top])))
        if report.calibration is not None:
            parts.append(_scatter(report))
    parts.append(_writing(report))
    parts.append(_habits(report))
    parts.append(_cannot_judge(report))
    parts.append(_phrase_table(report))
    parts.append(_worst(report))
    parts.append(_skipped(report))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def _method(report: AuditReport) -> str:
    """How "seen" was decided, and what the presence score is compared against."""
    seen = str(report.options.get("seen"))
    if report.calibration is None and seen == "seen_by_presence":
        reference = escape(report.reference or "this model is uncalibrated")
        return (
            f"<p class='note'>Nothing is called seen or not seen: {reference}. The verdicts "
            "rest on the elimination rounds (keep when a phrase rose above the threshold in "
            "some round, weak otherwise); nothing is pruned or a habit word. The writing effect "
            "needs no calibration.</p>"
        )
    if seen == "seen_by_presence":
        how = (
            f"its calibrated presence score reaches {presence(report.options.get('seen_from'))} "
            "(the single-image verdicts' score and threshold)"
        )
    else:
        how = f"<code>{escape(seen)}</code> says so"
    reference = f" The presence score: {escape(report.reference)}." if report.reference else ""
    return (
        f"<p class='note'>A phrase is <i>seen</i> in a picture when {how}; <i>not "
        f"seen</i> under {presence(report.options.get('not_seen_under'))}.{reference} Verdict: "
        f"keep when seen in at least {percent(KEEP_AT, 0)} of its pictures, prune when seen in "
        f"fewer than {percent(WEAK_AT, 0)} and not seen in at least {percent(PRUNE_AT, 0)}, "
        "weak otherwise. "
        "Phrases are counted "
        "case-, whitespace- and weight-insensitively.</p>"
    )


# -- plots -------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str) -> str:
    return f"<p><img alt='plot' src='data:image/png;base64,{data}'></p>"


SEEN_WORDS = {
    "keep": "seen: phrase to keep",
    "weak": "seen: weak phrase",
    "prune": "seen: phrase to prune",
    "cannot_judge": "seen: CLIP cannot judge it",
}


def _color(verdict: str) -> str:
    return COLORS.get(verdict, UNKNOWN)


def frequency_figure(phrases: list[PhraseSummary]) -> Figure:
    """One bar per phrase: how many pictures asked for it (grey), and how many show it
    (coloured by the phrase's verdict); the legend has one entry per colour shown."""
    from matplotlib.patches import Patch

    figure = _figure(10, 0.3 * len(phrases) + 1.6)
    ax = figure.add_subplot()
    y = list(range(len(phrases)))[::-1]
    ax.barh(y, [p.pictures for p in phrases], color=ASKED)
    ax.barh(y, [p.seen or 0 for p in phrases], color=[_color(p.verdict) for p in phrases])
    labels = [
        f"{p.phrase[:40]}  ({'uncalibrated' if p.seen_rate is None else percent(p.seen_rate, 0)})"
        for p in phrases
    ]
    ax.set_yticks(y, labels, fontsize=8)
    for tick, p in zip(ax.get_yticklabels(), phrases):
        if p.habit:
            tick.set_fontweight("bold")
    ax.set_xlabel("pictures")
    ax.set_title(
        "Most frequent phrases: pictures that asked for it, and those that show it "
        "(habit words in bold)",
        pad=24,  # room for the legend, between the title and the bars
    )
    present = {p.verdict for p in phrases}
    shown = [v for v in COLORS if v in present] + sorted(present - set(COLORS))
    handles = [Patch(color=ASKED, label="pictures that asked for it")] + [
        Patch(color=_color(v), label=SEEN_WORDS.get(v, f"seen: {v}")) for v in shown
    ]
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=len(handles),
        frameon=False,
        fontsize=8,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return figure


def _frequency_chart(phrases: list[PhraseSummary]) -> str:
    return _png(frequency_figure(phrases))


def _labelled(report: AuditReport) -> list[PhraseSummary]:
    """The phrases worth a label in the scatter plot: habit words, then frequent ones."""
    prompts = max(report.prompts, 1)
    chosen = [p for p in report.phrases if p.habit or p.prompts >= max(2, 0.3 * prompts)]
    return sorted(chosen, key=lambda p: (not p.habit, -p.prompts))


def scatter_figure(report: AuditReport) -> tuple[Figure, list[str]]:
    """Frequency against seen rate (the habit corner is bottom right), and the phrases
    whose label found no free place (``place_labels``)."""
    phrases = report.phrases
    prompts = max(report.prompts, 1)
    figure = _figure(10, 5)
    ax = figure.add_subplot()
    share = report.options.get("habit_share", 0.2)
    rate = report.options.get("habit_seen_rate", 0.25)
    ax.axvspan(share, 1.02, ymin=0, ymax=rate / 1.05 + 0.05 / 1.05, color="#fbe3df", zorder=0)
    corner = ax.text(
        1.0, 0.0, "habit words", ha="right", va="bottom", color=COLORS["prune"], fontsize=9
    )
    xs = [p.prompts / prompts for p in phrases]
    ys = [p.seen_rate for p in phrases]
    sizes = [20 + 12 * p.tokens_per_prompt for p in phrases]
    ax.scatter(xs, ys, s=sizes, c=[_color(p.verdict) for p in phrases], alpha=0.7, zorder=2)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("share of prompts that hold the phrase")
    ax.set_ylabel("share of their pictures where it is seen")
    ax.set_title("Every phrase: how often you write it vs how often it shows (size: tokens)")
    ax.spines[["top", "right"]].set_visible(False)
    points = [(p.phrase[:28], p.prompts / prompts, p.seen_rate) for p in _labelled(report)]
    left_out = place_labels(ax, points, avoid=[corner])
    return figure, left_out


#: Where a label may go, in points from its dot: right, left, above, below, diagonals,
#: then the same farther out (with a leader line).
_OFFSETS = [
    (dx * k, dy * k)
    for k in (1, 2.5, 4)
    for dx, dy in ((5, 3), (-5, 3), (5, -9), (-5, -9), (0, 7), (0, -13), (12, 10), (-12, 10))
]


def place_labels(
    ax: Axes, points: list[tuple[str, float, float]], avoid: list | None = None
) -> list[str]:
    """Label each ``(text, x, y)`` at the first offset where it overlaps no label placed
    before it (nor ``avoid``) and stays inside the axes; a label with no free place is
    left out, and its text returned, so the page can list it."""
    figure = ax.figure
    renderer = figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [artist.get_window_extent(renderer) for artist in avoid or []]
    left_out = []
    for text, x, y in points:
        for dx, dy in _OFFSETS:
            far = abs(dx) > 6 or abs(dy) > 14
            label = ax.annotate(
                text,
                (x, y),
                fontsize=7,
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.5} if far else None,
            )
            box = label.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
            if inside and box.y1 <= frame.y1 and not any(box.overlaps(t) for t in taken):
                taken.append(box)
                break
            label.remove()
        else:
            left_out.append(text)
    return left_out


def _scatter(report: AuditReport) -> str:
    figure, left_out = scatter_figure(report)
    note = ""
    if left_out:
        note = (
            "<p class='note'>Not labelled (no room beside their dots): "
            f"{escape(', '.join(left_out))}.</p>"
        )
    return _img(_png(figure)) + note


def _writing_chart(report: AuditReport) -> str:
    """Writing effect (AUROC) against how many pictures' prompts hold the phrase; the most
    written phrases and the extremes are named where their labels fit, confounded ones
    drawn hollow, colours the verdicts'."""
    from matplotlib.lines import Line2D

    phrases = [p for p in report.phrases if p.writing_auroc is not None]
    figure = _figure(10, 5.5)
    ax = figure.add_subplot()
    ax.axhline(0.5, color="#999999", linewidth=1, linestyle="--", zorder=1)
    xs = [p.written_in for p in phrases]
    ys = [p.writing_auroc for p in phrases]
    colors = [_color(p.verdict) for p in phrases]
    hollow = [p.writing_note == "confounded" for p in phrases]
    ax.scatter(
        xs,
        ys,
        s=30,
        facecolors=["none" if h else c for c, h in zip(colors, hollow)],
        edgecolors=colors,
        alpha=0.85,
        zorder=2,
    )
    if xs and max(xs) > 20 * max(1, min(xs)):
        ax.set_xscale("log")
    ax.set_xlim(min(xs) * 0.8 if ax.get_xscale() == "log" else 0, max(xs) * 1.15)
    ax.set_ylim(-0.02, 1.02)
    order = sorted(range(len(phrases)), key=lambda i: -xs[i])[: WRITING_LABELS // 2]
    extremes = sorted(range(len(phrases)), key=lambda i: -abs(ys[i] - 0.5))
    order += [i for i in extremes if i not in order][: WRITING_LABELS - len(order)]
    place_labels(ax, [(phrases[i].phrase[:30], xs[i], ys[i]) for i in order])
    ax.set_xlabel("pictures whose prompt holds the phrase")
    ax.set_ylabel("AUROC: pictures that asked vs pictures that did not")
    ax.set_title("Does writing it change what CLIP sees? (0.5: no; 1: always)")
    grey = "#666666"
    handles = [
        Line2D([], [], marker="o", linestyle="", color=grey, label="written on its own"),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="none",
            color=grey,
            label="always written with other phrases",
        ),  # fmt: skip
        Line2D([], [], linestyle="--", color="#999999", label="0.5: writing it changes nothing"),
    ] + [
        Line2D([], [], marker="o", linestyle="", color=c, label=k.replace("_", " "))
        for k, c in COLORS.items()
        if any(p.verdict == k for p in phrases)
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _writing(report: AuditReport) -> str:
    if not report.phrases:
        return ""
    measured = [p for p in report.phrases if p.writing_auroc is not None]
    everywhere = [p.phrase for p in report.phrases if p.writing_note == "everywhere"]
    parts = [
        "<h2>Does writing it change what CLIP sees?</h2>",
        f"<p class='note'>{escape(WRITING_LEGEND)}</p>",
    ]
    if measured:
        parts.append(_img(_writing_chart(report)))
    together = written_together(report)
    if together:
        parts.append(
            "<p>Always written together (confounded: the effect is theirs together): "
            + "; ".join(escape(t) for t in together)
            + ".</p>"
        )
    if everywhere:
        parts.append(
            "<p>In every prompt, nothing to compare with: "
            + ", ".join(escape(t) for t in everywhere)
            + ".</p>"
        )
    if report.writing_pictures and report.writing_pictures < report.stats.pictures:
        parts.append(
            f"<p class='note'>Measured on {report.writing_pictures} of the "
            f"{report.stats.pictures} pictures, drawn at random.</p>"
        )
    return "".join(parts)


# -- tables ------------------------------------------------------------------------------


def _cannot_judge(report: AuditReport) -> str:
    judged = [p for p in report.phrases if p.verdict == "cannot_judge"]
    if not judged:
        return ""
    items = "".join(
        f"<li><b>{escape(p.phrase)}</b>: {escape(cannot_judge_reason(p))}</li>" for p in judged
    )
    return (
        "<h2>Cannot judge</h2><p>Claims CLIP cannot check: never pruned, never a habit word "
        f"(their numbers stay in the table).</p><ul>{items}</ul>"
    )


def _habits(report: AuditReport) -> str:
    if report.calibration is None:
        return "<h2>Habit words</h2><p>None can be named: this model is uncalibrated.</p>"
    if not report.habit_words:
        return "<h2>Habit words</h2><p>None: every frequent phrase shows up often enough.</p>"
    rows = []
    for key in report.habit_words:
        p = report.phrase(key)
        if p is None:
            continue
        rows.append(
            f"<li><b>{escape(p.phrase)}</b>: in {p.prompts} prompts, seen in {p.seen} of "
            f"{p.pictures} pictures ({percent(p.seen_rate, 0)}; presence {presence_spread(p)}); "
            f"{fixed(p.tokens_per_prompt, 1)} CLIP tokens each time</li>"
        )
    return (
        "<h2>Habit words: frequent, rarely seen</h2><p>Candidates to drop: they cost tokens "
        "in every prompt and CLIP rarely finds them in the pictures.</p><ul>"
        + "".join(rows)
        + "</ul>"
    )


def _phrase_table(report: AuditReport) -> str:
    if not report.phrases:
        return "<h2>Phrases</h2><p>No picture with a readable prompt was found.</p>"
    head = (
        "<tr><th class='t'>phrase</th><th>prompts</th><th>pictures</th><th>seen</th>"
        "<th class='t'>seen rate</th><th>± across prompts</th><th>not seen</th>"
        "<th>presence (mean ± spread)</th><th>mean probability</th>"
        "<th>mean contribution</th><th>CLIP tokens / prompt</th><th>writing (AUROC)</th>"
        "<th class='t'>verdict</th></tr>"
    )
    rows = []
    for p in report.phrases:
        if p.seen_rate is None:
            seen = "<td>uncalibrated</td><td class='t'>uncalibrated</td><td>–</td><td>–</td>"
        else:
            seen = (
                f"<td>{p.seen}</td><td class='t'><span class='bar' "
                f"style='width:{60 * p.seen_rate:.0f}px'></span> {percent(p.seen_rate, 0)}</td>"
                f"<td>{fixed(p.seen_rate_std, 2)}</td><td>{percent(p.not_seen_rate, 0)}</td>"
            )
        partners = (
            f" title='written with {escape(', '.join(p.written_with))}'" if p.written_with else ""
        )
        why = f" title='{escape(cannot_judge_reason(p))}'" if p.verdict == "cannot_judge" else ""
        rows.append(
            f"<tr class='{'habit' if p.habit else ''}'><td class='t'>{escape(p.phrase)}</td>"
            f"<td>{p.prompts}</td><td>{p.pictures}</td>{seen}<td>{presence_spread(p)}</td>"
            f"<td>{with_spread(percent(p.mean_probability), p.probability_std, percent(p.probability_std))}</td>"
            f"<td>{signed(p.mean_contribution)}</td><td>{fixed(p.tokens_per_prompt, 1)}</td>"
            f"<td{partners}>{escape(writing(p))}</td>"
            f"<td class='t {p.verdict}'{why}>{escape(verdict_word(p))}</td></tr>"
        )
    return "<h2>Every phrase</h2><table>" + head + "".join(rows) + "</table>"


def _worst(report: AuditReport) -> str:
    if not report.worst_prompts:
        return ""
    rows = "".join(
        f"<tr><td>{percent(w.seen_share, 0)}</td><td>{w.pictures}</td>"
        f"<td class='t'>{escape(w.prompt)}</td><td class='t'>{escape(', '.join(w.missed))}</td></tr>"
        for w in report.worst_prompts
    )
    return (
        "<h2>Prompts whose pictures miss most of what they ask for</h2><table>"
        "<tr><th>seen</th><th>pictures</th><th class='t'>prompt</th>"
        "<th class='t'>seen in fewer than half of its pictures</th></tr>" + rows + "</table>"
    )


def _skipped(report: AuditReport) -> str:
    parts = []
    for what, items in skipped_groups(report):
        rows = "".join(f"<li>{escape(i.path)}: {escape(i.reason)}</li>" for i in items)
        summary = escape(f"{what[0].upper()}{what[1:]}: {count(len(items), 'file')}")
        parts.append(f"<details><summary>{summary}</summary><ul>{rows}</ul></details>")
    return ("<h2>Skipped files</h2>" + "".join(parts)) if parts else ""

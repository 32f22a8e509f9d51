"""The audit page's plots: a legend that names the colours the bars wear, and scatter
labels that never sit on top of each other."""

from __future__ import annotations

import itertools

from matplotlib.colors import to_hex

from clipprobe_ext.audit.results import AuditReport, AuditStats, PhraseSummary
from clipprobe_ext.report.audit_page import (
    COLORS,
    frequency_figure,
    render_html,
    scatter_figure,
)


def summary(phrase: str, prompts: int, pictures: int, seen: int, verdict: str, habit=False):
    rate = seen / pictures
    return PhraseSummary(
        phrase=phrase,
        prompts=prompts,
        pictures=pictures,
        seen=seen,
        seen_rate=rate,
        seen_rate_std=0.0,
        seen_rate_min=rate,
        seen_rate_max=rate,
        not_seen=pictures - seen,
        not_seen_rate=1 - rate,
        mean_presence=rate,
        presence_std=0.0,
        mean_probability=0.5,
        probability_std=0.0,
        mean_contribution=0.0,
        tokens_per_prompt=2.0,
        verdict=verdict,
        habit=habit,
    )


def report(phrases: list[PhraseSummary], prompts: int = 10) -> AuditReport:
    return AuditReport(
        model_id="test",
        store="",
        folders=["/pictures"],
        stats=AuditStats(pictures=40),
        phrases=phrases,
        habit_words=[p.phrase for p in phrases if p.habit],
        worst_prompts=[],
        prompts=prompts,
        calibration="the tests' fit",  # seen rates: a calibrated model's (the page plots them)
    )


def test_the_legend_names_every_colour_the_seen_bars_wear():
    # a prune phrase first: before, the legend took the first seen bar's colour (red) for
    # "seen", while most seen bars were green or orange
    phrases = [
        summary("masterpiece", 10, 40, 2, "prune", habit=True),
        summary("a red circle", 8, 30, 28, "keep"),
        summary("rain", 5, 20, 10, "weak"),
        summary("a girl", 4, 16, 15, "keep"),
    ]
    figure = frequency_figure(phrases)
    ax = figure.axes[0]
    legend = {t.get_text(): to_hex(h.get_facecolor()) for t, h in zip(
        ax.get_legend().get_texts(), ax.get_legend().legend_handles
    )}  # fmt: skip
    bars = [to_hex(b.get_facecolor()) for b in ax.patches]
    asked, seen = bars[: len(phrases)], bars[len(phrases) :]
    assert seen == [COLORS[p.verdict] for p in phrases]
    assert legend.pop("pictures that asked for it") == asked[0] == "#dddddd"
    assert sorted(legend.values()) == sorted(set(seen))  # one entry per colour shown
    for label, colour in legend.items():
        verdicts = {p.verdict for p in phrases if COLORS[p.verdict] == colour}
        assert label.startswith("seen") and any(v in label for v in verdicts), (label, colour)


def _boxes(figure):
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    labels = [t for t in ax.texts if t.get_text() != "habit words"]
    corner = next(t for t in ax.texts if t.get_text() == "habit words")
    return (
        [(t.get_text(), t.get_window_extent(renderer)) for t in labels],
        corner.get_window_extent(renderer),
        ax.get_window_extent(renderer),
    )


def test_scatter_labels_never_overlap_and_the_crowded_ones_are_listed():
    # twelve frequent phrases at nearly one spot: before, their labels were drawn on top of
    # each other
    phrases = [
        summary(f"frequent phrase number {k}", 6 + k % 2, 24, 12 + k % 3, "weak") for k in range(12)
    ] + [summary("masterpiece", 9, 36, 1, "prune", habit=True)]
    figure, left_out = scatter_figure(report(phrases))
    labels, corner, frame = _boxes(figure)
    assert labels and labels[0][0] == "masterpiece"  # habit words are placed first
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), (a, b)
    for text, box in labels:
        assert not box.overlaps(corner), text
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text
    placed = {text for text, _ in labels}
    assert placed | set(left_out) == {p.phrase[:28] for p in phrases}
    assert not placed & set(left_out)
    page = render_html(report(phrases))
    for text in left_out:
        assert text in page.split("Not labelled (no room beside their dots):")[1].split("</p>")[0]


def test_a_few_labels_all_find_a_place():
    phrases = [
        summary("a red circle", 8, 30, 28, "keep"),
        summary("masterpiece", 10, 40, 2, "prune", habit=True),
        summary("rain", 5, 20, 10, "weak"),
    ]
    figure, left_out = scatter_figure(report(phrases))
    labels, _, _ = _boxes(figure)
    assert left_out == [] and {t for t, _ in labels} == {p.phrase for p in phrases}

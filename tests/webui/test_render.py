"""The tab's HTML fragments (``report.fragments``) on reports the tiny CLIP really produced."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report import fragments as render
from clipprobe_ext.report.numbers import percent
from clipprobe_ext.report.reasons import note as note_text
from clipprobe_ext.report.summary import summary_text

PROMPT = "a girl, (red umbrella:1.2), <lora:x:1>, rain <script>alert(1)</script>, city & night"


class _Collect(HTMLParser):
    """Tags and text of a fragment; fails on nothing, records every start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> _Collect:
    parser = _Collect()
    parser.feed(fragment)
    parser.close()
    return parser


@pytest.fixture()
def report(hf_encoder, images):
    options = ProbeOptions(rounds=4, threshold=0.0, synonyms=[["girl", "woman"]])
    return analyze(images[:2], PROMPT, hf_encoder, options)


def test_prompt_keeps_every_character_in_order(report):
    fragment = render.render_prompt(report)
    inner = re.search(r'<div class="cp-prompt">(.*?)</div>', fragment, re.S).group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", inner)) == PROMPT


def test_prompt_never_injects_markup(report):
    page = render.render_report(report)
    tags = {tag for tag, _ in parse(page).tags}
    assert "script" not in tags
    assert "lora:x:1" not in tags
    assert "&lt;lora:x:1&gt;" in page
    assert "&lt;script&gt;" in page


def test_each_phrase_has_its_verdict_class_and_numbers(report):
    fragment = render.render_prompt(report)
    spans = {
        int(a["data-index"]): a
        for tag, a in parse(fragment).tags
        if tag == "span" and "data-index" in a
    }
    verdicts = {v.index: v for v in report.verdicts}
    for phrase in report.phrases:
        attrs = spans[phrase.index]
        if phrase.measurable:
            v = verdicts[phrase.index]
            assert f"cp-{v.verdict}" in attrs["class"].split()
            assert percent(v.max_probability) in attrs["title"]
        else:
            assert "cp-unmeasurable" in attrs["class"].split()
            assert "not measurable" in attrs["title"]


def test_contribution_bars_are_proportional_and_signed(report):
    fragment = render.render_contribution(report)
    bars = [a for tag, a in parse(fragment).tags if tag == "span" and "data-value" in a]
    contributions = {v.index: v.contribution for v in report.verdicts if v.contribution is not None}
    assert len(bars) == len(contributions)
    scale = max(abs(c) for c in contributions.values())
    for bar in bars:
        value = contributions[int(bar["data-index"])]
        style = dict(
            (k.strip(), float(v.strip().rstrip("%")))
            for k, v in (part.split(":") for part in bar["style"].split(";") if part)
        )
        assert style["width"] == pytest.approx(50 * abs(value) / scale, abs=1e-3)
        if value >= 0:
            assert "cp-pos" in bar["class"] and style["left"] == pytest.approx(50)
        else:  # grows to the left of the centre line
            assert "cp-neg" in bar["class"]
            assert style["left"] + style["width"] == pytest.approx(50, abs=1e-3)


def test_rounds_show_probabilities_as_percent(report):
    fragment = render.render_rounds(report)
    text = "".join(parse(fragment).text)
    for analysis in report.images:
        for r in analysis.ranking.rounds:
            for _, p in r.above(0.0):
                assert percent(p) in text


def test_pruning_synonyms_notes_and_summary(report):
    page = render.render_report(report)
    text = "".join(parse(page).text)
    assert report.pruning is not None
    if report.pruning.steps:
        assert report.pruning.pruned_prompt in text
    group = report.images[0].synonyms[0]
    for t, p in zip(group.texts, group.probabilities):
        assert t in text and percent(p) in text
    for note in report.notes:
        assert note_text(note) in text
    counts = {k: sum(v.verdict == k for v in report.verdicts) for k in ("keep", "weak", "prune")}
    for k, n in counts.items():
        assert f"{n} {k}" in text
    line = summary_text(report)
    assert line.startswith(f"{counts['keep']} keep")
    for v in report.verdicts:
        if v.verdict != "keep":
            assert v.text in line


def test_error_box_escapes():
    box = render.render_error("bad <b>model</b>")
    assert "<b>" not in box and "&lt;b&gt;model" in box and "clipprobe-error" in box

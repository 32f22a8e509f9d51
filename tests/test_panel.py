"""The tab's results panel (``report.panel``) on reports small real CLIPs produced: the
answer first and in plain words, the legend, and the page's own CSS keeping every text a
user typed inside its column."""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_presence import _independent_presence
from trained_clip import picture

from clipprobe_ext.analysis.calibration import SEEN, write_calibration
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report import panel

STYLE = Path(__file__).resolve().parent.parent / "style.css"
RED = [picture(0, seed=11), picture(0, seed=12)]  # two red circles
BLUE = picture(1, seed=13)
METHOD_WORDS = ("cosine", "everyday phrases", "pictures of nothing", "softmax", " z ", "round")


@pytest.fixture(scope="module")
def fitted(trained_clip_dir, tmp_path_factory):
    """The trained CLIP with a fit under which "a red circle" is seen on the red circles
    and not on a blue square (the cut point between the two, as test_compare does)."""
    forget_banks()
    folder = shutil.copytree(trained_clip_dir, tmp_path_factory.mktemp("panel") / "model")
    circle = [
        float(_independent_presence(folder, image, ["a red circle"], raw_z=True)[0][0])
        for image in (*RED, BLUE)
    ]
    assert min(circle[:2]) > circle[2]
    seen_z = (min(circle[:2]) + circle[2]) / 2
    write_calibration(folder, seen_z - 1.0, seen_z, "test")
    yield HFClipEncoder.from_pretrained(str(folder), device="cpu")
    forget_banks()


class Tree(HTMLParser):
    """Every element as (its path of (tag, classes, id) from the root, its text)."""

    def __init__(self, root: tuple[str, set[str], str] = ("div", set(), "")) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [root]
        self.elements: list[list] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, set((a.get("class") or "").split()), a.get("id") or ""))
        self.elements.append([list(self.stack), ""])

    def handle_endtag(self, tag):
        while len(self.stack) > 1:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for element in self.elements:
            if element[0] == self.stack[: len(element[0])]:
                element[1] += data


def parse(fragment: str, root_id: str = "") -> Tree:
    tree = Tree(("div", set(), root_id))
    tree.feed(fragment)
    tree.close()
    return tree


def with_class(tree: Tree, name: str) -> list[tuple[list, str]]:
    return [(path, text) for path, text in tree.elements if name in path[-1][1]]


def chips(tree: Tree, line: str) -> list[str]:
    """The phrase chips of one finding line (``cp-find-<kind>``), in order."""
    return [
        text
        for path, text in tree.elements
        if "cp-chip" in path[-1][1] and any(line in classes for _, classes, _ in path[:-1])
    ]


def test_answer_says_what_to_cut_and_what_the_negative_did_not_remove(fitted):
    report = analyze(
        RED,
        "masterpiece, a red circle, (a blue square:1.2), green stripes",
        fitted,
        ProbeOptions(rounds=2),
        negative="a red circle, blurry",
    )
    answer = panel.render_answer(report)
    tree = parse(answer)
    cut = with_class(tree, "cp-find-cut")
    pruned = [v.text for v in report.verdicts if v.pruned]
    assert pruned, "the fit leaves nothing to cut: the test would prove nothing"
    [(_, line)] = cut
    assert chips(tree, "cp-find-cut") == pruned
    assert line.startswith("Cut") and "not in the pictures" in line
    # the negative prompt: "a red circle" is what both pictures show
    circle = next(p for p in report.negative.phrases if p.text == "a red circle")
    assert circle.score >= SEEN and circle.status == "not suppressed"
    [(_, negative)] = with_class(tree, "cp-find-negative")
    assert "a red circle (in 2 of 2)" in negative and "blurry" not in negative
    # the suggested prompt, exactly, under the findings
    [(_, suggested)] = with_class(tree, "cp-pruned-prompt")
    assert suggested == report.pruning.pruned_prompt
    assert answer.index("cp-findings") < answer.index("cp-suggested")
    # headline: the verdicts counted, in words
    seen = sum(v.verdict == "keep" for v in report.verdicts)
    assert f"CLIP sees {seen} of {len(report.verdicts)} phrases in the 2 pictures." in answer
    # the method's words stay in the details
    text = html.unescape(re.sub(r"<[^>]+>", " ", answer)).lower()
    for word in METHOD_WORDS:
        assert word not in text, word
    details = panel.render_verdict_details(report)
    assert "pictures of nothing" in details and report.reference in html.unescape(details)


def test_missing_and_unsure_phrases(fitted):
    # a blue square asked for a red circle: not there, but a prompt keeps its last phrase
    report = analyze([BLUE], "a red circle", fitted, ProbeOptions(rounds=1))
    held = [v for v in report.verdicts if v.why.code in panel.KEPT_THOUGH_NOT_SEEN]
    assert [v.text for v in held] == ["a red circle"] and not held[0].pruned
    tree = parse(panel.render_answer(report))
    [(_, missing)] = with_class(tree, "cp-find-missing")
    assert chips(tree, "cp-find-missing") == ["a red circle"]
    assert "the prompt needs them" in missing and "not in the picture," in missing
    assert not with_class(tree, "cp-find-cut") and "Every phrase shows up" not in missing
    # on a red circle, this fit puts "a blue square" between the bounds
    report = analyze(RED[:1], "a blue square, a red circle", fitted, ProbeOptions(rounds=1))
    unsure = [v.text for v in report.verdicts if v.why.code == "unsure"]
    assert unsure == ["a blue square"]
    tree = parse(panel.render_answer(report))
    assert chips(tree, "cp-find-unsure") == unsure
    [(_, line)] = with_class(tree, "cp-find-unsure")
    assert "neither confirm nor rule them out" in line


def test_nothing_to_cut_says_keep_the_prompt(fitted):
    report = analyze(RED[:1], "a red circle", fitted, ProbeOptions(rounds=1))
    assert report.pruning is not None and not report.pruning.steps
    answer = panel.render_answer(report)
    assert "No shorter prompt" in answer and "cp-pruned-prompt" not in answer
    if report.verdicts[0].verdict == "keep":
        assert "Every phrase shows up." in answer


def test_cannot_judge_gets_its_grey_class_and_legend_entry_only_when_present(fitted):
    plain = analyze(RED[:1], "a red circle, a blue square", fitted)
    legend = html.unescape(panel.render_prompt_card(plain).split('class="cp-legend"')[1])
    assert "cannot judge" not in legend and "not measured" not in legend
    for word in ("keep: seen", "weak: unsure, or not seen but needed", "prune: not seen, cut"):
        assert word in legend
    # a position is a claim CLIP cannot judge: the analysis marks it (analysis.judgeable)
    judged = analyze(RED[:1], "a red circle, two cats on the left of a dog", fitted)
    position = next(v for v in judged.verdicts if v.text.startswith("two cats"))
    assert position.verdict == "cannot_judge" and not position.pruned
    index = position.index
    card = panel.render_prompt_card(judged)
    assert f'class="cp-phrase cp-cannot_judge" data-index="{index}"' in card
    assert '<span class="cp-phrase cp-cannot_judge">cannot judge</span>' in card
    [(_, line)] = with_class(parse(panel.render_answer(judged)), "cp-find-cannot-judge")
    assert "two cats on the left of a dog" in line and "positions, counts" in line
    rules = css_rules(STYLE.read_text(encoding="utf-8"))
    grey = declarations(rules, [("div", {"cp-phrase", "cp-cannot_judge"}, "")])
    assert "9e9e9e" in grey.get("background", "") + grey.get("box-shadow", "")


def test_the_selected_phrase_is_marked_and_the_hint_says_what_a_click_does(fitted):
    report = analyze(RED[:1], "a red circle, green stripes", fitted)
    card = panel.render_prompt_card(report, selected=1, heatmaps=True)
    assert 'class="cp-phrase cp-' in card and "cp-selected" in card
    marked = re.findall(r'class="cp-phrase [^"]*cp-selected[^"]*" data-index="(\d+)"', card)
    assert marked == ["1"]
    assert "click it for its heatmap" in card
    assert "click" not in panel.render_prompt_card(report)


# -- the page's CSS ---------------------------------------------------------------------------


def css_rules(text: str) -> list[tuple[str, dict[str, str]]]:
    """``(selector, declarations)`` of each plain rule of a stylesheet (no at-rules)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    rules = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        found = dict(
            (k.strip(), v.strip().replace(" !important", ""))
            for k, v in (d.split(":", 1) for d in body.split(";") if ":" in d)
        )
        for selector in selectors.split(","):
            rules.append((selector.strip(), found))
    return rules


def _simple(part: str, element: tuple[str, set[str], str]) -> bool:
    """``tag``, ``.class``, ``#id`` and their combinations; attribute tests ignored."""
    part = re.sub(r"\[[^\]]*\]", "", part)
    tag, classes, ident = element
    for kind, name in re.findall(r"([.#]?)([\w-]+)", part):
        if kind == "." and name not in classes:
            return False
        if kind == "#" and name != ident:
            return False
        if kind == "" and name != tag:
            return False
    return True


def matches(selector: str, path: list) -> bool:
    """A descendant selector (parts separated by spaces) against an element's path."""
    parts = selector.split()
    if not parts or not _simple(parts[-1], path[-1]):
        return False
    rest, ancestors = parts[:-1], path[:-1]
    for part in reversed(rest):
        while ancestors and not _simple(part, ancestors[-1]):
            ancestors = ancestors[:-1]
        if not ancestors:
            return False
        ancestors = ancestors[:-1]
    return True


def declarations(rules, path) -> dict[str, str]:
    """What the stylesheet sets on the element (later rules win; specificity ignored)."""
    out: dict[str, str] = {}
    for selector, found in rules:
        if matches(selector, path):
            out.update(found)
    return out


LONG_NEGATIVE = (
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, cropped, "
    "(deformed_anatomy_with_extra_limbs_and_missing_fingers_and_a_very_long_tag:1.3),"
    "(worst_quality:1.4),(low_quality:1.4),(monochrome:1.1),(greyscale)"
)


def test_long_prompts_wrap_inside_their_column(fitted):
    """Before, the negative prompt was a <pre> with no rule of its own: its one line made
    the card 1,250 px wide in a 630 px column, and the page scrolled sideways."""
    report = analyze(
        RED[:1], "a red circle, " + LONG_NEGATIVE.replace("lowres", "x"), fitted,
        negative=LONG_NEGATIVE,
    )  # fmt: skip
    rules = css_rules(STYLE.read_text(encoding="utf-8"))
    outputs = {
        "clipprobe_result": panel.render_answer(report),
        "clipprobe_prompt_view": panel.render_prompt_card(report),
        "clipprobe_negative_view": panel.render_negative_details(report),
        "clipprobe_verdicts_view": panel.render_verdict_details(report),
        "clipprobe_tokens_view": panel.render_tokens_details(report),
    }
    checked = 0
    for root, fragment in outputs.items():
        tree = parse(fragment, root)
        for path, _ in tree.elements:
            tag, classes, _ = path[-1]
            if tag == "pre" or "cp-prompt" in classes:
                found = declarations(rules, path)
                assert found.get("white-space") == "pre-wrap", (root, classes)
                assert found.get("overflow-wrap") == "anywhere", (root, classes)
                checked += 1
            elif tag in ("td", "li", "p"):
                found = declarations(rules, path)
                assert found.get("overflow-wrap") == "anywhere", (root, tag, classes)
                checked += 1
    assert checked > 10
    negative = parse(outputs["clipprobe_negative_view"], "clipprobe_negative_view")
    [(_, shown)] = with_class(negative, "cp-negative-prompt")
    assert shown == LONG_NEGATIVE  # wrapped by the CSS, not cut


def test_an_uncalibrated_model_never_says_what_it_sees(trained_clip_dir, tmp_path, monkeypatch):
    """Without a fit the rounds only rank the phrases: the headline says so and asks for a
    calibration, and "Every phrase shows up" (a claim of presence) is never written."""
    from clipprobe_ext.analysis.calibration import CALIBRATION_FILE

    folder = shutil.copytree(trained_clip_dir, tmp_path / "model")
    (folder / CALIBRATION_FILE).unlink(missing_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no user fit either
    forget_banks()
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    report = analyze(RED[:1], "a red circle, a blue square, green stripes", encoder)
    forget_banks()
    assert report.bounds is None  # really uncalibrated
    answer = html.unescape(panel.render_answer(report))
    keep = sum(v.verdict == "keep" for v in report.verdicts)
    assert f"Uncalibrated model: {keep} of 3 phrases rank above the threshold" in answer
    assert "calibrate it on your pictures" in answer
    assert "CLIP sees" not in answer and "Every phrase shows up" not in answer
    # nor its legend: nothing is "seen" or "cut" by an uncalibrated model
    legend = html.unescape(panel.render_prompt_card(report).split('class="cp-legend"')[1])
    assert "keep: ranks above the threshold" in legend and "weak: never above it" in legend
    assert "seen" not in legend and "prune" not in legend

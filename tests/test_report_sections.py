"""The token budget, the negative prompt check, the presence score and the pruning guard
as the analysis carries them into the text report, the HTML, JSON and CSV.

Numbers are checked against independent computations: the token counts against openai
clip's own BPE tokenizer and the encoder's own chunking, the presence of negative phrases
against transformers' forward pass (``test_presence._independent_presence``), the kept
phrases against ``removal_blocker`` itself.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re

import numpy as np
import pytest
from clip.simple_tokenizer import SimpleTokenizer
from conftest import make_image
from test_presence import _independent_presence
from trained_clip import picture

from clipprobe_ext.analysis.pruning import (
    lazy_greedy_prune,
    naive_greedy_prune,
    similarity_floor,
)
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.analysis.tokens import token_budget
from clipprobe_ext.analysis.verdict import NOT_SEEN, SEEN
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.prompt import parse_prompt, removal_blocker, remove_phrases
from clipprobe_ext.report import fragments as render
from clipprobe_ext.report.data import report_data, to_csv, to_json
from clipprobe_ext.report.numbers import presence as presence_text
from clipprobe_ext.report.reasons import NOT_SUPPRESSED, SUPPRESSED, UNSURE, token_lines
from clipprobe_ext.report.text import format_table
from clipprobe_ext.report.view import build_view

# 10 short phrases (29 tokens with their commas), then one 50-word phrase: at 75 tokens
# the last comma is 45 tokens back, beyond the WebUI's 20, so the chunk is cut inside the
# phrase; then BREAK forces a third chunk.
LONG = " ".join(["wide"] * 50)
PROMPT = ", ".join(["a cat"] * 10) + ", " + LONG + ", BREAK, rain, city"


def _csv(report) -> list[dict]:
    return list(csv.DictReader(io.StringIO(to_csv(report))))


def _visible_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.fixture(scope="module")
def long_report(tiny_hf_clip_dir):
    encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu")
    report = analyze([make_image(1)], PROMPT, encoder, ProbeOptions(rounds=2, tolerance=0.2))
    return encoder, report


def test_token_budget_counts_clip_tokens_and_chunks_as_the_encoder_reads_them(long_report):
    encoder, report = long_report
    budget = report.tokens
    # the encoder's tokenizer fits: the same budget as openai clip's own BPE
    assert budget == token_budget(PROMPT, encoder.tokenize) == token_budget(PROMPT)
    bpe = SimpleTokenizer()
    for p in budget.phrases:
        assert p.tokens == len(bpe.encode(p.text))
    # chunk sizes as the encoder itself cuts the prompt (BREAK = a forced boundary)
    segments = PROMPT.split("BREAK")  # the commas around BREAK are tokens too
    assert budget.chunk_sizes == [len(c) for c in encoder.chunks_of(segments)]
    assert budget.chunk_sizes[0] == 75 and budget.chunk_count == 3
    long_phrase = next(p for p in budget.phrases if p.text == LONG)
    assert long_phrase.chunks == [0, 1] and budget.straddling == [long_phrase.index]
    # the WebUI's counter: 75 for each chunk closed early, then the last one's own length
    assert budget.webui_count == 75 + 75 + 4 and budget.limit == 225


def test_token_budget_in_text_html_json_and_csv(long_report):
    _, report = long_report
    budget = report.tokens
    text = format_table(report)
    assert "Token budget" in text
    flat = " ".join(text.split())
    for line in token_lines(budget):
        assert " ".join(line.split()) in flat
    assert json.loads(to_json(report))["tokens"] == json.loads(json.dumps(budget.to_dict()))

    page = render.render_report(report)
    prompt_html = render.render_prompt(report)
    # the marks add no text: the prompt reads exactly as written
    inner = re.search(r'<div class="cp-prompt">(.*?)</div>', prompt_html, re.S).group(1)
    assert _visible_text(inner) == PROMPT
    # chunk 3 starts at "rain" (after BREAK); chunk 2 starts inside the long phrase
    marks = re.findall(
        r'data-chunk="(\d+)"[^>]*></span><span class="cp-phrase[^"]*"[^>]*>([^<]*)<', inner
    )
    assert marks == [("3", "rain")]
    straddling = re.findall(r'class="cp-phrase [^"]*cp-straddles"[^>]*>([^<]*)<', inner)
    assert straddling == [LONG]
    assert "Token budget" in page and f"{budget.webui_count}/{budget.limit}" in _visible_text(page)

    rows = [r for r in _csv(report) if r["image"] == "mean"]
    by_text = {r["text"]: r for r in rows}
    for p in budget.phrases:
        row = by_text[p.text]
        assert int(row["tokens"]) == p.tokens
        assert row["chunks"] == " ".join(str(c + 1) for c in p.chunks)
        assert row["straddles"] == ("true" if p.straddles else "false")


def test_pruned_prompt_token_saving(long_report):
    encoder, report = long_report
    pruning = report.pruning
    if not pruning.steps:
        assert report.token_saving is None
        return
    pruned = token_budget(pruning.pruned_prompt, encoder.tokenize)
    saving = report.token_saving
    assert saving.original_tokens == report.tokens.tokens
    assert saving.pruned_tokens == pruned.tokens
    assert saving.tokens_saved == report.tokens.tokens - pruned.tokens
    assert saving.chunks_saved == report.tokens.chunk_count - pruned.chunk_count
    view = build_view(report)
    assert f"({saving.original_tokens} → {saving.pruned_tokens})" in view.pruning.saving
    assert view.pruning.saving in format_table(report).replace("\n  ", " ")


@pytest.fixture(scope="module")
def trained(trained_clip_dir):
    forget_banks()
    return HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")


def test_negative_check_uses_the_positive_phrases_presence(trained, trained_clip_dir):
    image = picture(0, seed=4242)  # a red circle
    negative = "a red circle, a blue square, green stripes, <lora:x:1>"
    report = analyze([image], "masterpiece, a red circle", trained, negative=negative)
    check = report.negative
    data = report_data(report)
    reasons = {p["index"]: p["reason"] for p in data["negative"]["phrases"]}
    texts = ["a red circle", "a blue square", "green stripes"]
    expected = _independent_presence(trained_clip_dir, image, texts)
    scores = [next(p for p in check.phrases if p.text == t).score for t in texts]
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    # the very same number the prompt's own "a red circle" gets
    positive = next(v for v in report.verdicts if v.text == "a red circle")
    assert scores[0] == pytest.approx(positive.presence, abs=1e-12)
    for p in check.phrases:
        if p.text.startswith("<"):
            assert p.status == "not measurable"
            continue
        reason = reasons[p.index]
        if p.score >= SEEN:
            assert (p.status, reason) == ("not suppressed", NOT_SUPPRESSED)
        elif p.score < NOT_SEEN:
            assert (p.status, reason) == ("suppressed", SUPPRESSED)
        else:
            assert (p.status, reason) == ("unsure", UNSURE)
    assert "calibrated presence" in data["negative"]["method"]

    text = format_table(report)
    assert "Negative prompt, checked" in text
    for p in check.phrases:
        assert p.status in text
    assert "did not remove it" in NOT_SUPPRESSED  # the honest wording the report uses
    assert json.loads(to_json(report))["negative"] == data["negative"]
    assert [(p["status"], p["score"]) for p in data["negative"]["phrases"]] == [
        (p.status, p.score) for p in check.phrases
    ]
    page = render.render_report(report)
    section = render.render_negative(report)
    assert section in page and page.index(section) > page.index(render.render_prompt(report))
    for p in check.phrases:
        assert html.escape(p.text) in section and html.escape(reasons[p.index]) in section
        if p.score is not None:
            assert presence_text(p.score) in _visible_text(section)
    rows = [r for r in _csv(report) if r["image"] == "negative"]
    assert [r["text"] for r in rows] == [p.text for p in check.phrases]
    for r, p in zip(rows, check.phrases):
        assert r["verdict"] == p.status
        assert (float(r["presence"]) if r["presence"] else None) == p.score


def test_no_negative_prompt_no_section(hf_encoder, images):
    report = analyze(images[:1], "a girl, rain", hf_encoder, ProbeOptions(prune=False))
    assert report.negative is None and report_data(report)["negative"] is None
    assert "Negative prompt" not in format_table(report)
    assert render.render_negative(report) == ""
    assert not [r for r in _csv(report) if r["image"] == "negative"]


def test_presence_shown_with_what_it_is_compared_with(trained):
    images = [picture(0, seed=1), picture(0, seed=2)]
    report = analyze(images, "a red circle, a blue square", trained)
    view = build_view(report)
    assert report.reference and report.reference.removeprefix("presence ") in view.reference
    assert f"{SEEN:.2f}" in view.reference and f"{NOT_SEEN:.2f}" in view.reference
    text = " ".join(format_table(report).split())
    assert "Presence" in text and " ".join(view.reference.split()) in text
    page = _visible_text(render.render_report(report))
    for v in report.verdicts:
        shown = f"{v.presence:.2f} ± {v.presence_std:.2f}"
        assert shown in text and shown in page
    rows = _csv(report)
    for v in report.verdicts:
        per_image = [
            float(r["presence"]) for r in rows if r["text"] == v.text and r["image"] != "mean"
        ]
        mean = next(
            float(r["presence"]) for r in rows if r["text"] == v.text and r["image"] == "mean"
        )
        assert mean == pytest.approx(np.mean(per_image)) == pytest.approx(v.presence)


# -- pruning never offers an unclean cut -------------------------------------------------


def _additive_oracle(values: dict[int, float]):
    def oracle(variants):
        return np.array([sum(values[i] for i in v) for v in variants])

    return oracle


@pytest.mark.parametrize("seed", range(6))
def test_lazy_search_with_a_blocker_equals_the_naive_one(seed):
    rng = np.random.default_rng(seed)
    phrases = list(range(8))
    values = {i: float(rng.normal(0, 1)) for i in phrases}
    oracle = _additive_oracle(values)
    original = sum(values.values())
    loo = [original - values[i] for i in phrases]
    refuse = {int(rng.integers(0, 8)), int(rng.integers(0, 8))}

    def blocker(removed):
        hit = sorted(removed & refuse)
        return f"phrase {hit[0]} cannot go" if hit else None

    lazy = lazy_greedy_prune(phrases, original, loo, oracle, 0.5, blocker=blocker)
    naive = naive_greedy_prune(phrases, original, oracle, 0.5, blocker=blocker)
    assert [i for i, _ in lazy.steps] == [i for i, _ in naive.steps]
    np.testing.assert_allclose([s for _, s in lazy.steps], [s for _, s in naive.steps])
    assert not {i for i, _ in lazy.steps} & refuse
    assert set(lazy.blocked) == set(naive.blocked) <= refuse
    # both keep the same phrases for the same reasons; a phrase kept for its cost was
    # last measured under the floor
    assert {h.index: h.code for h in lazy.held} == {h.index: h.code for h in naive.held}
    assert {h.index for h in lazy.held} == set(phrases) - {i for i, _ in lazy.steps}
    for h in lazy.held:
        if h.code == "below_floor":
            assert h.similarity_without < h.floor == similarity_floor(original, 0.5)
    for i, reason in lazy.blocked.items():
        assert reason == f"phrase {i} cannot go"


def test_a_phrase_that_cannot_go_cleanly_is_kept_with_its_reason(tiny_hf_clip_dir):
    """``nigh(t:time`` holds an unmatched bracket that weighs what follows: removing it
    changes the kept text's weight, so it stays, with the reason (``remove_phrases``
    would raise ``UncleanRemovalError`` on such a cut)."""
    forget_banks()
    encoder = HFClipEncoder.from_pretrained(str(tiny_hf_clip_dir), device="cpu")
    prompt = "nigh(t:time, BREAKfast"
    report = analyze([make_image(1)], prompt, encoder, ProbeOptions(tolerance=0.2))
    parsed = parse_prompt(prompt)
    pruning = report.pruning
    assert [k.index for k in pruning.kept] == [0]
    removed = set(pruning.removed)
    assert pruning.kept[0].blocker in {
        removal_blocker(parsed, {0}),
        removal_blocker(parsed, removed | {0}),
    }
    assert pruning.kept[0].blocker is not None
    assert pruning.pruned_prompt == remove_phrases(prompt, parsed, sorted(removed))
    assert 0 not in removed
    kept_line = f"'nigh(t:time' kept: {pruning.kept[0].blocker}"
    assert kept_line in " ".join(format_table(report).split())
    assert html.escape(kept_line) in render.render_pruning(report)
    verdict = next(v for v in build_view(report).verdicts if v.index == 0)
    assert verdict.reason.endswith(f"kept: {pruning.kept[0].blocker}")
    assert "cannot be cut cleanly" in verdict.reason  # not "the similarity needs it"
    assert json.loads(to_json(report))["pruning"]["kept"] == [
        {"index": 0, "reason": pruning.kept[0].blocker}
    ]


@pytest.mark.parametrize("prompt", ["1girl AND rain", "rain AND 1girl, hat", "a, BREAK, b"])
def test_pruning_never_raises_and_every_cut_is_clean(hf_encoder, prompt):
    report = analyze([make_image(2)], prompt, hf_encoder, ProbeOptions(tolerance=0.2))
    parsed = parse_prompt(prompt)
    removed = report.pruning.removed
    assert removal_blocker(parsed, removed) is None
    assert report.pruning.pruned_prompt == remove_phrases(prompt, parsed, removed)
    for k in report.pruning.kept:
        assert k.index not in removed and k.blocker


def test_a_clean_prompt_keeps_nothing_back(hf_encoder):
    prompt = "a girl, rain, hat, cloud"
    report = analyze([make_image(1)], prompt, hf_encoder, ProbeOptions(tolerance=0.2))
    assert report.pruning.kept == []
    assert report.pruning.steps  # the tiny model drops some: the cut is the plain one
    parsed = parse_prompt(prompt)
    assert report.pruning.pruned_prompt == remove_phrases(prompt, parsed, report.pruning.removed)
    assert "kept:" not in format_table(report)


def test_removed_chips_are_a_comma_separated_list(hf_encoder):
    report = analyze(
        [make_image(1)], "a girl, rain, hat, cloud", hf_encoder, ProbeOptions(tolerance=0.2)
    )
    removed = build_view(report).pruning.removed
    assert len(removed) >= 2
    fragment = render.render_pruning(report)
    chips = ", ".join(f'<span class="cp-removed">{html.escape(t)}</span>' for t in removed)
    assert chips in fragment
    assert ", ".join(removed) in _visible_text(fragment)

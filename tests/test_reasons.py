"""Reason codes and the words written from them, on real analyses.

A verdict's reason is a code with the numbers behind it; the sentence is written once
(``report.reasons``).  The search's record of a phrase it kept is checked against a
fresh model's similarities of the very prompts the search measured.
"""

from __future__ import annotations

import html
import re
import shutil
import typing

import pytest
from conftest import make_image
from test_analysis import _independent_similarity
from trained_clip import picture

from clipprobe_ext.analysis.calibration import write_calibration
from clipprobe_ext.analysis.pruning import similarity_floor
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report import fragments
from clipprobe_ext.report.data import report_data
from clipprobe_ext.report.numbers import percent, signed, similarity
from clipprobe_ext.report.reasons import pruning_outcome, verdict_reason
from clipprobe_ext.report.text import format_table
from clipprobe_ext.results import PruneResult, PruneStep, VerdictCode

VERDICT_OF: dict[str, str] = {
    "seen": "keep",
    "unsure": "weak",
    "not_seen_dropped": "prune",
    "not_seen_clearly": "prune",
    "not_seen_needed": "weak",
    "not_seen_last": "weak",
    "cannot_cut_cleanly": "weak",
    "no_pruning": "weak",
}


@pytest.fixture(scope="module")
def all_absent(trained_clip_dir, tmp_path_factory):
    """The trained CLIP with a fit under which no phrase is seen: the pruning search then
    decides about every phrase, by the similarity alone."""
    forget_banks()
    folder = shutil.copytree(trained_clip_dir, tmp_path_factory.mktemp("absent") / "model")
    write_calibration(folder, 10.0, 11.0, "everything not seen")
    yield folder, HFClipEncoder.from_pretrained(str(folder), device="cpu")
    forget_banks()


def test_a_kept_phrase_names_the_search_step_that_held_it(all_absent):
    """From the full prompt, "green" costs nothing (the prompt gains without it); the search
    kept it because, once "a blue square" was cut, cutting it too fell under the floor.
    The reason says that step, with its numbers, not the leave-one-out."""
    folder, encoder = all_absent
    image, tolerance = picture(3, seed=429), 0.01  # a yellow triangle
    prompt = "green, a blue square, a yellow circle"
    report = analyze([image], prompt, encoder, ProbeOptions(rounds=1, tolerance=tolerance))

    def sim(text: str) -> float:
        return _independent_similarity(folder, image, text)

    full = sim(prompt)
    assert sim("a blue square, a yellow circle") > full  # leave-one-out: gains without it
    green = report.verdicts[0]
    assert green.contribution < 0 and not green.pruned and green.verdict == "weak"
    assert report.pruning.removed == [1]
    assert green.why.code == "not_seen_needed"
    held = green.why.held
    assert held.removed_before == (1,)
    assert held.similarity_before == pytest.approx(sim("green, a yellow circle"), abs=1e-5)
    assert held.similarity_without == pytest.approx(sim("a yellow circle"), abs=1e-5)
    assert held.floor == pytest.approx(similarity_floor(full, tolerance), abs=1e-5)
    assert held.similarity_without < held.floor
    reason = verdict_reason(report, green)
    assert reason == (
        'not seen: 0.00 (under 0.11), but the pruned prompt keeps it: with "a blue square" cut, '
        f"cutting it too would take the similarity from {similarity(held.similarity_before)} "
        f"to {similarity(held.similarity_without)}, under the allowed {similarity(held.floor)}"
    )
    assert "gains" not in reason and "needs it" not in reason
    # the JSON carries the code and the numbers beside the sentence
    row = report_data(report)["verdicts"][0]
    assert row["reason"] == reason and row["why"]["code"] == "not_seen_needed"
    assert row["why"]["held"]["similarity_without"] == pytest.approx(held.similarity_without)


def test_the_last_phrase_left_says_so(hf_encoder):
    """On a random CLIP every removal raises the similarity: the search cuts all but one
    phrase, and that one stays because a prompt keeps at least one."""
    prompt = "a red umbrella, a girl, (rain:1.2), city street at night, neon lights"
    images = [make_image(1), make_image(2)]
    report = analyze(images, prompt, hf_encoder, ProbeOptions(tolerance=0.2))
    [last] = [v for v in report.verdicts if not v.pruned]
    assert report.pruning.pruned_prompt == prompt[: len(last.text)] == last.text
    assert last.why.code == "not_seen_last" and last.verdict == "weak"
    reason = verdict_reason(report, last)
    assert "the last phrase left" in reason and "needs it" not in reason


def test_every_code_has_its_verdict_and_its_words(all_absent, hf_encoder, trained_clip_dir):
    forget_banks()
    trained = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    reports = [
        analyze([picture(3, seed=429)], "green, a blue square, a yellow circle", all_absent[1]),
        analyze([picture(0, seed=4242)], "a red circle, a blue square, masterpiece", trained),
        analyze([make_image(1)], "a girl, rain, hat", hf_encoder, ProbeOptions(prune=False)),
        analyze([make_image(1)], "nigh(t:time, BREAKfast", hf_encoder, ProbeOptions(tolerance=0.2)),
    ]
    codes = set(typing.get_args(VerdictCode))
    seen_codes = set()
    for report in reports:
        data = report_data(report)
        for v, row in zip(report.verdicts, data["verdicts"]):
            assert v.why.code in codes
            seen_codes.add(v.why.code)
            if v.why.code in VERDICT_OF:
                assert v.verdict == VERDICT_OF[v.why.code]
            assert v.pruned == v.why.code.startswith(("not_seen_dropped", "not_seen_clearly"))
            assert row["why"]["code"] == v.why.code
            assert row["reason"] == verdict_reason(report, v)
    assert {"not_seen_needed", "not_seen_dropped", "no_pruning", "cannot_cut_cleanly"} <= (
        seen_codes
    )


def test_no_negative_zero_and_one_unit_rule():
    assert similarity(-0.00001) == "0.0000" and signed(-0.00001) == "0.0000"
    assert signed(0.0123) == "+0.0123" and signed(-0.0123) == "-0.0123"
    assert percent(0.125) == "12.5 %" and percent(-0.0000001) == "0.0 %"
    outcome = pruning_outcome(PruneResult(-0.00001, 0.01, [PruneStep(0, 0.0085)], "cat", 3))
    assert outcome == "Similarity 0.0000 → 0.0085: up by 0.0085."


def test_tokens_are_always_labelled_and_percent_keeps_its_space(hf_encoder):
    prompt = ", ".join(["a cat"] * 10) + ", " + " ".join(["wide"] * 50) + ", BREAK, rain, city"
    report = analyze([make_image(1)], prompt, hf_encoder, ProbeOptions(tolerance=0.2))
    assert report.token_saving is not None
    text = format_table(report)
    page = html.unescape(re.sub(r"<[^>]+>", " ", fragments.render_report(report)))
    for out in (text, page):
        flat = " ".join(out.split())
        assert f"WebUI count {report.tokens.webui_count}/{report.tokens.limit}" in flat
        assert f"{report.tokens.tokens} CLIP tokens" in flat
        saving = report.token_saving
        assert f"saves {saving.tokens_saved} CLIP tokens" in flat
        assert not re.search(r"\d+ tokens?\b", flat)  # a count always says which count
        assert not re.search(r"\d%", flat)  # "12.5 %", never "12.5%"
        assert "-0.0000" not in flat

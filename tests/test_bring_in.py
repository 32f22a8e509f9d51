"""Bring a missing phrase in: the stand-in generator draws a phrase only when its WebUI
weight passes a threshold the test knows (``stand_in_generator``), so the variant that
must win, and the ones that must fail or push another phrase out, are known in advance."""

from __future__ import annotations

import numpy as np
import pytest
from presence_formula import mapped
from stand_in_generator import drawn, fit_stand_in_model, stand_in
from test_compare import reference_ssim
from test_presence import _independent_presence

from clipprobe_ext.analysis.bring_in import MAX_GENERATIONS, best_variant, bring_in, plan_bring_in
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.errors import ModelError, PromptError
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report.bring_in import bring_in_data, bring_in_html

SEED = 4


@pytest.fixture(scope="module")
def model(trained_clip_dir, tmp_path_factory):
    folder, fit = fit_stand_in_model(
        trained_clip_dir, tmp_path_factory.mktemp("stand-in") / "m", SEED
    )
    yield folder, HFClipEncoder.from_pretrained(str(folder), device="cpu"), fit
    forget_banks()


def run(model, prompt, wanted, **kwargs):
    folder, encoder, _ = model
    original = stand_in(prompt, SEED)
    report = analyze([original], prompt, encoder, ProbeOptions(rounds=2))
    calls = []

    def generate(text):
        calls.append(text)
        return stand_in(text, SEED)

    return report, bring_in(report, original, wanted, generate, encoder, **kwargs), calls


def test_the_search_finds_the_weight_that_brings_the_phrase_in(model) -> None:
    prompt = "masterpiece, a blue square, best quality"
    assert drawn(prompt) is None  # the square needs weight 1.3: the original shows nothing
    report, result, calls = run(model, prompt, ["a blue square"])
    labels = [r.variant.label for r in result.results]
    assert labels[:3] == ["weight 1.2", "weight 1.4", "weight 1.6"]
    assert "moved to the front" in labels and "in a chunk of its own (BREAK)" in labels
    assert calls == [r.variant.prompt for r in result.results]  # one generation each
    seen = {r.variant.label: r.wanted_seen for r in result.results}
    # exactly the variants whose square weighs 1.3 or more bring it in
    assert seen == {
        r.variant.label: drawn(r.variant.prompt) == "a blue square" for r in result.results
    }
    assert seen["weight 1.4"] and seen["weight 1.6"] and not seen["weight 1.2"]
    assert not seen["moved to the front"] and not seen["in a chunk of its own (BREAK)"]
    # 1.4 and 1.6 draw the same picture (same seed): the tie goes to the milder change
    best = result.results[result.best]
    assert best.variant.label == "weight 1.4" and result.best_prompt == best.variant.prompt
    assert best.lost == [] and best.qualifies
    # the wanted presence is the calibrated formula on the picture, from a fresh model
    folder, _, fit = model
    z, _ = _independent_presence(folder, best.image, ["a blue square"], raw_z=True)
    assert best.wanted_presence == pytest.approx(
        float(mapped(z[0], fit.not_seen_z, fit.seen_z)), abs=1e-4
    )
    # SSIM against the grey original, by hand; a failed variant drew the same grey: 1
    failed = next(r for r in result.results if r.variant.label == "weight 1.2")
    assert failed.comparison.ssim == pytest.approx(1.0)
    grey, square = (np.asarray(i, float) for i in (stand_in(prompt, SEED), best.image))
    assert best.comparison.ssim == pytest.approx(reference_ssim(grey, square), abs=1e-9)
    assert best.comparison.ssim < 0.9
    data = bring_in_data(result)
    assert data["best"] == result.best and data["variants"][result.best]["best"]
    assert data["best_prompt"] == "masterpiece, (a blue square:1.4), best quality"
    page = bring_in_html(result)
    assert 'class="cp-best"' in page and "weight 1.4" in page


def test_a_variant_that_pushes_a_kept_phrase_out_is_reported_and_not_chosen(model) -> None:
    prompt = "a red circle, a blue square"
    assert drawn(prompt) == "a red circle"
    report, result, _ = run(model, prompt, ["a blue square"])
    circle = next(v for v in report.verdicts if v.text == "a red circle")
    assert circle.verdict == "keep"  # the original shows it
    by_label = {r.variant.label: r for r in result.results}
    pushed = by_label["weight 1.4"]
    assert pushed.wanted_seen and pushed.lost == ["a red circle"] and not pushed.qualifies
    assert by_label["weight 1.2"].lost == [] and not by_label["weight 1.2"].wanted_seen
    weakened = by_label["'a red circle' weakened"]  # the competitor: 0.8 < 1.0, nothing drawn
    assert weakened.variant.prompt == "(a red circle:0.8), a blue square"
    assert weakened.lost == ["a red circle"] and not weakened.wanted_seen
    for r in result.results:  # the rule, against the stand-in's own truth
        assert r.wanted_seen == (drawn(r.variant.prompt) == "a blue square")
        assert (r.lost == ["a red circle"]) == (drawn(r.variant.prompt) != "a red circle")
    assert result.best is None and result.best_prompt is None
    page = bring_in_html(result)
    assert "pushes out a red circle" in page and "without losing a kept phrase" in page


def test_interrupt_keeps_what_was_done(model) -> None:
    done = []

    def stop():
        return len(done) >= 2

    def progress(message, fraction):
        done.append(message)

    _, result, calls = run(model, "a red circle, a blue square", ["a blue square"], stop=stop,
                           progress=progress)  # fmt: skip
    assert result.interrupted and len(result.results) == 1 == len(calls) - 1
    assert len(result.planned) > 2
    assert "Interrupted: 1 of" in bring_in_html(result)


def test_bad_phrases_are_refused_before_generating(model) -> None:
    _, encoder, _ = model
    report = analyze([stand_in("a red circle", 1)], "a red circle, <lora:x:1>", encoder)
    with pytest.raises(PromptError, match="not a measurable phrase"):
        plan_bring_in(report, ["a cat"])
    with pytest.raises(PromptError, match="at least one"):
        plan_bring_in(report, [])
    wanted, rival, variants, _ = plan_bring_in(report, ["a red circle"])
    assert wanted == (0,) and rival is None and 0 < len(variants) <= MAX_GENERATIONS
    assert best_variant([]) is None


def test_the_stand_in_follows_the_weights() -> None:
    assert drawn("a red circle, (a blue square:1.3)") == "a blue square"  # 1.3 > 1.0
    assert drawn("a red circle, (a blue square:1.29)") == "a red circle"  # under its need
    assert drawn("(a blue square:1.2)") is None
    assert drawn("green stripes, a red circle") == "green stripes"  # a tie: the first
    a, b = (np.asarray(stand_in("a red circle", s)) for s in (1, 2))
    assert not np.array_equal(a, b)


def test_a_variant_the_generator_cannot_make_is_listed_and_the_others_still_run(model) -> None:
    """Seen live: a random checkpoint's UNet made NaNs for one variant's prompt, and the
    WebUI raised; before, that lost every variant done."""
    folder, encoder, _ = model
    prompt = "masterpiece, a blue square, best quality"
    original = stand_in(prompt, SEED)
    report = analyze([original], prompt, encoder, ProbeOptions(rounds=2))

    def generate(text):
        if "(a blue square:1.4)" in text:
            raise ModelError("The WebUI could not generate the picture: NansException")
        return stand_in(text, SEED)

    result = bring_in(report, original, ["a blue square"], generate, encoder)
    [(variant, why)] = result.failed
    assert variant.label == "weight 1.4" and "NansException" in why
    assert len(result.results) == len(result.planned) - 1 and not result.interrupted
    assert result.results[result.best].variant.label == "weight 1.6"  # the next that works
    assert "Not generated:" in bring_in_html(result)
    assert bring_in_data(result)["failed"][0]["label"] == "weight 1.4"

    def broken(text):
        raise RuntimeError("a bug, not a failed picture")

    with pytest.raises(RuntimeError):
        bring_in(report, original, ["a blue square"], broken, encoder)

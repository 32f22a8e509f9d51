"""The pruning guard yields to clear evidence of absence (a fit's ``absent_z``), and only
there: on the tests' trained tiny CLIP, checked against a fresh model's own numbers."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import fitless_copy, folder_ref
from test_analysis import _independent_similarity
from test_presence import _independent_presence
from trained_clip import picture

from clipprobe_ext.analysis.calibration import (
    CALIBRATION_FILE,
    NOT_SEEN,
    calibration_for,
    write_calibration,
)
from clipprobe_ext.analysis.pruning import similarity_floor
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report.data import report_data
from clipprobe_ext.report.reasons import pruning_outcome, verdict_reason

PROMPT = "a red circle, a blue square, a yellow triangle, masterpiece"
IMAGE_SEED = 4242  # picture(0): a red circle, nothing else; picture(1): a blue square


@pytest.fixture()
def model_copy(trained_clip_dir, tmp_path):
    forget_banks()
    yield fitless_copy(trained_clip_dir, tmp_path / "model")  # each test writes its fit
    forget_banks()


def _z(folder, texts: list[str], kind: int = 0) -> dict[str, float]:
    """Each phrase's ``cosine_z`` on the picture, from a fresh model (nothing of ours)."""
    z, _ = _independent_presence(folder, picture(kind, seed=IMAGE_SEED), texts, raw_z=True)
    return dict(zip(texts, map(float, z)))


def _analyze(folder, prompt: str, tolerance: float, kind: int = 0):
    forget_banks()  # the fit is read with the banks
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    options = ProbeOptions(rounds=2, tolerance=tolerance)
    return analyze([picture(kind, seed=IMAGE_SEED)], prompt, encoder, options)


def test_the_guard_yields_to_a_phrase_clearly_not_seen(model_copy):
    # the picture shows a blue square; "green stripes" is absent, yet the prompt's
    # similarity to the picture falls without it
    prompt, kind = "a blue square, green stripes", 1
    image = picture(kind, seed=IMAGE_SEED)
    z = _z(model_copy, ["a blue square", "green stripes"], kind)
    assert z["green stripes"] < z["a blue square"]
    not_seen = (z["a blue square"] + z["green stripes"]) / 2
    full = _independent_similarity(model_copy, image, prompt)
    alone = _independent_similarity(model_copy, image, "a blue square")
    tolerance = 0.001
    assert alone < similarity_floor(full, tolerance), "the stripes raise the similarity"

    write_calibration(model_copy, not_seen, not_seen + 1, "guard holds")
    held = _analyze(model_copy, prompt, tolerance, kind)
    stripes = next(v for v in held.verdicts if v.text == "green stripes")
    assert stripes.presence < NOT_SEEN
    assert stripes.verdict == "weak" and not stripes.pruned
    # what held it back is the search's own step, with its numbers: the prompt without it
    # would fall from the full prompt's similarity to the blue square's alone
    assert stripes.why.code == "not_seen_needed"
    record = stripes.why.held
    assert record.removed_before == ()
    assert record.similarity_before == pytest.approx(full, abs=1e-5)
    assert record.similarity_without == pytest.approx(alone, abs=1e-5)
    assert record.floor == pytest.approx(similarity_floor(full, tolerance), abs=1e-5)
    reason = verdict_reason(held, stripes)
    assert reason.endswith(
        f"but the pruned prompt keeps it: cutting it would take the similarity from "
        f"{record.similarity_before:.4f} to {record.similarity_without:.4f}, under the allowed "
        f"{record.floor:.4f}"
    )
    assert held.pruning.clearly_absent == [] and held.pruning.guard_similarity is None
    assert "clearly" not in report_data(held)["reference"]

    point = z["green stripes"] + 0.05
    write_calibration(model_copy, not_seen, not_seen + 1, "guard yields", absent_z=point)
    report = _analyze(model_copy, prompt, tolerance, kind)
    stripes = next(v for v in report.verdicts if v.text == "green stripes")
    assert stripes.verdict == "prune" and stripes.pruned
    assert f"cosine z {z['green stripes']:.2f} (under {point:.2f})" in verdict_reason(
        report, stripes
    )
    pruning = report.pruning
    assert pruning.clearly_absent == [stripes.index]
    assert pruning.pruned_prompt == "a blue square"
    # what it cost is measured, not assumed: beyond the tolerance, and said so
    assert pruning.original_similarity == pytest.approx(full, abs=1e-5)
    assert pruning.final_similarity == pytest.approx(alone, abs=1e-5)
    assert pruning.guard_similarity == pytest.approx(alone, abs=1e-5)
    assert "1 phrase clearly not seen went first" in pruning_outcome(pruning)
    data = report_data(report)
    assert f"clearly not seen under cosine z {point:.2f}" in data["reference"]
    assert report.bounds.absent_z == point
    assert data["pruning"]["clearly_absent"] == [stripes.index]
    assert data["verdicts"][stripes.index]["why"]["code"] == "not_seen_clearly"


def test_clear_removals_go_first_and_the_guard_counts_from_the_prompt_without_them(
    model_copy,
):
    texts = ["a red circle", "a blue square", "a yellow triangle", "masterpiece"]
    z = _z(model_copy, texts)
    absent = sorted(texts[1:], key=z.get)  # clearest first
    assert z["a red circle"] > max(z[t] for t in absent)
    not_seen = (z["a red circle"] + z[absent[-1]]) / 2
    # clearly not seen: the two lowest, not the third
    point = (z[absent[1]] + z[absent[2]]) / 2
    write_calibration(model_copy, not_seen, not_seen + 1, "test", absent_z=point)
    tolerance = 0.01
    report = _analyze(model_copy, PROMPT, tolerance)
    index = {p.text: p.index for p in report.measurable}
    pruning = report.pruning
    assert pruning.clearly_absent == [index[absent[0]], index[absent[1]]]
    assert [s.removed for s in pruning.steps[:2]] == pruning.clearly_absent
    image = picture(0, seed=IMAGE_SEED)
    rest = [t for t in texts if t not in absent[:2]]
    assert pruning.guard_similarity == pytest.approx(
        _independent_similarity(model_copy, image, ", ".join(rest)), abs=1e-5
    )
    floor = similarity_floor(pruning.guard_similarity, tolerance)
    assert all(step.similarity >= floor for step in pruning.steps[2:])
    verdicts = {v.text: v for v in report.verdicts}
    for text in absent[:2]:
        assert verdicts[text].verdict == "prune"
        reason = verdict_reason(report, verdicts[text])
        assert f"cosine z {z[text]:.2f} (under {point:.2f})" in reason
    assert "clearly" not in verdict_reason(report, verdicts[absent[2]])
    # never a phrase the evidence calls anything but not seen
    assert all(verdicts[t].presence < NOT_SEEN for t in absent[:2])
    assert not verdicts["a red circle"].pruned


def test_a_fit_whose_clear_absence_is_not_inside_not_seen_is_refused(model_copy, caplog):
    with pytest.raises(ValueError, match="clearly not seen is a part of not seen"):
        write_calibration(model_copy, 0.0, 1.0, "x", absent_z=0.5)
    with pytest.raises(ValueError, match="finite"):
        write_calibration(model_copy, 0.0, 1.0, "x", absent_z=float("inf"))
    assert not (model_copy / CALIBRATION_FILE).exists()
    bad = {"not_seen_z": 0.0, "seen_z": 1.0, "absent_z": 0.5}
    (model_copy / CALIBRATION_FILE).write_text(json.dumps(bad))
    with caplog.at_level(logging.WARNING):
        assert calibration_for(folder_ref(model_copy)) is None  # refused: uncalibrated
    write_calibration(model_copy, 0.0, 1.0, "x", absent_z=-0.5)
    fit = calibration_for(folder_ref(model_copy))
    assert fit.absent_z == -0.5 and fit.to_dict()["absent_z"] == -0.5
    assert fit.clearly_absent(-0.6) and not fit.clearly_absent(-0.5)


def test_a_clearly_absent_phrase_that_cannot_go_cleanly_stays_and_says_why(model_copy):
    # the unmatched bracket weighs the text after it: cutting the phrase would change
    # how the WebUI weighs "a blue square"
    prompt, kind = "(green stripes, a blue square", 1
    z = _z(model_copy, ["(green stripes", "a blue square"], kind)
    assert z["(green stripes"] < z["a blue square"]
    not_seen = (z["a blue square"] + z["(green stripes"]) / 2
    point = z["(green stripes"] + 0.05
    write_calibration(model_copy, not_seen, not_seen + 1, "test", absent_z=point)
    report = _analyze(model_copy, prompt, 0.01, kind)
    pruning = report.pruning
    assert pruning.clearly_absent == [] and pruning.removed == []
    assert [k.index for k in pruning.kept] == [0]
    assert "unmatched bracket" in pruning.kept[0].blocker
    stripes = report.verdicts[0]
    assert stripes.verdict == "weak" and not stripes.pruned
    assert stripes.why.code == "cannot_cut_cleanly"
    reason = verdict_reason(report, stripes)
    assert "cannot be cut cleanly" in reason and reason.endswith(pruning.kept[0].blocker)
    assert "similarity needs it" not in reason

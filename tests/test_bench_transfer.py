"""The transfer benchmark's rules (bench/transfer_rules.py) reach the real engine as meant,
and its fits are made from the same scores the engine computes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_analysis import _independent_similarity
from test_presence import _independent_presence
from trained_clip import picture

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from bench_advice import phrase_rows  # noqa: E402
from bench_transfer import KnownImages, embeddings_now, rules_for  # noqa: E402
from transfer_rules import (  # noqa: E402
    ALL_CANDIDATES,
    FIT,
    NO_PRESENCE,
    Rule,
    applied,
    conservative_fit,
    folder_evidence,
    patched,
    truth_rows,
)
from zoo_cache import prompted_pictures  # noqa: E402

from clipprobe_ext.analysis import calibration, references  # noqa: E402
from clipprobe_ext.analysis.calibration import PresenceCalibration, calibration_for  # noqa: E402
from clipprobe_ext.analysis.references import reference_banks  # noqa: E402
from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402

PROMPT = "a red circle, a blue square, a yellow triangle, green stripes, masterpiece"
TEXTS = [p.strip() for p in PROMPT.split(",")]


@pytest.fixture(scope="module")
def world_pictures():
    return prompted_pictures("plain", 0, count=6)


def test_cached_scores_are_the_ones_the_engine_computes(hf_encoder, world_pictures):
    """The fits are made from cached embeddings with numpy; the engine's own rows
    (``bench_advice.phrase_rows`` on the real analysis) must give the same scores."""
    e = embeddings_now(hf_encoder, world_pictures, "tiny", "plain", 0)
    cached = truth_rows(e)
    engine = []
    banks = reference_banks(hf_encoder)
    for p in world_pictures:
        report = analyze([p.image], p.prompt, hf_encoder, ProbeOptions(prune=False))
        engine += phrase_rows(report, p, [p.image], hf_encoder, banks, None)
    assert [r["label"] for r in cached] == [r["label"] for r in engine]
    for key in ("cosine_z", "phrase_z"):
        ours, theirs = np.array([r[key] for r in cached]), np.array([r[key] for r in engine])
        assert np.abs(ours - theirs).max() < 1e-4, key


def test_the_asked_mask_is_each_pictures_own_prompt(hf_encoder, world_pictures):
    e = embeddings_now(hf_encoder, world_pictures, "tiny", "plain", 0)
    evidence = folder_evidence(e)
    for n, p in enumerate(world_pictures):
        asked = {evidence.phrases[k] for k in np.flatnonzero(evidence.asked[n])}
        assert asked == {q.text for q in p.phrases}
    cosine = np.asarray(e.images, np.float64) @ np.asarray(e.text_embeddings, np.float64).T
    assert np.allclose(evidence.cosine, cosine)


def test_a_fit_rule_is_the_fit_the_engine_reads(trained_clip_dir):
    """Inside the block the presence is the rule's fit applied to the model's own scores
    (computed from a fresh model, nothing of ClipProbe's); after it, the lookup is back."""
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    image = picture(0, seed=4242)
    fit = PresenceCalibration(0.3, 1.1, "a rule's fit", -0.2, 0.9, absent_z=0.1)
    with applied(Rule("test", FIT, fit)):
        report = analyze([image], PROMPT, encoder, ProbeOptions())
    z, own = _independent_presence(trained_clip_dir, image, TEXTS, raw_z=True)
    expected = fit.presence(z, own)
    measured = [v.presence for v in report.verdicts]
    assert np.allclose(measured, expected, atol=1e-4)
    assert "a rule's fit" in report.reference and report.bounds.absent_z == 0.1
    assert references.calibration_for is calibration.calibration_for
    after = analyze([image], PROMPT, encoder, ProbeOptions())
    assert calibration_for(encoder.ref).source in after.reference


def test_without_presence_the_ranking_decides_and_nothing_is_pruned(trained_clip_dir):
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    options = ProbeOptions()
    with applied(Rule("uncalibrated", NO_PRESENCE)):
        report = analyze([picture(1, seed=7)], PROMPT, encoder, options)
    assert report.pruning.removed == []
    for v in report.verdicts:
        assert v.presence is None and v.why.code == "uncalibrated" and not v.pruned
        best = report.images[0].ranking.max_probability(v.index)
        assert v.verdict == ("keep" if best > options.threshold else "weak")
    assert any(v.verdict == "keep" for v in report.verdicts)


def test_the_guard_alone_at_zero_tolerance_never_lowers_the_similarity(trained_clip_dir):
    """Every phrase is a candidate; what goes, goes only while the prompt's similarity
    (from a fresh model) does not drop, and every phrase it removed is a prune verdict."""
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    image = picture(2, seed=11)
    with applied(Rule("guard-0%", ALL_CANDIDATES, tolerance=0.0)):
        report = analyze([image], PROMPT, encoder, ProbeOptions(tolerance=0.0))
    pruning = report.pruning
    assert pruning.clearly_absent == []  # no clear absence: the guard decides everything
    assert {v.index for v in report.verdicts if v.verdict == "prune"} == set(pruning.removed)
    assert all(v.verdict in ("prune", "weak") for v in report.verdicts)
    before = _independent_similarity(trained_clip_dir, image, PROMPT)
    after = _independent_similarity(trained_clip_dir, image, pruning.pruned_prompt)
    assert after >= before - 1e-5


def test_patching_a_lookup_the_engine_no_longer_has_is_an_error():
    with (
        pytest.raises(RuntimeError, match="calibration_lookup"),
        patched(references, "calibration_lookup", None),
    ):
        pass


def _fit(not_seen, seen, phrase=None, absent=None) -> PresenceCalibration:
    pair = phrase or (None, None)
    return PresenceCalibration(not_seen, seen, "t", *pair, absent_z=absent)


def test_the_fixed_rule_takes_the_most_cautious_point_of_the_others():
    fits = [
        _fit(-0.3, 0.8, (-2.0, 0.4), -0.5),
        _fit(-3.4, 0.6, (-1.6, 1.7), -3.8),
        _fit(-0.9, 0.7, (-1.3, 0.2), -1.2),
    ]
    truth = {("a", "plain"): fits[0], ("b", "plain"): fits[1], ("b", "busy"): fits[2]}
    truth[("a", "busy")] = _fit(-9.0, 9.0, (-9.0, 9.0), -9.5)  # a's own: never used for a
    rules = {r.name: r for r in rules_for("a", "plain", truth, {}, ["fixed-lomo", "own"])}
    fixed = rules["fixed-lomo"].fit
    assert (fixed.not_seen_z, fixed.seen_z) == (-3.4, 0.7)  # b's fits only
    assert (fixed.phrase_not_seen_z, fixed.phrase_seen_z) == (-1.6, 1.7)
    assert fixed.absent_z is None
    assert rules["own"].fit is fits[0]
    mixed = conservative_fit([fits[0], _fit(-1.0, 2.0)], "t")
    assert not mixed.uses_phrase_level and (mixed.not_seen_z, mixed.seen_z) == (-1.0, 2.0)
    alone = {("a", "plain"): fits[0], ("a", "busy"): fits[2]}
    assert rules_for("a", "plain", alone, {}, ["fixed-lomo"]) == []


def test_a_refused_label_free_fit_leaves_the_model_uncalibrated(hf_encoder, world_pictures):
    from transfer_rules import self_fit

    from clipprobe_ext.analysis.self_calibration import CalibrationRefused

    e = embeddings_now(hf_encoder, world_pictures, "tiny", "plain", 0)
    with pytest.raises(CalibrationRefused):
        self_fit(e)  # six pictures are too few
    own = {("a", "plain"): "too few", ("a", "busy"): _fit(-1.0, 1.0)}
    rules = rules_for("a", "plain", {}, own, ["self", "self-other-domain"])
    assert [(r.mode, r.note.startswith("refused")) for r in rules] == [
        (NO_PRESENCE, True),
        (FIT, False),
    ]


def test_known_images_are_encoded_once(hf_encoder):
    images = [picture(k, seed=k) for k in range(4)]
    known = KnownImages(hf_encoder, images)
    forwards = hf_encoder.stats.image_forwards
    again = known.encode_images([images[2], images[0]])
    assert hf_encoder.stats.image_forwards == forwards  # nothing through the tower again
    alone = hf_encoder.encode_images([images[2], images[0]])
    assert np.abs(again.numpy() - alone.numpy()).max() < 1e-5
    known.encode_images([picture(0, seed=99)])  # a picture it does not know: the encoder
    assert hf_encoder.stats.image_forwards == forwards + 3

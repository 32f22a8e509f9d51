"""Per-model calibration of presence: a model folder's own fit; none (uncalibrated) otherwise."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import folder_ref
from presence_formula import expected_presence, mapped
from test_presence import _independent_presence
from trained_clip import picture

from clipprobe_ext.analysis.calibration import (
    CALIBRATION_FILE,
    NOT_SEEN,
    SEEN,
    PresenceCalibration,
    calibration_for,
    write_calibration,
)
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze

PROMPT = "a red circle, a blue square, a yellow triangle, masterpiece"


@pytest.fixture()
def model_copy(trained_clip_dir, tmp_path):
    forget_banks()
    yield shutil.copytree(trained_clip_dir, tmp_path / "model")
    forget_banks()


def test_a_phrase_seen_on_every_picture_is_held_back_by_its_own_level():
    fit = PresenceCalibration(0.0, 1.0, "test", 1.0, 2.0)
    # high against the unrelated pairs, but no higher than on a picture of nothing
    generic = fit.presence(np.array([3.0]), np.array([0.0]))[0]
    specific = fit.presence(np.array([3.0]), np.array([3.0]))[0]
    assert generic < NOT_SEEN < SEEN < specific
    assert specific == pytest.approx(min(mapped(3.0, 0.0, 1.0), mapped(3.0, 1.0, 2.0)))
    # without phrase_z (a caller that has none) only the first mapping applies
    assert fit.presence(np.array([3.0]))[0] == pytest.approx(mapped(3.0, 0.0, 1.0))


def test_the_cut_points_map_to_the_verdict_bounds():
    fit = PresenceCalibration(0.5, 2.0, "test")
    got = fit.presence(np.array([0.5, 2.0, fit.midpoint, -10.0, 10.0]))
    np.testing.assert_allclose(got[:3], [NOT_SEEN, SEEN, 0.5], atol=1e-12)
    assert got[3] < 1e-6 and got[4] > 1 - 1e-6
    z = np.linspace(-3, 5, 50)
    np.testing.assert_allclose(fit.presence(z), mapped(z, 0.5, 2.0), atol=1e-12)


def test_a_models_own_fit_decides_its_presence(model_copy):
    image = picture(0, seed=4242)
    default = analyze(
        [image], PROMPT, HFClipEncoder.from_pretrained(str(model_copy)), ProbeOptions(rounds=2)
    )
    assert "this model's own fit (the tests' fit" in default.reference
    forget_banks()
    # A fit that puts "seen" much lower: the same cosines now read as seen.
    write_calibration(model_copy, -1.0, 0.0, "a test fit", -2.0, -1.0)
    report = analyze(
        [image], PROMPT, HFClipEncoder.from_pretrained(str(model_copy)), ProbeOptions(rounds=2)
    )
    assert "this model's own fit (a test fit)" in report.reference
    texts = [p.text for p in report.measurable]
    z, own_z = _independent_presence(model_copy, image, texts, raw_z=True)
    got = [report.images[0].presence[p.index] for p in report.measurable]
    fit = PresenceCalibration(-1.0, 0.0, "x", -2.0, -1.0)
    np.testing.assert_allclose(got, expected_presence(z, own_z, fit), atol=1e-4)
    both = np.minimum(mapped(z, -1.0, 0.0), mapped(own_z, -2.0, -1.0))
    np.testing.assert_allclose(got, both, atol=1e-4)
    before = {v.text: v.presence for v in default.verdicts}
    after = {v.text: v.presence for v in report.verdicts}
    assert after["a red circle"] > before["a red circle"]
    np.testing.assert_allclose([before[t] for t in texts], expected_presence(z, own_z), atol=1e-4)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"not_seen_z": 2.0, "seen_z": 1.0}),
        json.dumps({"seen_z": 1.0}),
        json.dumps({"not_seen_z": 0.0, "seen_z": 1.0, "phrase_seen_z": 1.0}),
    ],
)
def test_a_bad_calibration_file_is_named_and_the_model_is_uncalibrated(model_copy, content, caplog):
    (model_copy / CALIBRATION_FILE).write_text(content)
    with caplog.at_level(logging.WARNING):
        fit = calibration_for(folder_ref(model_copy))
    assert fit is None
    assert CALIBRATION_FILE in caplog.text and "uncalibrated" in caplog.text


def test_write_calibration_refuses_a_fit_that_cannot_be_one(tmp_path):
    with pytest.raises(ValueError, match="must be above"):
        write_calibration(tmp_path, 1.5, 1.5, "x")
    with pytest.raises(ValueError, match="finite"):
        write_calibration(tmp_path, float("nan"), 1.5, "x")
    assert not (tmp_path / CALIBRATION_FILE).exists()


def test_models_without_a_fit_of_their_own_are_uncalibrated(tmp_path):
    assert calibration_for(folder_ref(None, name="openai-clip:ViT-L/14")) is None
    assert calibration_for(folder_ref(tmp_path / "missing")) is None

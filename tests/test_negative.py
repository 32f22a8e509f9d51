"""The negative prompt check on the tiny CLIP trained to tell four pictures apart.

Each phrase's score is the calibrated presence the prompt's phrases get, checked against
a fresh model's own numbers; the fit is written for the test so that one caption is seen,
one is between the bounds and the others are not seen.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from presence_formula import expected_presence
from test_presence import _independent_presence
from trained_clip import CAPTIONS, picture

from clipprobe_ext.analysis.calibration import SEEN, write_calibration
from clipprobe_ext.analysis.negative import check_negative
from clipprobe_ext.analysis.references import forget_banks, reference_banks
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report.data import report_data
from clipprobe_ext.report.reasons import NOT_SUPPRESSED, SUPPRESSED, TAG, UNSURE
from clipprobe_ext.report.text import format_table

CIRCLE = picture(0, seed=777)  # a red circle
SQUARE = picture(1, seed=778)  # a blue square


@pytest.fixture()
def fitted(trained_clip_dir, tmp_path):
    """A copy of the model with a fit: seen from just under the red circle's ``cosine_z``
    on ``CIRCLE``, not seen from just under the second caption's (so it is unsure)."""
    forget_banks()
    folder = shutil.copytree(trained_clip_dir, tmp_path / "model")
    z, _ = _independent_presence(folder, CIRCLE, CAPTIONS, raw_z=True)
    z = dict(zip(CAPTIONS, map(float, z)))
    order = sorted(CAPTIONS, key=z.get, reverse=True)
    assert order[0] == "a red circle" and z[order[1]] > z[order[2]]
    fit = write_calibration(
        folder, (z[order[1]] + z[order[2]]) / 2, (z[order[0]] + z[order[1]]) / 2, "test"
    )
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    yield SimpleNamespace(folder=folder, encoder=encoder, order=order, fit=fit)
    forget_banks()


def _expected(fitted, image, texts) -> np.ndarray:
    z, own = _independent_presence(fitted.folder, image, texts, raw_z=True)
    return expected_presence(z, own, fitted.fit)


def test_seen_unsure_and_absent_phrases_get_three_statuses(fitted) -> None:
    seen, between, absent = fitted.order[0], fitted.order[1], fitted.order[3]
    negative = f"{seen}, {between}, {absent}, <lora:detail:0.5>"
    report = analyze([CIRCLE], "masterpiece, a red circle", fitted.encoder, negative=negative)
    check = report.negative
    scores = [p.score for p in check.phrases[:3]]
    np.testing.assert_allclose(
        scores, _expected(fitted, CIRCLE, [seen, between, absent]), atol=1e-4
    )
    assert [p.status for p in check.phrases] == [
        "not suppressed",
        "unsure",  # between the bounds: neither flagged nor called absent
        "suppressed",
        "not measurable",
    ]
    data = report_data(report)["negative"]
    assert [p["reason"] for p in data["phrases"]] == [NOT_SUPPRESSED, UNSURE, SUPPRESSED, TAG]
    assert data["not_suppressed"] == [0]
    assert json.loads(json.dumps(data)) == data
    # the table's Status column says what the explanation under it says
    table = format_table(report)
    assert f"unsure: {UNSURE}" in " ".join(table.split())


def test_several_pictures_count_where_the_phrase_is_seen(fitted) -> None:
    embs = fitted.encoder.encode_images([CIRCLE, SQUARE]).numpy().astype(np.float64)
    banks = reference_banks(fitted.encoder, embs.shape[1])
    check = check_negative(embs, "a red circle, (a blue square:1.3)", fitted.encoder, banks)
    for p, text in zip(check.phrases, ["a red circle", "a blue square"]):
        expected = [_expected(fitted, image, [text])[0] for image in (CIRCLE, SQUARE)]
        np.testing.assert_allclose(p.per_image, expected, atol=1e-4)
        assert p.visible_in == sum(e >= SEEN for e in expected)
        assert p.score == pytest.approx(np.mean(p.per_image))
    assert check.phrases[1].weight == pytest.approx(1.3)
    assert check.images == ["image 1", "image 2"]


def test_empty_negative_prompt(fitted) -> None:
    embs = fitted.encoder.encode_images([CIRCLE]).numpy().astype(np.float64)
    banks = reference_banks(fitted.encoder, embs.shape[1])
    assert check_negative(embs, "", fitted.encoder, banks).phrases == []
    report = analyze([CIRCLE], "a red circle", fitted.encoder, ProbeOptions(prune=False))
    assert report.negative is None

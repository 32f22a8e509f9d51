"""Original vs regenerated picture: numbers checked against independent computations.

The presence is the analysis' calibrated one; the model gets a fit written for the test,
seen from just under the red circle's ``cosine_z`` on the red-circle pictures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from presence_formula import expected_presence
from test_presence import _independent_presence
from trained_clip import picture

from clipprobe_ext.analysis.calibration import SEEN, write_calibration
from clipprobe_ext.analysis.references import forget_banks
from clipprobe_ext.analysis.tokens import default_tokenizer, token_budget
from clipprobe_ext.compare import compare, structural_similarity
from clipprobe_ext.encoders.hf import HFClipEncoder
from clipprobe_ext.errors import ModelError
from clipprobe_ext.probe import ProbeOptions, analyze
from clipprobe_ext.report.comparison import comparison_data, render_html, side_by_side


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM (Wang et al. 2004) with a uniform 7x7 window and sample covariance, averaged
    over every full window and channel: the definition skimage documents, by hand."""
    from numpy.lib.stride_tricks import sliding_window_view

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for ch in range(a.shape[2]):
        x = sliding_window_view(a[:, :, ch], (7, 7)).reshape(-1, 49)
        y = sliding_window_view(b[:, :, ch], (7, 7)).reshape(-1, 49)
        mx, my = x.mean(1), y.mean(1)
        vx, vy = x.var(1, ddof=1), y.var(1, ddof=1)
        cov = ((x - mx[:, None]) * (y - my[:, None])).sum(1) / 48
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))


def _noise(seed: int, size=(16, 12)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_ssim_identical_is_one_and_matches_a_numpy_reference() -> None:
    a = _noise(1)
    assert structural_similarity(a, a) == (pytest.approx(1.0), (16, 12))
    b = Image.fromarray(
        np.clip(
            np.asarray(a, dtype=np.int16) + np.random.default_rng(2).integers(-40, 40, (12, 16, 3)),
            0,
            255,
        ).astype(np.uint8)
    )
    value, size = structural_similarity(a, b)
    expected = reference_ssim(np.asarray(a, float), np.asarray(b, float))
    assert value == pytest.approx(expected, abs=1e-9)
    assert 0.2 < value < 0.99
    unrelated, _ = structural_similarity(a, _noise(3))
    assert unrelated < value


def test_ssim_of_different_sizes_is_taken_at_the_smaller_size() -> None:
    small, large = _noise(4, (20, 16)), _noise(5, (40, 30))
    value, size = structural_similarity(large, small)
    assert size == (20, 16)
    down = np.asarray(large.resize((20, 16), Image.LANCZOS), float)
    assert value == pytest.approx(reference_ssim(down, np.asarray(small, float)), abs=1e-9)


ORIGINAL = picture(0, seed=11)
SAME_KIND = picture(0, seed=12)  # another red circle: what a good pruning gives
OTHER = picture(1, seed=13)  # a blue square: the pruned prompt lost the circle


@pytest.fixture(scope="module")
def fitted(trained_clip_dir, tmp_path_factory):
    """(model folder, encoder, fit): "a red circle" is seen on both red circles only."""
    forget_banks()
    folder = shutil.copytree(trained_clip_dir, tmp_path_factory.mktemp("fitted") / "model")
    circle = [
        float(_independent_presence(folder, image, ["a red circle"], raw_z=True)[0][0])
        for image in (ORIGINAL, SAME_KIND, OTHER)
    ]
    assert min(circle[:2]) > circle[2]
    seen_z = (min(circle[:2]) + circle[2]) / 2
    fit = write_calibration(folder, seen_z - 1.0, seen_z, "test")
    yield folder, HFClipEncoder.from_pretrained(str(folder), device="cpu"), fit
    forget_banks()


PROMPT = "masterpiece, a red circle, (best quality:1.2), green stripes"
PRUNED = "a red circle, green stripes"


def test_compare_on_the_trained_clip(fitted) -> None:
    from transformers import CLIPModel, CLIPProcessor

    folder, encoder, fit = fitted
    report = analyze([ORIGINAL], PROMPT, encoder, ProbeOptions(rounds=1))
    good = compare(report, ORIGINAL, SAME_KIND, PRUNED, encoder)
    bad = compare(report, ORIGINAL, OTHER, PRUNED, encoder)
    assert good.original_prompt == report.prompt

    # Similarity to the prompt: the analysis' own number for the original ...
    assert good.original_similarity == pytest.approx(report.pruning.original_similarity)
    # ... and the cosine transformers computes for the prompt text (one chunk).
    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    texts = [
        "masterpiece, a red circle, best quality, green stripes",
        "a red circle, green stripes",
    ]
    inputs = processor(text=texts, images=[ORIGINAL, OTHER], return_tensors="pt", padding=True)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=inputs["pixel_values"])
        txt = model.get_text_features(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        )
    cos = (
        torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T
    ).numpy()
    assert bad.original_similarity == pytest.approx(cos[0, 0], abs=1e-5)
    assert bad.regenerated_similarity == pytest.approx(cos[1, 0], abs=1e-5)
    assert bad.regenerated_pruned_similarity == pytest.approx(cos[1, 1], abs=1e-5)

    # Presence: on the original, the very numbers of the analysis; on the regenerated
    # picture, the calibrated formula from a fresh model.
    measured = {v.index: v.presence for v in report.verdicts}
    words = [p.text for p in good.phrases]
    for result, picture_ in ((good, SAME_KIND), (bad, OTHER)):
        for p in result.phrases:
            assert p.original == pytest.approx(measured[p.index], abs=1e-6)
        z, own = _independent_presence(folder, picture_, words, raw_z=True)
        expected = expected_presence(z, own, fit)
        np.testing.assert_allclose([p.regenerated for p in result.phrases], expected, atol=1e-4)
        for p, e in zip(result.phrases, expected):
            assert p.regenerated_visible == (e >= SEEN)

    # The red circle is kept and still seen on another red circle, not on a blue square.
    circle = next(p for p in good.phrases if p.text == "a red circle")
    assert circle.kept and circle.original_visible and circle.regenerated_visible
    assert [p.text for p in bad.kept_lost] == ["a red circle"]
    assert good.kept_lost == []
    assert [p.kept for p in good.phrases] == [False, True, False, True]
    assert bad.regenerated_similarity < good.regenerated_similarity

    # SSIM: a picture of the same kind is structurally closer than a different one.
    assert good.ssim == pytest.approx(structural_similarity(ORIGINAL, SAME_KIND)[0])
    assert good.ssim > bad.ssim

    # Tokens: "masterpiece" (1) and "best quality" (2) with their commas.
    assert good.tokens.tokens_saved == 1 + 1 + 2 + 1
    assert good.tokens.removed == [0, 2]
    d = json.loads(json.dumps(comparison_data(good)))
    assert d["tokens"]["tokens_saved"] == 5 and d["kept_lost"] == []
    assert d["phrases"][1]["original"] == pytest.approx(circle.original)
    assert "calibrated presence" in d["presence_method"]


def test_the_comparison_counts_tokens_with_the_models_tokenizer(fitted, monkeypatch) -> None:
    encoder = HFClipEncoder.from_pretrained(str(fitted[0]), device="cpu")  # patched below

    def characters(text: str) -> list[int]:  # "," stays one token, as the budget needs
        return [ord(c) for c in text if not c.isspace()]

    monkeypatch.setattr(encoder, "tokenize", characters)
    report = analyze([ORIGINAL], PROMPT, encoder, ProbeOptions(rounds=1, prune=False))
    result = compare(report, ORIGINAL, SAME_KIND, PRUNED, encoder)
    assert result.tokens.original_tokens == token_budget(PROMPT, characters).tokens
    assert result.tokens.pruned_tokens == token_budget(PRUNED, characters).tokens
    assert result.tokens.pruned_tokens != token_budget(PRUNED, default_tokenizer).tokens


def test_the_comparison_needs_the_analysis_model(fitted, hf_encoder) -> None:
    _, encoder, _ = fitted
    report = analyze([ORIGINAL], PROMPT, encoder, ProbeOptions(rounds=1, prune=False))
    with pytest.raises(ModelError, match="analysis was made with"):
        compare(report, ORIGINAL, SAME_KIND, PRUNED, hf_encoder)


def test_side_by_side_and_html(fitted) -> None:
    _, encoder, _ = fitted
    original = picture(0, seed=21, size=64)
    regenerated = picture(0, seed=22, size=96)
    prompt = 'a red circle, <script>alert("x")</script>, green stripes'
    report = analyze([original], prompt, encoder, ProbeOptions(rounds=1, prune=False))
    result = compare(report, original, regenerated, "a red circle", encoder)
    notes = comparison_data(result)["notes"]
    assert result.ssim_size == (64, 64) and "SSIM was computed at 64x64" in notes[0]
    sheet = side_by_side(result, original, regenerated, height=128)
    assert sheet.height > 128 and sheet.width == 8 + 128 + 8 + 128 + 8
    left = np.asarray(sheet)[8 + 14 : 8 + 14 + 128, 8 : 8 + 128]
    assert np.array_equal(left, np.asarray(original.resize((128, 128), Image.LANCZOS)))
    fragment = render_html(result)
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    assert f"{result.ssim:.3f}" in fragment


def test_a_one_phrase_prompt_has_its_calibrated_presence(fitted) -> None:
    folder, encoder, fit = fitted
    report = analyze([ORIGINAL], "a red circle", encoder, ProbeOptions(rounds=1, prune=False))
    result = compare(report, ORIGINAL, OTHER, "a red circle", encoder)
    (phrase,) = result.phrases
    expected = [
        expected_presence(*_independent_presence(folder, image, ["a red circle"], raw_z=True), fit)
        for image in (ORIGINAL, OTHER)
    ]
    assert [phrase.original, phrase.regenerated] == pytest.approx(
        [float(e[0]) for e in expected], abs=1e-4
    )
    assert phrase.original_visible and not phrase.regenerated_visible
    assert json.loads(json.dumps(comparison_data(result)))["phrases"][0]["change"] == (
        pytest.approx(phrase.regenerated - phrase.original)
    )

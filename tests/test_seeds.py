"""Comparison over several seeds, checked against scipy's paired statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from trained_clip import CAPTIONS, picture

from clipprobe_ext.analysis.calibration import SEEN
from clipprobe_ext.analysis.presence import presence
from clipprobe_ext.analysis.references import reference_banks
from clipprobe_ext.analysis.seeds import compare_over_seeds
from clipprobe_ext.encoders.hf import HFClipEncoder


@pytest.fixture(scope="module")
def presences(trained_clip_dir):
    """Presence of the four captions on 4 seeds of the red circle and of the blue square."""
    encoder = HFClipEncoder.from_pretrained(str(trained_clip_dir), device="cpu")
    banks = reference_banks(encoder)
    text, _ = encoder.encode_texts(CAPTIONS)
    text = text.numpy().astype(np.float64)

    def of(kind: int) -> np.ndarray:
        images = encoder.encode_images([picture(kind, seed=s) for s in range(4)])
        return presence(images.numpy().astype(np.float64), text, banks)

    return of(0), of(1)


@pytest.mark.parametrize("seeds", [2, 3, 4])
def test_paired_statistics_equal_scipy(presences, seeds):
    circle, square = (p[:seeds] for p in presences)
    for k, result in enumerate(compare_over_seeds(CAPTIONS, circle, square)):
        diff = square[:, k] - circle[:, k]
        assert result.mean_difference == pytest.approx(diff.mean())
        assert result.spread == pytest.approx(np.std(diff, ddof=1))
        low, high = stats.t.interval(0.95, seeds - 1, diff.mean(), stats.sem(diff))
        if np.std(diff) > 0:
            assert result.interval == pytest.approx((low, high))
        before, after = circle[:, k] >= SEEN, square[:, k] >= SEEN
        assert result.seen_before == sum(before)
        assert result.kept == sum(b and a for b, a in zip(before, after))
        assert result.gained == sum(a and not b for b, a in zip(before, after))
        assert result.lost == result.seen_before - result.kept


def test_one_seed_has_no_interval(presences):
    circle, square = presences
    (first, *_) = compare_over_seeds(CAPTIONS, circle[:1], square[:1])
    assert first.interval is None and first.spread == 0.0
    assert first.mean_difference == pytest.approx(square[0, 0] - circle[0, 0])


def test_the_circle_moves_the_right_way(presences):
    circle, square = presences
    by_phrase = {r.phrase: r for r in compare_over_seeds(CAPTIONS, circle, square)}
    assert (
        by_phrase["a red circle"].mean_difference < 0 < by_phrase["a blue square"].mean_difference
    )


def test_shapes_must_agree(presences):
    circle, square = presences
    with pytest.raises(ValueError):
        compare_over_seeds(CAPTIONS, circle, square[:2])
    with pytest.raises(ValueError):
        compare_over_seeds(CAPTIONS, np.zeros((9, 4)), np.zeros((9, 4)))
